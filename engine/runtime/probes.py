"""Health-check probes: one process run inside the container, its output and its end.

`Probe.spawn` starts the check through nsexec (the container's namespaces, cgroup, user
and capabilities); the monitor polls its output pipe, and `result()`/`abort()` reap it.
On a timeout the probe itself is killed before its helper, so that it is never
re-parented to the host's init (a pid namespace cannot end before its last task is
reaped, and the host's init may take its time).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from engine.runtime.containerinit import exit_code_of
from engine.runtime.launcher import LaunchPlan
from engine.runtime.logs import timestamp


@dataclass
class Probe:
    """One running health-check process and its captured output."""

    pid: int
    out_r: int
    start: str
    deadline: float
    output: bytes = b""
    exit_code: int | None = None
    timed_out: bool = False
    timeout: float = 0.0

    @classmethod
    def spawn(cls, pid: int, cgroup: Any, plan: LaunchPlan, argv: tuple[str, ...],
              timeout: float) -> Probe:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = spawn_in_container(pid, argv, plan, out_w, cgroup)
        finally:
            os.close(out_w)
        os.set_blocking(out_r, False)
        return cls(pid=pid, out_r=out_r, start=timestamp(),
                   deadline=time.monotonic() + timeout, timeout=timeout)

    def read(self) -> bool:
        """Read what is there; True at EOF (the probe finished)."""
        try:
            data = os.read(self.out_r, 65536)
        except BlockingIOError:
            return False
        if data:
            if len(self.output) < 65536:
                self.output += data
            return False
        return True

    def result(self) -> tuple[int, str]:
        if self.timed_out:
            self.abort()
            return -1, f"Health check exceeded timeout ({_fmt_duration(self.timeout)})"
        os.close(self.out_r)
        _, status = os.waitpid(self.pid, 0)
        return exit_code_of(status), self.output.decode("utf-8", "replace")

    def abort(self) -> None:
        """Kill the probe, then its helper. Killing the helper first would re-parent the
        probe to the host's init, and the container's pid namespace could not end until
        that init got round to reaping it."""
        killed = False
        children = f"/proc/{self.pid}/task/{self.pid}/children"
        with contextlib.suppress(OSError, ValueError), open(children) as f:
            for child in f.read().split():
                os.kill(int(child), signal.SIGKILL)
                killed = True
        deadline = time.monotonic() + (1.0 if killed else 0.0)
        while True:  # the helper reaps the probe and exits by itself
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() >= deadline:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                break
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            os.close(self.out_r)


def _fmt_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


def spawn_in_container(pid: int, argv: tuple[str, ...], plan: LaunchPlan, out_fd: int,
                       cgroup: Any) -> int:
    """Run a probe inside the running container `pid` as the container's user, with
    stdout+stderr on out_fd; returns the host pid whose exit status is the probe's."""
    from engine.runtime import nsexec

    proc = plan.process
    return nsexec.spawn_in_container(
        pid, list(argv), env=list(proc.env), uid=proc.uid, gid=proc.gid,
        groups=list(proc.groups), cwd="/", stdout=out_fd, stderr=out_fd,
        caps=set(proc.caps), cgroup=cgroup, no_new_privs=proc.no_new_privs,
        seccomp=proc.seccomp)
