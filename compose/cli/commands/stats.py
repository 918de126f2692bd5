"""`pycompose stats`: the services' containers' resource usage (CPU %, memory, network and
block I/O, PIDs) as `docker compose stats` shows it: a table redrawn every second, one
sample with --no-stream, JSON lines with --format json, or a `{{.Field}}` template.

The unit formatting (`bytes_size`, `human_size`, `percent`) follows Docker's go-units and
is shared with the dashboard.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compose.cli import units
from compose.cli.context import Context
from compose.cli.project import containers, load_project
from compose.cli.units import bytes_size
from compose.errors import UsageError

if TYPE_CHECKING:
    from engine.api import Container, Engine, Stats

INTERVAL = 1.0  # seconds between two tables in stream mode
# Docker's default `docker stats` table, with its column titles.
DEFAULT_TEMPLATE = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t" \
    "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
           "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
           "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
FIELD = re.compile(r"{{\s*\.(\w+)\s*}}")
CLEAR = "\x1b[2J\x1b[H"


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision, at the 3 digits `docker stats` shows (`1.2kB`, `0B`)."""
    return units.human_size(size, precision)


def percent(value: float) -> str:
    return f"{value:.2f}%"


def memory_percent(stats: Stats) -> float:
    return stats.memory_usage / stats.memory_limit * 100 if stats.memory_limit else 0.0


@dataclass(frozen=True)
class Sample:
    """One container's stats; `stats` is None when they could not be read."""

    container: Container
    stats: Stats | None

    def record(self, truncate: bool = True) -> dict[str, str]:
        """The fields of Docker's stats formatter, by their template names."""
        ident = self.container.id[:12] if truncate else self.container.id
        s = self.stats
        base = {"ID": ident, "Container": ident, "Name": self.container.name}
        if s is None:
            return base | {k: "--" for k in ("CPUPerc", "MemUsage", "MemPerc", "NetIO",
                                              "BlockIO", "PIDs")}
        return base | {
            "CPUPerc": percent(s.cpu_percent),
            "MemUsage": f"{bytes_size(s.memory_usage)} / {bytes_size(s.memory_limit)}",
            "MemPerc": percent(memory_percent(s)),
            "NetIO": f"{human_size(s.net_rx)} / {human_size(s.net_tx)}",
            "BlockIO": f"{human_size(s.block_read)} / {human_size(s.block_write)}",
            "PIDs": str(s.pids),
        }


def read_stats(engine: Engine, found: list[Container]) -> list[Sample]:
    """Stats of every container, read in parallel (a first reading takes a moment);
    a container removed meanwhile is left out, one whose stats fail shows `--`."""
    from engine.api import EngineError, NotFound

    def one(c: Container) -> Sample | None:
        if not c.state.running:
            return Sample(c, _zero())
        try:
            return Sample(c, engine.container_stats(c.id))
        except NotFound:
            return None
        except EngineError:
            return Sample(c, None)

    if not found:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(found))) as pool:
        return [s for s in pool.map(one, found) if s is not None]


def _zero() -> Stats:
    from engine.api import Stats

    return Stats(cpu_percent=0.0, memory_usage=0, memory_limit=0, pids=0)


def tabwrite(rows: list[list[str]]) -> str:
    """Go's tabwriter as Docker sets it up: cells at least 10 wide, padded by 3; the
    last column unpadded."""
    if not rows:
        return ""
    columns = max(len(r) for r in rows)
    widths = [max(max(len(r[i]) for r in rows if i < len(r)) + 3, 10)
              for i in range(columns - 1)]
    out = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < columns - 1 else cell
                 for i, cell in enumerate(row)]
        out.append("".join(cells) + "\n")
    return "".join(out)


def render(samples: list[Sample], fmt: str, truncate: bool = True) -> str:
    """The text of one round: a table, JSON lines or a template's lines."""
    records = [s.record(truncate) for s in samples]
    if fmt == "json":
        return "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n"
                       for r in records)
    template = DEFAULT_TEMPLATE if fmt == "table" else fmt
    header = fmt == "table" or template.startswith("table ")
    body = template.removeprefix("table ").replace("\\t", "\t")
    unknown = [f for f in FIELD.findall(body) if f not in HEADERS]
    if unknown:
        raise UsageError(f"template: unknown field {unknown[0]!r}; fields: "
                         + ", ".join(HEADERS))
    rows = [FIELD.sub(lambda m, r=r: r[m.group(1)], body).split("\t")  # type: ignore[misc]
            for r in records]
    if header:
        rows.insert(0, FIELD.sub(lambda m: HEADERS[m.group(1)], body).split("\t"))
    if "\t" not in body:
        return "".join("".join(r) + "\n" for r in rows)
    return tabwrite(rows)


def stream(write: Callable[[str], None], sample: Callable[[], list[Sample]], fmt: str,
           truncate: bool, clear: bool, rounds: int | None = None,
           interval: float = INTERVAL) -> None:
    """Redraw every `interval` seconds until Ctrl-C (or `rounds` rounds, for tests)."""
    done = 0
    while rounds is None or done < rounds:
        began = time.monotonic()
        text = render(sample(), fmt, truncate)
        write((CLEAR if clear else "") + text)
        done += 1
        if rounds is None or done < rounds:
            time.sleep(max(0.0, interval - (time.monotonic() - began)))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all containers (default shows just running)")
    p.add_argument("--format", default="table",
                   help="Format output using a custom template: 'table', 'json', "
                        "or a Go-like template such as '{{.Name}} {{.CPUPerc}}'")
    p.add_argument("--no-stream", action="store_true",
                   help="Disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")


def run(ctx: Context, args: argparse.Namespace) -> int:
    fmt: str = args.format
    if fmt.startswith("table") and fmt != "table" and not fmt.startswith("table "):
        raise UsageError(f"unsupported format {fmt!r}")
    if fmt not in ("table", "json") and "{{" not in fmt:
        raise UsageError(f"unsupported format {fmt!r}: use table, json or a template "
                         "such as '{{.Name}} {{.CPUPerc}}'")
    render([], fmt)  # an unknown template field is an error before anything runs
    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()

    def sample() -> list[Sample]:
        found = containers(engine, project.name, args.services, all=args.all, oneoff=None)
        return read_stats(engine, sorted(found, key=lambda c: c.name))

    def write(text: str) -> None:
        ctx.stdout.write(text)
        ctx.stdout.flush()

    if args.no_stream:
        write(render(sample(), fmt, not args.no_trunc))
        return 0
    clear = fmt != "json" and _isatty(ctx.stdout)
    stream(write, sample, fmt, not args.no_trunc, clear)
    return 0


def _isatty(out: Any) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False
