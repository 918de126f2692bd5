"""Attached output of `up` and `logs`: every container's lines, prefixed `web-1  | ` in a
colour of its own, multiplexed onto one stream.

A watcher re-lists the containers twice a second, so following continues across
restarts (the same container's stream is reopened after the last line seen) and
recreation (a new container with the same name gets a new follower).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from compose import labels as L

if TYPE_CHECKING:
    from engine.api import Container, Engine, LogLine

COLORS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91")
POLL = 0.5


def display_name(c: Container) -> str:
    """`web-1` for `project-web-1`; a custom container_name or a one-off stays whole."""
    project = c.labels.get(L.PROJECT, "")
    if project and c.name.startswith(project + "-") and \
            c.labels.get(L.ONEOFF, "False") != "True":
        return c.name[len(project) + 1:]
    return c.name


def parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds allowed) -> seconds since the epoch."""
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(head + "+00:00").timestamp()
    return stamp + (float("0." + frac) if frac else 0.0)


@dataclass
class _Tracked:
    container: Container
    name: str
    color: str
    last_time: str = ""
    thread: threading.Thread | None = None
    exited: bool = False


class LogMux:
    """Follows a changing set of containers and writes their lines with prefixes."""

    def __init__(self, engine: Engine, out: IO[str], *, color: bool = True,
                 prefix: bool = True, timestamps: bool = False, err: IO[str] | None = None,
                 on_exit: Callable[[Container, int], None] | None = None) -> None:
        self.engine = engine
        self.out = out
        self.err = err or out
        self.color = color
        self.prefix = prefix
        self.timestamps = timestamps
        self.on_exit = on_exit
        self.lock = threading.Lock()
        self.tracked: dict[str, _Tracked] = {}  # by container id
        self.colors: dict[str, str] = {}  # by display name: a recreated container keeps it
        self.stopping = threading.Event()
        self.width = 0

    # ------------------------------------------------------------------ output

    def _prefix(self, name: str, color: str) -> str:
        if not self.prefix:
            return ""
        text = f"{name:<{self.width}} | "
        return f"\x1b[{color}m{text}\x1b[0m" if self.color else text

    def write_line(self, t: _Tracked, line: LogLine) -> None:
        text = line.text if line.text.endswith("\n") else line.text + "\n"
        if self.timestamps:
            text = f"{line.time} {text}"
        stream = self.err if line.stream == "stderr" else self.out
        with self.lock:
            if self.stopping.is_set():
                return  # the caller may have closed its streams already
            stream.write(self._prefix(t.name, t.color) + text)
            stream.flush()

    def notice(self, name: str, color: str, message: str) -> None:
        with self.lock:
            if self.stopping.is_set():
                return
            head = f"\x1b[{color}m{name}\x1b[0m" if self.color else name
            self.out.write(f"{head} {message}\n")
            self.out.flush()

    # ------------------------------------------------------------------ following

    def add(self, c: Container, since: float | None = None, tail: int | None = None,
            follow: bool = True, until: float | None = None) -> _Tracked | None:
        with self.lock:
            if c.id in self.tracked:
                return None
            name = display_name(c)
            color = self.colors.setdefault(name, COLORS[len(self.colors) % len(COLORS)])
            self.width = max(self.width, len(name))
            t = self.tracked[c.id] = _Tracked(c, name, color)
        if follow:
            t.thread = threading.Thread(target=self._follow, args=(t, since, tail, until),
                                        daemon=True)
            t.thread.start()
        else:
            self._drain(t, since, tail, until, follow=False)
        return t

    def _drain(self, t: _Tracked, since: float | None, tail: int | None,
               until: float | None, follow: bool) -> None:
        for line in self.engine.container_logs(t.container.id, follow=follow, tail=tail,
                                               since=since, until=until):
            if t.last_time and line.time <= t.last_time:
                continue  # already shown before a restart reopened the stream
            t.last_time = line.time
            self.write_line(t, line)
            if self.stopping.is_set():
                return

    def _follow(self, t: _Tracked, since: float | None, tail: int | None,
                until: float | None) -> None:
        from engine.api import NotFound

        while not self.stopping.is_set():
            try:
                self._drain(t, since, tail, until, follow=True)
                tail = None
                if t.last_time:
                    since = parse_time(t.last_time)
                state = self.engine.container_inspect(t.container.id).state
            except NotFound:
                t.exited = True
                return
            if state.running:
                continue
            if self.stopping.is_set():
                return
            if not t.exited:
                t.exited = True
                if self.on_exit is not None:
                    self.on_exit(t.container, state.exit_code)
            # Wait for a restart (policy or `pycompose restart`) or the end.
            while not self.stopping.wait(POLL):
                try:
                    state = self.engine.container_inspect(t.container.id).state
                except NotFound:
                    return
                if state.running:
                    t.exited = False
                    break
            else:
                return

    def watch(self, list_containers: Callable[[], list[Container]],
              until_all_exited: bool = False, since: float | None = None,
              tail: int | None = None, until: threading.Event | None = None) -> None:
        """Follow whatever `list_containers` returns, re-listed twice a second, until
        stopped, until `until` is set, or (with until_all_exited) until every followed
        container is down. Followers keep writing until `stop()`."""
        wake = until or self.stopping
        while not self.stopping.is_set() and not (until is not None and until.is_set()):
            for c in list_containers():
                self.add(c, since=since, tail=tail)
            if until_all_exited and self.tracked and \
                    all(t.exited for t in self.tracked.values()):
                current = {c.id for c in list_containers() if c.state.running}
                if not current:
                    return
            wake.wait(POLL)

    def settle(self, timeout: float = 3.0) -> None:
        """Give followers time to write the last lines and exits of stopped containers."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and \
                not all(t.exited for t in list(self.tracked.values())):
            self.stopping.wait(0.05)

    def say(self, text: str) -> None:
        """A line of our own, between the containers' lines."""
        with self.lock:
            if not self.stopping.is_set():
                self.out.write(text + "\n")
                self.out.flush()

    def stop(self) -> None:
        """No line is written once this returns."""
        with self.lock:
            self.stopping.set()
