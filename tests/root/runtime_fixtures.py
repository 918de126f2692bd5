"""Fixtures for the runtime's root tests: an engine on a temp data root with a busybox
image, a private cgroup parent, and a teardown that kills every monitor and container
it started (by pid, checked against its start time) and removes their cgroups."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.api import ContainerSpec
from engine.local import LocalEngine
from engine.runtime import bundle
from engine.runtime.syscalls import proc_starttime
from tests.conftest import unique

IMAGE = "pyc-runtime-busybox:test"


def _kill_checked(pid: int, start: int) -> None:
    if pid > 0 and start and proc_starttime(pid) == start:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def cleanup_engine(engine: LocalEngine) -> None:
    """Kill monitors and containers of this data root by pid; remove their cgroups."""
    for cid in engine._container_ids():
        state = bundle.read_state(engine.store, cid)
        _kill_checked(int(state.get("monitor_pid") or 0), int(state.get("monitor_start") or 0))
        _kill_checked(int(state.get("pid") or 0), int(state.get("pid_start") or 0))
    time.sleep(0.05)
    from engine.runtime.cgroups import CgroupDriver, remove_parent

    driver = CgroupDriver.detect()
    for cid in engine._container_ids():
        with contextlib.suppress(Exception):
            driver.open(cid).remove()
    with contextlib.suppress(Exception):
        remove_parent(driver)


@pytest.fixture
def engine(engine_root: Path, busybox_tar: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEngine]:
    monkeypatch.setenv("PYCOMPOSE_CGROUP_PARENT", unique("pyct"))
    monkeypatch.setenv("PYCOMPOSE_ROOT", str(engine_root))
    eng = LocalEngine(engine_root)
    eng.image_import(str(busybox_tar), IMAGE)
    try:
        yield eng
    finally:
        cleanup_engine(eng)


def spec(script: str | None = None, **kw: Any) -> ContainerSpec:
    """A busybox container spec; `script` runs under `sh -c`."""
    if script is not None:
        kw["command"] = ("sh", "-c", script)
    kw.setdefault("name", unique("rt"))
    kw.setdefault("network_mode", "none")  # networking is tested by the network tests
    kw.setdefault("image", IMAGE)
    return ContainerSpec(**kw)


def run(engine: LocalEngine, script: str, timeout: float = 15.0,
        **kw: Any) -> tuple[int, str, str]:
    """Create, start and wait for a container; (exit code, stdout, stderr)."""
    c = engine.container_create(spec(script, **kw))
    engine.container_start(c.id)
    code = engine.container_wait(c.id, timeout=timeout)
    out = err = ""
    for line in engine.container_logs(c.id):
        if line.stream == "stdout":
            out += line.text
        else:
            err += line.text
    return code, out, err


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)
