"""spawn_in_container: namespaces, cgroups, user, cwd, env, exit codes, caps and a real PTY."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import Resources
from engine.runtime.cgroups import CgroupDriver
from engine.runtime.nsexec import (
    ExecFailed,
    open_pty,
    set_winsize,
    spawn_in_container,
    wait_exit_code,
)
from tests.root.ctr_helpers import (
    FakeContainer,
    fake_container,
    private_cgroup_driver,
    unpack_rootfs,
)

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def rootfs(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_rootfs(busybox_tar, tmp_path_factory.mktemp("rootfs"))


@pytest.fixture
def ctr(rootfs: Path) -> Iterator[FakeContainer]:
    with fake_container(rootfs) as c:
        yield c


@pytest.fixture
def cgroup_driver() -> Iterator[CgroupDriver]:
    with private_cgroup_driver() as drv:
        yield drv


def run(ctr: FakeContainer, argv: list[str], **kw: object) -> tuple[int, str]:
    """Run to completion with stdout+stderr on a pipe; (exit code, output)."""
    r, w = os.pipe()
    try:
        pid = spawn_in_container(ctr.pid, argv, stdout=w, stderr=w, **kw)  # type: ignore[arg-type]
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    code = wait_exit_code(pid)
    assert code is not None
    return code, out


def test_runs_inside_the_containers_namespaces(ctr: FakeContainer) -> None:
    code, out = run(ctr, ["sh", "-c", "hostname; cat /proc/1/cmdline; echo; echo $$; ls /"],
                    env={"PATH": "/bin"})
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "fakectr"
    assert lines[1].startswith("sleep")
    assert 1 < int(lines[2]) < 100  # a pid in the container's pid namespace
    assert "busybox" not in lines[3:] and "bin" in lines[3:]


def test_exit_codes_propagate(ctr: FakeContainer) -> None:
    assert run(ctr, ["/bin/sh", "-c", "exit 7"])[0] == 7
    assert run(ctr, ["/bin/sh", "-c", "kill -9 $$"])[0] == 137
    with pytest.raises(ExecFailed) as err:
        run(ctr, ["nosuchcmd"])
    assert err.value.exit_code == 127
    assert "executable file not found" in str(err.value)


def test_env_user_and_workdir(ctr: FakeContainer) -> None:
    code, out = run(ctr, ["/bin/sh", "-c", "echo $FOO; id -u; id -g; id -G; pwd"],
                    env=["FOO=bar baz", "PATH=/bin"], uid=1000, gid=1000, groups=[1000, 5],
                    cwd="/tmp")
    assert code == 0, out
    assert out.splitlines() == ["bar baz", "1000", "1000", "1000 5", "/tmp"]
    with pytest.raises(ExecFailed, match="chdir to cwd"):
        run(ctr, ["/bin/true"], cwd="/nonexistent")


def test_capabilities_inside(ctr: FakeContainer) -> None:
    _, out = run(ctr, ["/bin/grep", "^Cap", "/proc/self/status"])
    caps = {k: int(v, 16) for k, v in (line.split(":") for line in out.splitlines())}
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == 0xA80425FB
    _, out = run(ctr, ["/bin/grep", "^CapEff", "/proc/self/status"],
                 caps={"CAP_CHOWN", "CAP_SYS_ADMIN"})
    assert int(out.split(":")[1], 16) == (1 << 0) | (1 << 21)
    _, out = run(ctr, ["/bin/grep", "^CapEff", "/proc/self/status"], uid=1000, gid=1000)
    assert int(out.split(":")[1], 16) == 0


def test_joins_the_cgroup_and_oom_gives_137(ctr: FakeContainer,
                                            cgroup_driver: CgroupDriver) -> None:
    cg = cgroup_driver.create("oomctr", Resources(memory=32 << 20))
    cg.add(ctr.pid)
    code, out = run(ctr, ["/bin/cat", "/proc/self/cgroup"], cgroup=cg)
    assert code == 0
    assert any(line.endswith(f"/{cgroup_driver.parent}/oomctr") for line in out.splitlines())
    code, _ = run(ctr, ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                  cgroup=cg)
    assert code == 137
    assert cg.oom_kills() == 1


def read_until(fd: int, needle: bytes, timeout: float = 5.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def test_tty_from_the_containers_devpts(ctr: FakeContainer) -> None:
    master, slave = open_pty(ctr.pid)
    try:
        set_winsize(master, 40, 132)
        pid = spawn_in_container(ctr.pid, ["/bin/sh", "-c", "tty; stty size; read x; echo got-$x"],
                                 stdin=slave, stdout=slave, stderr=slave, tty=True)
        os.close(slave)
        out = read_until(master, b"40 132")
        assert b"/dev/pts/0" in out, out
        assert b"40 132" in out, out
        os.write(master, b"hello\n")
        out = read_until(master, b"got-hello")
        assert b"got-hello" in out, out
        assert wait_exit_code(pid) == 0
    finally:
        os.close(master)
        with __import__("contextlib").suppress(OSError):
            os.close(slave)


def test_exec_latency_is_small(ctr: FakeContainer) -> None:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        pid = spawn_in_container(ctr.pid, ["/bin/true"])
        assert wait_exit_code(pid) == 0
        times.append(time.perf_counter() - t)
    assert sorted(times)[2] < 0.2


def test_no_leaked_fds_and_default_signal_dispositions(ctr: FakeContainer) -> None:
    leaked = os.open("/dev/null", os.O_RDONLY)  # inheritable, as a careless caller's fd
    os.set_inheritable(leaked, True)
    try:
        code, out = run(ctr, ["/bin/ls", "/proc/self/fd"])
        _, status = run(ctr, ["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    finally:
        os.close(leaked)
    assert code == 0
    fds = sorted(int(x) for x in out.split())
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4, fds  # ls holds one for /proc/self/fd
    masks = {k: int(v, 16) for k, v in (line.split(":") for line in status.splitlines())}
    assert masks == {"SigBlk": 0, "SigIgn": 0}


def test_signals_reach_the_process(ctr: FakeContainer) -> None:
    import signal

    pid = spawn_in_container(ctr.pid, ["/bin/sleep", "100"])
    time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    assert wait_exit_code(pid) == 143


def test_a_frozen_container_never_hangs_the_caller(ctr: FakeContainer,
                                                   cgroup_driver: CgroupDriver) -> None:
    from engine.api import EngineRuntimeError

    cg = cgroup_driver.create("frozen")
    cg.add(ctr.pid)
    cg.freeze()
    try:
        with pytest.raises(EngineRuntimeError, match="paused"):
            spawn_in_container(ctr.pid, ["/bin/true"], cgroup=cg)
        t = time.monotonic()
        with pytest.raises(EngineRuntimeError, match="did not start"):
            spawn_in_container(ctr.pid, ["/bin/true"], cgroup=cg.paths(), start_timeout=0.5)
        assert time.monotonic() - t < 3
    finally:
        cg.thaw()
