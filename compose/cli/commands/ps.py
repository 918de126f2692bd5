"""`pycompose ps`: the project's containers (NAME IMAGE COMMAND SERVICE CREATED STATUS
PORTS), as a table or JSON lines. Kept light: no pydantic or networkx on this path."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from compose import labels as L
from compose.cli.context import Context
from compose.cli.project import containers, load_project
from compose.cli.units import human_duration
from compose.errors import UsageError

if TYPE_CHECKING:
    from engine.api import Container

STATES = ("paused", "restarting", "removing", "running", "dead", "created", "exited")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all stopped containers (including those created by run)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")
    p.add_argument("--services", dest="list_services", action="store_true",
                   help="Display services")
    p.add_argument("--status", action="append", default=[], choices=STATES,
                   help="Filter services by status")
    p.add_argument("--filter", action="append", default=[],
                   help="Filter services by a property (supported filters: status)")
    p.add_argument("--format", default="table", help="Format the output: table or json")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("--orphans", default="true", choices=["true", "false"],
                   help="Include orphaned services (not declared by project)")


def since(stamp: str) -> float:
    head = stamp.rstrip("Z").split(".")[0]
    try:
        return time.time() - datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def status_text(c: Container) -> str:
    state = c.state
    if state.status in ("running", "paused"):
        text = f"Up {human_duration(since(state.started_at))}"
        if state.status == "paused":
            return text + " (Paused)"
        if state.health and state.health.status not in ("none", ""):
            label = "health: starting" if state.health.status == "starting" \
                else state.health.status
            text += f" ({label})"
        return text
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {human_duration(since(state.finished_at))} ago"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {human_duration(since(state.finished_at))} ago"
    return state.status.capitalize()


def ports_text(c: Container) -> str:
    if not c.state.running:
        return ""
    published = [f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
                 for p in c.ports]
    shown = {(p.container_port, p.protocol) for p in c.ports}
    exposed = [f"{p.container_port}/{p.protocol}" for p in c.spec.ports
               if (p.container_port, p.protocol) not in shown and not c.ports]
    exposed += [e if "/" in e else f"{e}/tcp" for e in c.spec.expose]
    return ", ".join(published + sorted(set(exposed) - set(published)))


def command_text(c: Container, truncate: bool = True,
                 image_config: dict[str, object] | None = None) -> str:
    """The command the container runs: its own entrypoint/command, else the image's."""
    config = image_config or {}
    entrypoint = c.spec.entrypoint if c.spec.entrypoint is not None else \
        config.get("Entrypoint") or ()
    command = c.spec.command if c.spec.command is not None else \
        (config.get("Cmd") or () if c.spec.entrypoint is None else ())
    words = [str(w) for w in (*entrypoint, *command)]  # type: ignore[misc]
    text = " ".join(words)
    if truncate and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def image_configs(ctx: Context, found: list[Container]) -> dict[str, dict[str, object]]:
    """Image id -> its config (Cmd, Entrypoint), for containers that rely on them."""
    from engine.api import NotFound

    configs: dict[str, dict[str, object]] = {}
    for image_id in {c.image_id for c in found if c.spec.command is None}:
        try:
            configs[image_id] = ctx.engine().image_inspect(image_id).config
        except NotFound:
            pass
    return configs


def render_template(template: str, records: list[dict[str, object]]) -> str:
    """The `{{.Field}}` subset of Go templates; `table ...` adds a header row."""
    import re

    header = template.startswith("table ")
    body = template.removeprefix("table ").replace("\\t", "\t")
    fields = re.findall(r"{{\s*\.(\w+)\s*}}", body)
    unknown = [f for f in fields if records and f not in records[0]]
    if unknown:
        raise UsageError(f"template: unknown field {unknown[0]!r}")

    def fill(record: dict[str, object]) -> str:
        return re.sub(r"{{\s*\.(\w+)\s*}}", lambda m: str(record.get(m.group(1), "")), body)

    lines = [re.sub(r"{{\s*\.(\w+)\s*}}", lambda m: m.group(1).upper(), body)] if header \
        else []
    return "".join(line + "\n" for line in lines + [fill(r) for r in records])


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip() + "\n" for row in [headers, *rows])


def as_json(c: Container) -> dict[str, object]:
    return {
        "Command": command_text(c, truncate=False), "CreatedAt": c.created,
        "ExitCode": c.state.exit_code,
        "Health": c.state.health.status if c.state.health else "",
        "ID": c.id, "Image": c.image, "Labels": ",".join(f"{k}={v}" for k, v in c.labels.items()),
        "Name": c.name, "Names": c.name,
        "Networks": ",".join(n.network for n in c.networks),
        "Project": c.labels.get(L.PROJECT, ""),
        "Publishers": [{"URL": p.host_ip, "TargetPort": p.container_port,
                        "PublishedPort": p.host_port, "Protocol": p.protocol} for p in c.ports],
        "RunningFor": human_duration(since(c.created)) + " ago",
        "Service": c.labels.get(L.SERVICE, ""), "State": c.state.status,
        "Status": status_text(c),
    }


def run(ctx: Context, args: argparse.Namespace) -> int:
    statuses = set(args.status)
    for f in args.filter:
        key, _, value = f.partition("=")
        if key != "status" or value not in STATES:
            raise UsageError(f"invalid filter {f!r}: only status=<{'|'.join(STATES)}>")
        statuses.add(value)
    if args.format not in ("table", "json") and "{{" not in args.format:
        raise UsageError(f"unsupported format {args.format!r}: use table, json or a "
                         "template such as '{{.Name}} {{.Status}}'")
    project = load_project(ctx)
    project.check(args.services)
    if args.list_services:
        names = args.services or list(project.services)
        ctx.stdout.write("".join(f"{n}\n" for n in names))
        return 0
    show_all = args.all or bool(statuses)
    found = containers(ctx.engine(), project.name, args.services, all=show_all, oneoff=None)
    if args.orphans == "false" and project.data is not None:
        found = [c for c in found if c.labels.get(L.SERVICE) in project.services]
    if statuses:
        found = [c for c in found if c.state.status in statuses]
    found.sort(key=lambda c: c.name)
    if args.quiet:
        ctx.stdout.write("".join(f"{c.id}\n" for c in found))
    elif args.format == "json":
        ctx.stdout.write("".join(json.dumps(as_json(c)) + "\n" for c in found))
    elif "{{" in args.format:
        ctx.stdout.write(render_template(args.format, [as_json(c) for c in found]))
    else:
        configs = image_configs(ctx, found)
        rows = [[c.name, c.image, command_text(c, not args.no_trunc, configs.get(c.image_id)),
                 c.labels.get(L.SERVICE, ""), human_duration(since(c.created)) + " ago",
                 status_text(c), ports_text(c)] for c in found]
        ctx.stdout.write(table(rows, ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED",
                                      "STATUS", "PORTS"]))
    return 0
