"""Wakes waiters as soon as the engine reports a container event (health status, die,
start...), so waits for `service_healthy`, `service_completed_successfully` and
`up --wait` react within milliseconds instead of a poll interval.

A daemon thread follows `engine.events` in short windows (so it ends soon after
`close()`); each container event bumps a counter. A waiter reads `seen = count`, checks
the containers, and calls `wait(seen, timeout)`, which returns at once if an event came
in between. Events are only hints: the waiter always re-reads the state, and falls back
to its poll interval when the engine offers no events.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.api import Engine

WINDOW = 0.5  # seconds each follow of the journal lasts before the thread looks again
# After a wake-up that did not finish the wait, re-check soon: the engine may emit an
# event just before it writes the state that the event announces.
QUICK_RECHECKS = (0.02, 0.05, 0.1)


class ContainerChanges:
    """A counter of container events, bumped by a thread that follows the engine's."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cond = threading.Condition()
        self._count = 0
        self._closed = threading.Event()
        self.live = False  # whether events are being followed
        self._thread = threading.Thread(target=self._follow, name="container-changes",
                                        daemon=True)
        self._since = time.time()

    def start(self) -> ContainerChanges:
        self.live = True
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def count(self) -> int:
        with self._cond:
            return self._count

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until an event arrives after `seen` (True) or `timeout` passes (False)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._count != seen or self._closed.is_set(), timeout
            ) and self._count != seen

    def _follow(self) -> None:
        since = self._since
        try:
            while not self._closed.is_set():
                until = time.time() + WINDOW
                for event in self._engine.events(since=since, until=until, follow=True):
                    if self._closed.is_set():
                        return
                    if event.type == "container":
                        with self._cond:
                            self._count += 1
                            self._cond.notify_all()
                since = until
        except Exception:  # no usable events: waiters fall back to polling
            pass
        finally:
            self.live = False


def watch(engine: Engine) -> ContainerChanges:
    """A started follower of `engine`'s container events."""
    return ContainerChanges(engine).start()


class Pacer:
    """Paces one wait loop: wake on events, re-check quickly after a wake-up, and poll
    every `poll` seconds otherwise."""

    def __init__(self, changes: ContainerChanges | None, poll: float,
                 cancelled: threading.Event | None = None) -> None:
        self._changes = changes
        self._poll = poll
        self._cancelled = cancelled
        self._quick = len(QUICK_RECHECKS)
        self._seen = changes.count if changes is not None else 0

    def mark(self) -> None:
        """Call right before reading the state: later events will wake `pause`."""
        if self._changes is not None:
            self._seen = self._changes.count

    def pause(self) -> bool:
        """Wait for the next check; True when cancelled."""
        quick = self._quick < len(QUICK_RECHECKS)
        timeout = QUICK_RECHECKS[self._quick] if quick else self._poll
        changes = self._changes
        if changes is None or not changes.live:
            if self._cancelled is not None:
                return self._cancelled.wait(self._poll)
            time.sleep(self._poll)
            return False
        woke = changes.wait(self._seen, timeout)
        self._quick = 0 if woke else min(self._quick + 1, len(QUICK_RECHECKS))
        return self._cancelled is not None and self._cancelled.is_set()
