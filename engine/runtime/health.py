"""Docker's health-check state machine (moby daemon/health.go), without any I/O.

The monitor asks `delay()` when to probe next, runs the probe, and feeds the result to
`record()`, which returns the new status when it changed (the monitor then emits a
`health_status: <status>` event). A failing probe during `start_period` while still
`starting` does not count; `retries` consecutive failures make it `unhealthy`; one
success makes it `healthy`. The last 5 results are kept, as `docker inspect` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.api import Healthcheck

KEEP = 5
MAX_OUTPUT = 4096
DEFAULT_INTERVAL = 30.0
DEFAULT_RETRIES = 3


def probe_argv(test: tuple[str, ...]) -> tuple[str, ...] | None:
    """The command a probe runs; None for NONE / an empty test (no health check)."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return tuple(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:]))
    return ("/bin/sh", "-c", " ".join(test))


@dataclass
class HealthMonitor:
    check: Healthcheck
    started: float  # monotonic time the container started
    status: str = "starting"
    failing_streak: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def interval(self) -> float:
        return self.check.interval if self.check.interval > 0 else DEFAULT_INTERVAL

    @property
    def timeout(self) -> float:
        return self.check.timeout if self.check.timeout > 0 else DEFAULT_INTERVAL

    @property
    def retries(self) -> int:
        return self.check.retries if self.check.retries > 0 else DEFAULT_RETRIES

    def in_start_period(self, now: float) -> bool:
        return now - self.started < self.check.start_period

    def delay(self, now: float) -> float:
        if self.status == "starting" and self.check.start_interval > 0 \
                and self.in_start_period(now):
            return self.check.start_interval
        return self.interval

    def record(self, now: float, start: str, end: str, exit_code: int,
               output: str) -> str | None:
        old = self.status
        if exit_code == 0:
            self.failing_streak = 0
            self.status = "healthy"
        elif not (self.status == "starting" and self.in_start_period(now)):
            self.failing_streak += 1
            if self.failing_streak >= self.retries:
                self.status = "unhealthy"
        self.log.append({"start": start, "end": end, "exit_code": exit_code,
                         "output": output[:MAX_OUTPUT]})
        del self.log[:-KEEP]
        return self.status if self.status != old else None

    def as_state(self) -> dict[str, Any]:
        return {"status": self.status, "failing_streak": self.failing_streak,
                "log": list(self.log)}
