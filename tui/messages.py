"""Messages from the dashboard's worker threads to its widgets (posting is thread-safe)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual.message import Message

from tui.data import ServiceRow


@dataclass
class ServicesUpdated(Message):
    """A fresh snapshot of the services table; a newer one replaces a pending one."""

    rows: list[ServiceRow]
    error: str = ""  # why the engine could not be read, if it could not

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ServicesUpdated)


@dataclass
class LogLines(Message):
    """New lines of the followed logs (`web-1 | text` when following all services), taken
    from the batch when handled: a burst of lines costs one message."""

    batch: LogBatch


class LogBatch:
    """Lines a follower thread collects until the UI takes them."""

    def __init__(self, generation: int) -> None:
        self.generation = generation  # which follower: a replaced one's lines are dropped
        self.lock = threading.Lock()
        self.lines: list[str] = []

    def add(self, line: str) -> bool:
        """Queue a line; True when the batch was empty (so a message must be posted)."""
        with self.lock:
            self.lines.append(line)
            return len(self.lines) == 1

    def take(self) -> list[str]:
        with self.lock:
            lines, self.lines = self.lines, []
            return lines


@dataclass
class ActionFinished(Message):
    """A restart/stop/start/rebuild ended; `output` is its progress text."""

    action: str
    service: str
    ok: bool
    output: str
