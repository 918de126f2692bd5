"""A container's merged rootfs for cp/export, mounted only in a helper's private mount namespace.

`merged_root()` forks a helper that unshares its mount namespace, mounts the overlay
(read-only as `upper:layers...` lower dirs, or writable with the bundle's upper/work when
the container is stopped) on an empty directory and waits. The caller opens the mount
through `/proc/<helper>/root/...`, gets a directory fd, and works relative to it; when the
block ends the helper exits and the mount disappears with its namespace. Nothing is ever
mounted in the host's namespace, so an error cannot leave a mount behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.api import EngineRuntimeError
from engine.runtime import ops_syscalls as sc


@contextlib.contextmanager
def merged_root(lowerdirs: Sequence[str], upper: str, work: str | None, scratch: Path,
                writable: bool = False) -> Iterator[int]:
    """A directory fd of the overlay of `lowerdirs` (bottom -> top) with `upper` on top."""
    scratch.mkdir(parents=True, exist_ok=True)
    point = tempfile.mkdtemp(prefix="ops-", dir=scratch)
    if writable:
        if work is None:
            raise EngineRuntimeError("a writable rootfs needs a work directory")
        options = (f"lowerdir={':'.join(reversed(lowerdirs))},upperdir={upper},"
                   f"workdir={work}")
    else:
        layers = [upper, *reversed(lowerdirs)]
        options = f"lowerdir={':'.join(layers)}"
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            if len(options.split(":")) == 1 and not writable:
                sc.mount(upper, point, None, sc.MS_BIND | sc.MS_REC)  # a single layer
            else:
                sc.mount("overlay", point, "overlay", 0 if writable else sc.MS_RDONLY, options)
            os.write(ready_w, b"ok")
            os.read(done_r, 1)
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(ready_w, f"error: {exc}".encode())
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    fd = -1
    try:
        msg = os.read(ready_r, 4096).decode(errors="replace")
        if msg != "ok":
            raise EngineRuntimeError(f"cannot mount the container's rootfs: {msg}")
        fd = os.open(f"/proc/{helper}/root{point}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)
        os.close(ready_r)
        os.close(done_w)
        try:
            os.waitpid(helper, 0)
        except ChildProcessError:
            pass
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.kill(helper, signal.SIGKILL)
            os.waitpid(helper, 0)
            raise
        with contextlib.suppress(OSError):
            os.rmdir(point)
        shutil.rmtree(point, ignore_errors=True)
