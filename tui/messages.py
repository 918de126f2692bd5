"""Messages from the dashboard's worker threads to its widgets (posting is thread-safe)."""

from __future__ import annotations

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
class LogLine(Message):
    """One line of the followed logs (`web-1 | text` when following all services)."""

    text: str
    generation: int  # which follower sent it: lines of a replaced follower are dropped


@dataclass
class ActionFinished(Message):
    """A restart/stop/start/rebuild ended; `output` is its progress text."""

    action: str
    service: str
    ok: bool
    output: str
