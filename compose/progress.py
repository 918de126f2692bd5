"""Progress renderers for `--progress auto|tty|plain|json|quiet`, as Compose v2 draws them:
one line per resource (`Container proj-web-1`) with its state and elapsed time.

Renderers are thread-safe: `compose.apply` reports from worker threads.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import IO, Protocol


class Renderer(Protocol):
    def event(self, resource: str, status: str, *, done: bool = False,
              error: bool = False, text: str = "") -> None: ...
    def warn(self, message: str) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Line:
    status: str
    started: float
    ended: float | None = None
    error: bool = False
    text: str = ""


class QuietRenderer:
    def event(self, resource: str, status: str, *, done: bool = False,
              error: bool = False, text: str = "") -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class PlainRenderer:
    """` Container proj-web-1  Started` lines, one per state change."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()

    def event(self, resource: str, status: str, *, done: bool = False,
              error: bool = False, text: str = "") -> None:
        with self.lock:
            extra = f" {text}" if text else ""
            self.out.write(f" {resource}  {status}{extra}\n")
            self.out.flush()

    def warn(self, message: str) -> None:
        with self.lock:
            self.out.write(f"WARN[0000] {message}\n")
            self.out.flush()

    def close(self) -> None:
        pass


class JsonRenderer:
    """One JSON object per state change, like Compose's `--progress json`."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}

    def event(self, resource: str, status: str, *, done: bool = False,
              error: bool = False, text: str = "") -> None:
        with self.lock:
            start = self.started.setdefault(resource, time.monotonic())
            record = {"id": resource, "status": "Error" if error else
                      ("Done" if done else "Working"), "text": status,
                      "details": text, "elapsed": round(time.monotonic() - start, 3)}
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()

    def warn(self, message: str) -> None:
        with self.lock:
            self.out.write(json.dumps({"level": "warning", "message": message}) + "\n")

    def close(self) -> None:
        pass


class TtyRenderer:
    """`[+] Running 2/3` and a line per resource, redrawn in place."""

    def __init__(self, out: IO[str], title: str = "Running") -> None:
        self.out = out
        self.title = title
        self.lock = threading.Lock()
        self.lines: dict[str, _Line] = {}
        self.drawn = 0
        self.warnings: list[str] = []

    def event(self, resource: str, status: str, *, done: bool = False,
              error: bool = False, text: str = "") -> None:
        with self.lock:
            now = time.monotonic()
            line = self.lines.get(resource)
            if line is None or line.ended is not None:
                line = self.lines[resource] = _Line(status, line.started if line else now)
            line.status, line.error, line.text = status, error, text
            if done or error:
                line.ended = now
            self._draw()

    def warn(self, message: str) -> None:
        with self.lock:
            self.warnings.append(message)

    def _draw(self) -> None:
        now = time.monotonic()
        width = max((len(r) for r in self.lines), default=0)
        finished = sum(1 for line in self.lines.values() if line.ended is not None)
        rows = [f"[+] {self.title} {finished}/{len(self.lines)}"]
        for resource, line in self.lines.items():
            mark = "✘" if line.error else "✔" if line.ended is not None else "⠿"
            elapsed = (line.ended or now) - line.started
            status = line.status + (f" {line.text}" if line.text else "")
            rows.append(f" {mark} {resource:<{width}}  {status:<10} {elapsed:5.1f}s")
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F")
        self.out.write("".join(f"\x1b[2K{row}\n" for row in rows))
        self.out.flush()
        self.drawn = len(rows)

    def close(self) -> None:
        with self.lock:
            if self.lines:
                self._draw()
            for message in self.warnings:
                self.out.write(f"WARN[0000] {message}\n")
            self.out.flush()


def renderer_for(mode: str, out: IO[str], title: str = "Running") -> Renderer:
    """The renderer for a `--progress` value; auto is tty on a terminal, else plain."""
    if mode == "auto":
        mode = "tty" if out.isatty() else "plain"
    if mode == "tty":
        return TtyRenderer(out, title)
    if mode == "json":
        return JsonRenderer(out)
    if mode == "quiet":
        return QuietRenderer()
    return PlainRenderer(out)
