"""A minimal stand-in container for ops tests: a busybox rootfs, fresh namespaces, PID 1 asleep.

It is built with the same primitives as the runtime (unshare, proc + devpts mounts, chroot)
but without it, so exec/top/stats/pause can be tested on their own. Killing PID 1 tears
the namespaces and their mounts down; nothing stays mounted on the host.
Also a cgroup driver under a private parent, for tests that put processes in cgroups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.runtime import ops_syscalls as sc
from engine.runtime.cgroups import Cgroup, CgroupDriver, remove_parent
from tests.conftest import unique


@dataclass
class FakeContainer:
    pid: int  # host pid of the container's PID 1
    rootfs: Path


def unpack_rootfs(tar: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="fully_trusted")
    (dest / "dev" / "pts").mkdir(parents=True, exist_ok=True)
    for name, minor in (("null", 3), ("zero", 5)):
        node = dest / "dev" / name
        if not node.exists():
            os.mknod(node, 0o666 | 0o020000, os.makedev(1, minor))
            os.chmod(node, 0o666)
    return dest


@contextlib.contextmanager
def fake_container(rootfs: Path, hostname: str = "fakectr") -> Iterator[FakeContainer]:
    r, w = os.pipe()
    outer = os.fork()
    if outer == 0:
        try:
            os.close(r)
            sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET
                       | sc.CLONE_NEWPID)
            init = os.fork()
            if init == 0:
                sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
                import socket

                socket.sethostname(hostname)
                sc.mount("proc", str(rootfs / "proc"), "proc", 0)
                sc.mount("devpts", str(rootfs / "dev" / "pts"), "devpts", 0,
                         "newinstance,ptmxmode=0666,mode=0620")
                os.chroot(str(rootfs))
                os.chdir("/")
                os.close(w)
                os.execv("/bin/busybox", ["sleep", "1000"])
            os.write(w, str(init).encode())
            os.close(w)
            os.waitpid(init, 0)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        pid = int(f.read() or 0)
    try:
        assert pid > 0
        deadline = time.monotonic() + 5
        while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):
            if time.monotonic() > deadline:
                raise TimeoutError("fake container did not start")
            time.sleep(0.005)
        yield FakeContainer(pid, rootfs)
    finally:
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.waitpid(outer, 0)


@contextlib.contextmanager
def private_cgroup_driver() -> Iterator[CgroupDriver]:
    """A cgroup driver whose groups live under a private parent, removed afterwards."""
    drv = CgroupDriver.detect(parent=unique("pyc-test-"))
    try:
        yield drv
    finally:
        for cid in drv.list_ids():
            Cgroup(drv, cid, *drv._dirs(cid)).remove()
        remove_parent(drv)
