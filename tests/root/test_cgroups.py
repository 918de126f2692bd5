"""The cgroup driver against plain forked processes: limits enforced, stats, freeze, kill, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.api import Resources
from engine.runtime.cgroups import Cgroup, CgroupDriver
from tests.conftest import BUSYBOX
from tests.root.ctr_helpers import private_cgroup_driver

pytestmark = pytest.mark.root


@pytest.fixture
def driver() -> Iterator[CgroupDriver]:
    """A driver whose groups live under a private parent, removed afterwards."""
    with private_cgroup_driver() as drv:
        yield drv


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
            p.wait()


def grows(counter: Callable[[], int], by: int, timeout: float = 10.0) -> bool:
    """Whether `counter()` grows by `by` within `timeout` (polling, not a fixed sleep)."""
    start = counter()
    deadline = time.monotonic() + timeout
    while counter() - start <= by:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def held(procs: list[subprocess.Popen[bytes]], cg: Cgroup, script: str) -> subprocess.Popen[bytes]:
    """A busybox shell that waits on stdin, is moved into `cg`, then runs `script`."""
    p = subprocess.Popen([BUSYBOX, "sh", "-c", f"read go; {script}"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.append(p)
    cg.add(p.pid)
    assert p.stdin is not None
    p.stdin.write(b"go\n")
    p.stdin.flush()
    return p


def test_detect_this_host(driver: CgroupDriver) -> None:
    assert driver.mode in ("v1", "v2", "hybrid")
    if Path("/sys/fs/cgroup/unified").is_dir() and Path("/sys/fs/cgroup/memory").is_dir():
        assert driver.mode == "hybrid"
        assert driver.v1["memory"] == Path("/sys/fs/cgroup/memory")
        assert driver.unified == Path("/sys/fs/cgroup/unified")


def test_create_writes_limits_and_remove_cleans_up(driver: CgroupDriver) -> None:
    cg = driver.create("c1", Resources(memory=64 << 20, cpus=0.5, pids_limit=20,
                                       cpu_shares=512, memory_reservation=32 << 20,
                                       cpuset_cpus="0"))
    assert cg.exists()
    if driver.mode != "v2":
        mem = cg.v1["memory"]
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (mem / "memory.soft_limit_in_bytes").read_text().strip() == str(32 << 20)
        assert (cg.v1["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cg.v1["cpu"] / "cpu.shares").read_text().strip() == "512"
        assert (cg.v1["pids"] / "pids.max").read_text().strip() == "20"
        assert (cg.v1["cpuset"] / "cpuset.cpus").read_text().strip() == "0"
    assert driver.open("c1").paths() == cg.paths()
    cg.remove()
    assert not cg.exists()
    assert all(not Path(p).exists() for p in cg.paths())


def test_memory_hog_is_oom_killed(driver: CgroupDriver,
                                  procs: list[subprocess.Popen[bytes]]) -> None:
    cg = driver.create("hog", Resources(memory=32 << 20))
    p = held(procs, cg, f"exec {BUSYBOX} dd if=/dev/zero of=/dev/null bs=64M count=1")
    assert p.wait(timeout=20) == -signal.SIGKILL
    assert cg.oom_kills() == 1
    assert cg.stats().oom_kills == 1


def test_fork_bomb_stops_at_pids_limit(driver: CgroupDriver,
                                       procs: list[subprocess.Popen[bytes]]) -> None:
    cg = driver.create("bomb", Resources(pids_limit=8))
    p = held(procs, cg, "i=0; while [ $i -lt 30 ]; do sleep 5 </dev/null >/dev/null 2>&1 & i=$((i+1)); done; echo done")
    _, err = p.communicate(timeout=20)
    assert b"can't fork" in err or b"Resource temporarily unavailable" in err
    assert cg.stats().pids <= 8
    assert len(cg.pids()) <= 8
    cg.kill()
    assert cg.pids() == []


def test_cpus_limit_throttles(driver: CgroupDriver,
                              procs: list[subprocess.Popen[bytes]]) -> None:
    cg = driver.create("cpu", Resources(cpus=0.2))
    held(procs, cg, "while :; do :; done")
    before = cg.cpu_ns()
    time.sleep(1.0)
    used = (cg.cpu_ns() - before) / 1e9
    assert 0.01 < used < 0.5, used


def test_stats_report_real_figures(driver: CgroupDriver,
                                   procs: list[subprocess.Popen[bytes]]) -> None:
    cg = driver.create("st", Resources(memory=128 << 20))
    held(procs, cg, "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done")
    assert grows(cg.cpu_ns, 10_000_000)  # under load, the spinner may get little CPU
    st = cg.stats()
    assert st.cpu_ns > 10_000_000
    assert st.mem_limit == 128 << 20
    assert 0 < st.mem_usage <= 128 << 20
    assert st.pids >= 1


def test_freeze_and_thaw(driver: CgroupDriver, procs: list[subprocess.Popen[bytes]]) -> None:
    cg = driver.create("fz")
    p = held(procs, cg, "while :; do :; done")
    time.sleep(0.1)
    cg.freeze()
    assert cg.frozen()
    a = cg.cpu_ns()
    time.sleep(0.3)
    assert cg.cpu_ns() - a < 5_000_000
    state = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state in ("S", "D", "t", "T")
    cg.thaw()
    assert not cg.frozen()
    assert grows(cg.cpu_ns, 10_000_000)


def test_kill_empties_even_a_frozen_group(driver: CgroupDriver,
                                          procs: list[subprocess.Popen[bytes]]) -> None:
    cg = driver.create("kl")
    p = held(procs, cg, "sleep 100 & sleep 100 & wait")
    deadline = time.monotonic() + 5
    while len(cg.pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(cg.pids()) == 3
    cg.freeze()
    cg.kill()
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert cg.pids() == []
    cg.remove()
    assert not cg.exists()


def test_devices_default_rules(driver: CgroupDriver) -> None:
    cg = driver.create("dev")
    d = cg.v1.get("devices")
    if d is None:
        pytest.skip("no v1 devices controller")
    rules = (d / "devices.list").read_text().split("\n")
    assert "c 1:3 rwm" in rules and "c 136:* rwm" in rules
    assert "a *:* rwm" not in rules
    assert os.path.isdir(d)


def test_v2_limits_are_translated(tmp_path: Path) -> None:
    """On a pure cgroup2 host: controllers enabled in each ancestor, v2 file names."""
    unified = tmp_path / "cgroup"
    group = unified / "pyc" / "cid"
    group.mkdir(parents=True)
    for d in (unified, unified / "pyc"):
        (d / "cgroup.controllers").write_text("cpuset cpu io memory pids hugetlb\n")
        (d / "cgroup.subtree_control").write_text("")
    files = ("memory.max", "memory.swap.max", "memory.low", "cpu.max", "cpu.weight",
             "pids.max", "cpuset.cpus", "io.weight", "cgroup.procs")
    for name in files:
        (group / name).write_text("")
    drv = CgroupDriver("v2", {}, unified, parent="pyc")
    cg = drv.create("cid", Resources(memory=64 << 20, memory_swap=96 << 20, cpus=0.5,
                                     cpu_shares=512, pids_limit=20, cpuset_cpus="0",
                                     blkio_weight=300, memory_reservation=8 << 20))
    got = {name: (group / name).read_text() for name in files}
    assert got["memory.max"] == str(64 << 20)
    assert got["memory.swap.max"] == str(32 << 20)
    assert got["memory.low"] == str(8 << 20)
    assert got["cpu.max"] == "50000 100000"
    assert got["cpu.weight"] == "20"
    assert got["pids.max"] == "20"
    assert got["cpuset.cpus"] == "0"
    assert got["io.weight"] == "default 300"
    assert (unified / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +pids"
    assert cg.paths() == [str(group)]


def test_limits_docker_refuses_are_refused() -> None:
    from engine.api import InvalidArgument
    from engine.runtime.cgroups import validate_resources

    for bad, message in ((Resources(memory=1 << 20), "Minimum memory limit"),
                         (Resources(memory=64 << 20, memory_swap=32 << 20), "memoryswap"),
                         (Resources(memory_swap=64 << 20), "always set the Memory"),
                         (Resources(cpus=512.0), "Range of CPUs"),
                         (Resources(cpuset_cpus="0-511"), "Requested CPUs are not available"),
                         (Resources(blkio_weight=5), "blkio weight")):
        with pytest.raises(InvalidArgument, match=message):
            validate_resources(bad)
    validate_resources(Resources(memory=64 << 20, memory_swap=-1, cpus=0.5, cpuset_cpus="0"))


def test_oom_notifier_wakes_up_on_an_oom_kill(driver: CgroupDriver,
                                             procs: list[subprocess.Popen[bytes]]) -> None:
    import select

    cg = driver.create("oomwatch", Resources(memory=32 << 20))
    fd = cg.oom_notifier()
    if fd is None:
        pytest.skip("no OOM notification interface on this host")
    try:
        assert not select.select([fd], [], [], 0)[0]
        p = held(procs, cg, f"exec {BUSYBOX} dd if=/dev/zero of=/dev/null bs=64M count=1")
        assert p.wait(timeout=20) == -signal.SIGKILL
        assert select.select([fd], [], [], 5)[0]
        assert cg.oom_kills() == 1
    finally:
        os.close(fd)
