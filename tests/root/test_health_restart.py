"""Health checks and restart policies, driven by the container's monitor."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from engine.api import Healthcheck, Mount, RestartPolicy
from engine.local import LocalEngine
from engine.runtime import bundle
from tests.root import runtime_fixtures
from tests.root.runtime_fixtures import spec, wait_for

pytestmark = pytest.mark.root
engine = runtime_fixtures.engine  # the fixture
LOOP = "while true; do sleep 0.05; done"


def actions(engine: LocalEngine, cid: str) -> list[str]:
    return [e["action"] for e in engine.store.read_events() if e["id"] == cid]


def monitor_gone(engine: LocalEngine, cid: str) -> bool:
    return not bundle.monitor_alive(bundle.read_state(engine.store, cid))


def test_health_starting_healthy_unhealthy(engine: LocalEngine, tmp_path: Path) -> None:
    flag_dir = tmp_path / "hc"
    flag_dir.mkdir()
    # failures in the start period do not count while starting: "starting" is stable
    check = Healthcheck(test=("CMD-SHELL", "echo probing; test -f /hc/ok"), interval=0.2,
                        timeout=2.0, retries=2, start_period=60.0, start_interval=0.2)
    c = engine.container_create(spec(LOOP, healthcheck=check, mounts=(
        Mount(type="bind", source=str(flag_dir), target="/hc", read_only=True),)))
    engine.container_start(c.id)
    health = engine.container_inspect(c.id).state.health
    assert health is not None and health.status == "starting"
    wait_for(lambda: len(engine.container_inspect(c.id).state.health.log) >= 2)
    health = engine.container_inspect(c.id).state.health
    assert health.status == "starting" and health.failing_streak == 0  # not counted
    (flag_dir / "ok").touch()
    wait_for(lambda: engine.container_inspect(c.id).state.health.status == "healthy")
    (flag_dir / "ok").unlink()
    wait_for(lambda: engine.container_inspect(c.id).state.health.status == "unhealthy")
    health = engine.container_inspect(c.id).state.health
    assert health.failing_streak >= 2
    assert 1 <= len(health.log) <= 5
    assert health.log[-1].exit_code == 1 and health.log[-1].output == "probing\n"
    events = actions(engine, c.id)
    assert events.index("health_status: healthy") < events.index("health_status: unhealthy")
    inspect = engine.container_inspect(c.id).inspect()
    assert inspect["State"]["Health"]["Status"] == "unhealthy"
    engine.container_stop(c.id, timeout=0)


def test_health_timeout_counts_as_failure(engine: LocalEngine) -> None:
    check = Healthcheck(test=("CMD", "sleep", "5"), interval=0.1, timeout=0.2, retries=1)
    c = engine.container_create(spec(LOOP, healthcheck=check))
    engine.container_start(c.id)
    wait_for(lambda: engine.container_inspect(c.id).state.health.status == "unhealthy")
    last = engine.container_inspect(c.id).state.health.log[-1]
    assert last.exit_code == -1 and "exceeded timeout" in last.output
    engine.container_stop(c.id, timeout=0)


def test_on_failure_3_restarts_exactly_three_times(engine: LocalEngine) -> None:
    c = engine.container_create(spec("echo run; exit 2", restart=RestartPolicy(
        "on-failure", 3)))
    engine.container_start(c.id)
    wait_for(lambda: monitor_gone(engine, c.id), timeout=15)
    st = engine.container_inspect(c.id).state
    assert st.status == "exited" and st.exit_code == 2 and st.restart_count == 3
    events = actions(engine, c.id)
    assert events.count("start") == 4 and events.count("die") == 4
    assert [ln.text for ln in engine.container_logs(c.id)] == ["run\n"] * 4


def test_follow_keeps_reading_across_restarts(engine: LocalEngine) -> None:
    c = engine.container_create(spec("echo run; sleep 0.1; exit 1", restart=RestartPolicy(
        "on-failure", 2)))
    engine.container_start(c.id)
    t0 = time.monotonic()
    lines = [ln.text for ln in engine.container_logs(c.id, follow=True)]
    assert lines == ["run\n"] * 3  # every run, and it ends when the monitor is done
    assert time.monotonic() - t0 < 10
    assert monitor_gone(engine, c.id)


def test_always_restarts_after_a_crash_but_not_after_stop(engine: LocalEngine) -> None:
    c = engine.container_create(spec(LOOP, restart=RestartPolicy("always")))
    engine.container_start(c.id)
    first_pid = engine.container_inspect(c.id).state.pid
    os.kill(first_pid, signal.SIGKILL)  # a crash, not an engine request
    rec = wait_for(lambda: (r := engine.container_inspect(c.id)).state.status == "running"
                   and r.state.pid != first_pid and r)
    assert rec.state.restart_count == 1
    engine.container_stop(c.id, timeout=0.2)
    time.sleep(0.5)
    st = engine.container_inspect(c.id).state
    assert st.status == "exited" and st.restart_count == 1
    assert monitor_gone(engine, c.id)


def test_no_policy_and_unless_stopped(engine: LocalEngine) -> None:
    plain = engine.container_create(spec("exit 1"))
    engine.container_start(plain.id)
    assert engine.container_wait(plain.id, timeout=10) == 1
    wait_for(lambda: monitor_gone(engine, plain.id))
    assert engine.container_inspect(plain.id).state.restart_count == 0
    c = engine.container_create(spec("sleep 0.2; exit 0",
                                     restart=RestartPolicy("unless-stopped")))
    engine.container_start(c.id)
    wait_for(lambda: engine.container_inspect(c.id).state.restart_count >= 1, timeout=10)
    engine.container_kill(c.id)
    wait_for(lambda: monitor_gone(engine, c.id))
    assert engine.container_inspect(c.id).state.status == "exited"
