"""Docker's health-check state machine: start period, retries, streaks, the last 5."""

from __future__ import annotations

from engine.api import Healthcheck
from engine.runtime.health import HealthMonitor, probe_argv


def test_probe_argv_forms() -> None:
    assert probe_argv(("CMD", "curl", "-f", "x")) == ("curl", "-f", "x")
    assert probe_argv(("CMD-SHELL", "test -f /ok")) == ("/bin/sh", "-c", "test -f /ok")
    assert probe_argv(("NONE",)) is None and probe_argv(()) is None


def test_transitions_and_events() -> None:
    h = HealthMonitor(Healthcheck(test=("CMD", "x"), retries=2), started=0.0)
    assert h.status == "starting"
    assert h.record(1.0, "s", "e", 0, "ok") == "healthy"
    assert h.record(2.0, "s", "e", 1, "bad") is None and h.failing_streak == 1
    assert h.record(3.0, "s", "e", 1, "bad") == "unhealthy"
    assert h.record(4.0, "s", "e", 0, "ok") == "healthy" and h.failing_streak == 0


def test_failures_in_start_period_do_not_count() -> None:
    h = HealthMonitor(Healthcheck(test=("CMD", "x"), retries=1, start_period=10.0,
                                  start_interval=0.5, interval=3.0), started=0.0)
    assert h.delay(1.0) == 0.5
    assert h.record(1.0, "s", "e", 1, "no") is None
    assert h.status == "starting" and h.failing_streak == 0
    assert h.record(11.0, "s", "e", 1, "no") == "unhealthy"
    assert h.delay(12.0) == 3.0


def test_keeps_last_five_and_truncates_output() -> None:
    h = HealthMonitor(Healthcheck(test=("CMD", "x")), started=0.0)
    for i in range(8):
        h.record(float(i), str(i), str(i), 0, "x" * 5000)
    state = h.as_state()
    assert [e["start"] for e in state["log"]] == ["3", "4", "5", "6", "7"]
    assert len(state["log"][0]["output"]) == 4096


def test_spec_check_merges_over_the_images() -> None:
    from engine.runtime.specs import healthcheck as _healthcheck

    image = {"Test": ["CMD", "probe"], "Interval": 10 * 10**9, "Retries": 5}
    merged = _healthcheck(Healthcheck(test=(), timeout=2.0), image)
    assert merged == Healthcheck(test=("CMD", "probe"), interval=10.0, timeout=2.0,
                                 retries=5)
    assert _healthcheck(Healthcheck(test=("NONE",)), image) is None
    assert _healthcheck(None, image) == Healthcheck(("CMD", "probe"), 10.0, 30.0, 5)
    assert _healthcheck(Healthcheck(test=("CMD", "x")), None) == Healthcheck(("CMD", "x"))
    assert _healthcheck(None, {"Test": ["NONE"]}) is None
