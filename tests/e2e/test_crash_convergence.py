"""`kill -9` of `pycompose up -d` at several points, then `up -d --wait` again: the
project converges (one container per replica, all running or healthy, one network, one
volume, the published port answers) and `down -v` leaves nothing on the host."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.api import ContainerSpec
from engine.network.bridge import veth_name_for
from engine.runtime import sweep
from engine.runtime.syscalls import proc_starttime
from tests import hostscan
from tests.e2e.conftest import BASE_IMAGE, Project

pytestmark = [pytest.mark.root, pytest.mark.e2e]

PROJECT = "crash"
LABEL = {"com.docker.compose.project": PROJECT}
EXPECTED = ["crash-cache-1", "crash-db-1", "crash-tail-1", "crash-web-1", "crash-worker-1",
            "crash-worker-2"]
HEALTHY = {"crash-cache-1", "crash-db-1"}  # the services with a health check
SETTLE = 10.0  # seconds for monitors and proxies to exit after `down`
MID_CREATE_TRIES = 3  # the window is a few ms per container: a kill may just miss it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ps(p: Project, *args: str) -> list[dict[str, Any]]:
    out = p.run("ps", "--format", "json", *args, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def half_created(root: Path) -> list[str]:
    """Bundle directories whose config.json is not written (yet)."""
    try:
        entries = list(os.scandir(root / "containers"))
    except FileNotFoundError:
        return []
    return [e.name for e in entries if len(e.name) == 64
            and not os.path.exists(os.path.join(e.path, "config.json"))]


# Kill points: each is true once `up` got that far (polled while it runs).
def after_start(p: Project, root: Path) -> bool:
    return True


def network_exists(p: Project, root: Path) -> bool:
    return bool(p.engine().network_list(labels=LABEL))


def first_container_exists(p: Project, root: Path) -> bool:
    bundles = root / "containers"
    return bundles.is_dir() and any((bundles / e / "config.json").exists()
                                    for e in os.listdir(bundles))


def container_half_created(p: Project, root: Path) -> bool:
    return bool(half_created(root))


def waiting_for_health(p: Project, root: Path) -> bool:
    cache = [c for c in p.engine().container_list(labels=LABEL) if c.name == "crash-cache-1"]
    return bool(cache) and cache[0].state.health is not None and \
        cache[0].state.health.status == "starting"


KILL_POINTS: dict[str, Callable[[Project, Path], bool]] = {
    "after-start": after_start, "network-exists": network_exists,
    "first-container": first_container_exists, "mid-create": container_half_created,
    "waiting-for-health": waiting_for_health}


def kill_up_when(p: Project, root: Path, reached: Callable[[Project, Path], bool]) -> None:
    """Start `up -d`, SIGKILL it (by its pid) as soon as `reached` holds."""
    proc = p.popen("up", "-d")
    try:
        deadline = time.monotonic() + 30
        while not reached(p, root):
            assert proc.poll() is None, f"up finished before the kill point:\n" \
                                        f"{proc.communicate()[1]}"
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:  # a failed wait above: do not leave it running
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "up ended before it was killed"


def assert_converged(p: Project, port: int) -> None:
    engine = p.engine()
    listed = ps(p, "-a")
    assert sorted(c["Name"] for c in listed) == EXPECTED
    assert {c["State"] for c in listed} == {"running"}, listed
    assert {c["Name"] for c in listed if c["Health"] == "healthy"} == HEALTHY, listed
    every = engine.container_list(all=True)  # also what the project label would not show
    assert sorted(c.name for c in every) == EXPECTED
    assert [n.name for n in engine.network_list(labels=LABEL)] == ["crash_back"]
    assert [v.name for v in engine.volume_list()] == ["crash_data"]
    assert sorted(os.listdir(Path(p.env["PYCOMPOSE_ROOT"]) / "containers")) == \
        sorted(c.id for c in every)  # no stray bundle
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        assert r.read() == b"db-ok\n"
    again = p.run("up", "-d", check=True)
    assert "Nothing to do: the project is up to date." in again.stderr


def host_footprint(p: Project) -> dict[str, Any]:
    """What the running project holds on the host, to check it is all gone after down."""
    root = p.env["PYCOMPOSE_ROOT"]
    monitors = []
    for c in p.engine().container_list(all=True):
        state = json.loads((Path(root) / "containers" / c.id / "state.json").read_text())
        if state.get("monitor_pid"):
            monitors.append((int(state["monitor_pid"]), int(state["monitor_start"])))
    bridges = {b for b, owner in hostscan.bridge_owners().items() if owner == root}
    assert bridges, "the project's bridge is not registered"
    ids = [c.id for c in p.engine().container_list(all=True)]
    veths = {veth_name_for(cid, n.id) for cid in ids
             for n in p.engine().network_list(labels=LABEL)}
    assert veths & set(hostscan.links()), "no veth of the project found"
    return {"ids": ids, "monitors": monitors, "bridges": bridges, "veths": veths}


def assert_nothing_left(p: Project, footprint: dict[str, Any]) -> None:
    engine = p.engine()
    root = p.env["PYCOMPOSE_ROOT"]
    assert engine.container_list(all=True) == []
    assert engine.network_list(labels=LABEL) == []
    assert engine.volume_list() == []
    assert os.listdir(Path(root) / "containers") == []
    deadline = time.monotonic() + SETTLE
    while any(proc_starttime(pid) == start for pid, start in footprint["monitors"]):
        assert time.monotonic() < deadline, "a container monitor outlived down"
        time.sleep(0.1)
    links = hostscan.links()
    assert not footprint["bridges"] & set(links)
    assert not footprint["bridges"] & set(links.values())  # no veth left on it
    assert not footprint["veths"] & set(links)
    assert not footprint["bridges"] & set(hostscan.bridge_owners())
    ids = footprint["ids"]
    assert not [d for d in hostscan.cgroup_dirs() if any(i in d for i in ids)]
    assert not [m for m, _ in hostscan.mounts() if m.startswith(root)]
    rules = hostscan.iptables_lines() | hostscan.nft_lines()
    assert not [r for r in rules if any(i[:12] in r for i in ids)]


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_up_then_up_again_converges(project: Callable[[str], Project], engine_root: Path,
                                         point: str) -> None:
    p = project(PROJECT)
    port = free_port()
    p.env["CRASH_PORT"] = str(port)
    kill_up_when(p, engine_root, KILL_POINTS[point])
    leftovers = half_created(engine_root)
    for _ in range(MID_CREATE_TRIES if point == "mid-create" and not leftovers else 0):
        # the create finished between our look and the kill: start afresh and retry
        p.run("down", "-v", "-t", "0", check=True)
        kill_up_when(p, engine_root, KILL_POINTS[point])
        leftovers = half_created(engine_root)
        if leftovers:
            break
    if point == "mid-create":
        assert leftovers, "the kill left no half-created bundle to check"
    listed = ps(p, "-a")  # a half-created bundle is never listed, and is swept
    assert not {c["ID"] for c in listed} & set(leftovers)
    assert half_created(engine_root) == []
    assert len({c["Name"] for c in listed}) == len(listed)  # nothing duplicated

    result = p.run("up", "-d", "--wait", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_converged(p, port)

    footprint = host_footprint(p)
    p.run("down", "-v", "-t", "0", check=True)
    assert_nothing_left(p, footprint)


def test_kill_up_then_down_leaves_nothing(project: Callable[[str], Project],
                                          engine_root: Path) -> None:
    """Killed while waiting for health, then taken down without another `up`."""
    p = project(PROJECT)
    p.env["CRASH_PORT"] = str(free_port())
    kill_up_when(p, engine_root, waiting_for_health)
    footprint = host_footprint(p)
    assert footprint["monitors"], "no container was running at the kill"
    p.run("down", "-v", "-t", "0", check=True)
    assert_nothing_left(p, footprint)


def test_incomplete_bundles_are_ignored_and_swept(project: Callable[[str], Project],
                                                  engine_root: Path) -> None:
    """Bundles a killed engine call left: never listed, never a crash, removed; the one a
    live creator still holds is left alone."""
    p = project(PROJECT)
    containers = engine_root / "containers"
    containers.mkdir(exist_ok=True)
    abandoned = containers / ("a" * 64)  # killed after state.json, before config.json
    (abandoned / "upper").mkdir(parents=True)
    (abandoned / "state.json").write_text(json.dumps({"status": "running", "pid": 1}))
    empty = containers / ("b" * 64)  # killed right after the mkdir
    empty.mkdir()
    removing = containers / f"{sweep.REMOVING_PREFIX}{'c' * 64}"  # killed mid-remove
    (removing / "upper").mkdir(parents=True)
    locks = engine_root / "locks"
    locks.mkdir(exist_ok=True)
    for lock in (f"container-{'c' * 64}.lock", f"container-op-{'c' * 64}.lock"):
        (locks / lock).touch()
    in_progress = containers / ("d" * 64)
    creating = sweep.Creating(p.engine().store, in_progress.name)  # type: ignore[attr-defined]
    try:
        (in_progress / "upper").mkdir(parents=True)
        for args in (("ps", "-a", "--format", "json"), ("ps", "-a")):
            result = p.run(*args)
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
            assert result.stdout.strip() in ("", "NAME   IMAGE   COMMAND   SERVICE   CREATED"
                                             "   STATUS   PORTS")
        assert sorted(os.listdir(containers)) == [in_progress.name]
        assert p.engine().container_list(all=True) == []
    finally:
        creating.release()
    assert p.engine().container_list(all=True) == []  # its creator is gone now
    assert os.listdir(containers) == []
    assert not [n for n in os.listdir(locks) if n.startswith(("container-", "create-"))]
    destroyed = [e["id"] for e in p.engine().store.read_events()  # type: ignore[attr-defined]
                 if e["action"] == "destroy"]
    assert destroyed == ["c" * 64]  # only the one that had been created


def test_start_waits_for_a_monitor_still_starting(project: Callable[[str], Project]) -> None:
    """A `start` whose caller was killed mid-launch leaves its monitor going on while the
    state still says `created`: a second start waits for it instead of launching a
    second monitor (and container) for the same bundle."""
    engine = project(PROJECT).engine()
    c = engine.container_create(ContainerSpec(image=BASE_IMAGE, name="crash-starting",
                                              command=("sleep", "100"), network_mode="none"))
    claim = sweep.claim_start(engine.store, c.id)  # stands for the killed caller's monitor
    starter = threading.Thread(target=engine.container_start, args=(c.id,))
    try:
        starter.start()
        starter.join(0.5)
        assert starter.is_alive(), "start did not wait for the starting monitor"
        assert engine.container_inspect(c.id).state.status == "created"
        monitor_log = engine.store.path("containers", c.id, "monitor.log")
        assert not monitor_log.exists(), "a second monitor was launched"
    finally:
        os.close(claim)
    starter.join(30)
    assert not starter.is_alive()
    assert engine.container_inspect(c.id).state.status == "running"
    engine.container_remove(c.id, force=True)
