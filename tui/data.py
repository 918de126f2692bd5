"""What the dashboard shows, read through `engine.api` only: one row per container of the
project (service, status, health, ports, CPU %, memory), and followed log lines.

Both are plain Python, without Textual, so they run in worker threads and in tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compose import labels as L

if TYPE_CHECKING:
    from engine.api import Container, Engine, Stats

LOG_TAIL = 200  # lines of history per container when a log pane opens
RETRY = 1.0  # seconds before following again after the engine failed


@dataclass(frozen=True)
class ServiceRow:
    """One line of the services table: a container, or a service that has none yet."""

    key: str  # the container's name, or "service:<name>" when it has no container
    service: str
    container: str  # `web-1`; "" when the service has no container
    container_id: str
    number: int  # replica number (0 without a container)
    state: str  # engine status (running, exited...) or "not created"
    status: str  # as `pycompose ps` words it: "Up 3 minutes (healthy)"
    health: str  # healthy, unhealthy, starting, or ""
    ports: str
    image: str
    restarts: int
    cpu_percent: float | None  # None when not running or unreadable
    memory_usage: int | None
    memory_limit: int | None

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    @property
    def cpu_text(self) -> str:
        from compose.cli.commands.stats import percent

        return "" if self.cpu_percent is None else percent(self.cpu_percent)

    @property
    def memory_text(self) -> str:
        from compose.cli.commands.stats import bytes_size

        if self.memory_usage is None:
            return ""
        if not self.memory_limit:
            return bytes_size(self.memory_usage)
        return f"{bytes_size(self.memory_usage)} / {bytes_size(self.memory_limit)}"


def _row(c: Container, stats: Stats | None) -> ServiceRow:
    from compose.cli.commands.ps import ports_text, status_text
    from compose.logmux import display_name

    health = c.state.health.status if c.state.health else ""
    number = c.labels.get(L.CONTAINER_NUMBER, "0")
    live = stats is not None and c.state.running
    return ServiceRow(
        key=c.name, service=c.labels.get(L.SERVICE, ""), container=display_name(c),
        container_id=c.id, number=int(number) if number.isdigit() else 0,
        state=c.state.status, status=status_text(c), health="" if health == "none" else health,
        ports=ports_text(c), image=c.image, restarts=c.state.restart_count,
        cpu_percent=stats.cpu_percent if live and stats else None,
        memory_usage=stats.memory_usage if live and stats else None,
        memory_limit=stats.memory_limit if live and stats else None)


def _placeholder(service: str) -> ServiceRow:
    return ServiceRow(key=f"service:{service}", service=service, container="",
                      container_id="", number=0, state="not created", status="Not created",
                      health="", ports="", image="", restarts=0, cpu_percent=None,
                      memory_usage=None, memory_limit=None)


class DashboardSource:
    """Polls the engine for one project: `rows()` is one snapshot of the table.

    Keep one source per dashboard: the engine remembers the previous stats sample per
    container, so CPU % is measured between two polls."""

    def __init__(self, engine: Engine, project: str, services: Sequence[str] = ()) -> None:
        self.engine = engine
        self.project = project
        self.services = tuple(services)  # the model's services, shown even without container

    def containers(self) -> list[Container]:
        from compose.observe import project_containers

        return project_containers(self.engine, self.project, all=True, oneoff=False)

    def rows(self) -> list[ServiceRow]:
        from compose.cli.commands.stats import read_stats

        found = self.containers()
        if self.services:
            found = [c for c in found if c.labels.get(L.SERVICE) in self.services]
        samples = {s.container.id: s.stats for s in read_stats(self.engine, found)}
        rows = [_row(c, samples.get(c.id)) for c in found if c.id in samples]
        have = {r.service for r in rows}
        rows += [_placeholder(s) for s in self.services if s not in have]
        return sorted(rows, key=lambda r: (r.service, r.number, r.key))


class _LineSink:
    """A text stream for LogMux that hands over whole lines."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.partial = ""

    def write(self, text: str) -> int:
        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        for line in lines:
            self.on_line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class LogFollower:
    """Follows the logs of one service (or all, with `web-1 | ` prefixes) in a thread,
    across restarts and recreation, until `stop()`."""

    def __init__(self, engine: Engine, project: str, service: str | None,
                 on_line: Callable[[str], None], tail: int = LOG_TAIL) -> None:
        from compose.logmux import LogMux

        self.engine = engine
        self.project = project
        self.service = service
        self.tail = tail
        sink = _LineSink(on_line)
        self.mux = LogMux(engine, sink, color=False, prefix=service is None, err=sink)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self._run, name=f"logs-{service or 'all'}",
                                       daemon=True)

    def _listed(self) -> list[Container]:
        from compose.observe import project_containers

        found = project_containers(self.engine, self.project, all=True, oneoff=False)
        return [c for c in found if self.service is None or
                c.labels.get(L.SERVICE) == self.service]

    def _run(self) -> None:
        from compose.logmux import display_name
        from engine.api import EngineError

        failed = ""
        while not self.mux.stopping.is_set():
            try:
                self.mux.width = max((len(display_name(c)) for c in self._listed()),
                                     default=0)
                self.mux.watch(self._listed, tail=self.tail)
            except EngineError as exc:  # say it once in the pane, then keep trying
                if str(exc) != failed:
                    failed = str(exc)
                    self.mux.say(f"[cannot read the logs: {exc}]")
                self.mux.stopping.wait(RETRY)

    def start(self) -> LogFollower:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.mux.stop()
