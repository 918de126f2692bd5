"""The test suite's own safety nets: `rootsweep` releases what a failed test left for a
data root, `leakcheck` finds what a session left on the host and tells ours from others'."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import hostscan, rootsweep
from tests.conftest import unique
from tests.leakcheck import LeakCheck, Ownership, Snapshot

pytestmark = pytest.mark.root

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
CID = "c0ffee" + "0" * 58


def mount(source: str, target: Path, fstype: str | None, flags: int = 0) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if _libc.mount(source.encode(), str(target).encode(),
                   fstype.encode() if fstype else None, flags, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["/bin/busybox", "sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def cgroup_parent() -> Iterator[Path]:
    """A private parent in the memory hierarchy (v1 here; the unified one elsewhere)."""
    hiers = hostscan.cgroup_hierarchies()
    hier = next((h for h in hiers if h.name == "memory"), hiers[0])
    parent = hier / unique("pyclk")
    parent.mkdir()
    try:
        yield parent
    finally:
        for path in sorted(parent.rglob("*"), key=lambda p: -len(p.parts)):
            if path.is_dir():
                rootsweep.remove_cgroup(str(path))
        rootsweep.remove_cgroup(str(parent))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        rootsweep.unmount_under(tmp_path)


def test_sweep_root_stops_unmounts_and_spares_bind_sources(
        scratch: Path, sleeper: subprocess.Popen[bytes], cgroup_parent: Path) -> None:
    root = scratch / "engine"
    bundle = root / "containers" / CID
    bundle.mkdir(parents=True)
    start = hostscan.starttime(sleeper.pid)
    (bundle / "state.json").write_text(json.dumps(
        {"status": "running", "monitor_pid": sleeper.pid, "monitor_start": start}))
    group = cgroup_parent / CID
    group.mkdir()
    source = scratch / "precious"
    source.mkdir()
    (source / "data.txt").write_text("keep me")
    mount("tmpfs", root / "volumes" / "t" / "_data", "tmpfs")
    mount(str(source), root / "volumes" / "b" / "_data", None, flags=4096)  # MS_BIND

    done = rootsweep.sweep_root(root)

    assert f"process {sleeper.pid} (busybox)" in done
    assert f"cgroup {group}" in done and not group.exists()
    assert not hostscan.alive(sleeper.pid, start)
    assert not [p for p, _ in hostscan.mounts() if hostscan.under(p, str(root))]
    import shutil

    shutil.rmtree(root)
    assert (source / "data.txt").read_text() == "keep me"


def test_leakcheck_names_this_sessions_leftovers_and_sweeps_them(
        scratch: Path, sleeper: subprocess.Popen[bytes], cgroup_parent: Path) -> None:
    check = LeakCheck(config=None)  # type: ignore[arg-type]
    check.before = Snapshot.take()
    check.own = Ownership(basetemp=str(scratch), cgroup_parents={cgroup_parent.name: "this test"})
    check.others = {"pretend another session runs"}
    check._processes = lambda: []  # type: ignore[method-assign]  # others' may come and go

    mine = cgroup_parent / CID
    mine.mkdir()
    stranger = cgroup_parent.parent / unique("pyclx")
    stranger.mkdir()
    try:
        mount("tmpfs", scratch / "leftover", "tmpfs")
        leaks, foreign = check.find()
        ours = {(leak.kind, leak.what) for leak in leaks}
        assert ("cgroup", str(mine)) in ours
        assert ("cgroup", str(cgroup_parent)) not in ours  # there before the snapshot
        assert ("mount", f"{scratch / 'leftover'} (tmpfs)") in ours
        assert ("cgroup", str(stranger)) in {(f.kind, f.what) for f in foreign}
        assert not check.strict

        for leak in leaks:
            if leak.what.startswith((str(scratch), str(cgroup_parent))):
                leak.sweep()
        assert not mine.exists()
        assert not (scratch / "leftover").is_mount()
    finally:
        with contextlib.suppress(OSError):
            stranger.rmdir()


def test_leakcheck_sees_a_child_process_left_running(sleeper: subprocess.Popen[bytes],
                                                     tmp_path: Path) -> None:
    check = LeakCheck(config=None)  # type: ignore[arg-type]
    check.before = Snapshot(links={}, netns=set(), rules=set(), cgroups=set(), mounts=set(),
                            procs=set(), run=set())
    check.own = Ownership(basetemp=str(tmp_path))
    found = {leak.what.split(" (")[0]: leak for leak in check._processes()}
    leak = found[f"pid {sleeper.pid}"]
    assert leak.why == "a child of this pytest process"
    assert os.getpid() not in {int(k.split()[1]) for k in found}


def test_another_roots_monitor_is_not_counted_as_ours(tmp_path: Path) -> None:
    """A `pyc-mon-*` whose bundle lies outside this session's basetemp is another run's."""
    import sys

    log = tmp_path / "elsewhere" / "containers" / CID / "monitor.log"
    log.parent.mkdir(parents=True)
    fake_monitor = ("import ctypes, sys, time\n"
                    "ctypes.CDLL('libc.so.6').prctl(15, b'pyc-mon-test', 0, 0, 0)\n"
                    "f = open(sys.argv[1], 'a'); print('up', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", fake_monitor, str(log)],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        procs = hostscan.processes()
        check = LeakCheck(config=None)  # type: ignore[arg-type]
        check.own = Ownership(basetemp=str(tmp_path / "this-session"))
        assert check._elsewhere(proc.pid, procs)
        check.own = Ownership(basetemp=str(tmp_path))
        assert not check._elsewhere(proc.pid, procs)
    finally:
        proc.kill()
        proc.wait()


def test_sessions_are_told_by_their_program() -> None:
    from tests.leakcheck import _is_session

    assert _is_session("timeout 600 .venv/bin/python -m pytest -q tests/root")
    assert _is_session("/work/main/.venv/bin/python3 /work/main/.venv/bin/pycompose up -d")
    assert not _is_session("bash /home/ci/pycompose/.ci/run")  # a checkout named pycompose
    assert not _is_session("/bin/busybox sleep 60")
