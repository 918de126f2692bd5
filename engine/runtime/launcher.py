"""Start a container's detached monitor: fork -> setsid -> fork, then wait for its report.

The calling (CLI) process forks an intermediate child, which calls setsid(), forks the
monitor and exits at once; the caller reaps it, so the monitor is re-parented away and
survives the caller. The monitor closes every inherited descriptor except the report
pipe (a lock fd inherited by a long-lived monitor would keep the lock held), starts the
container (see monitor.py for the ready/go protocol with the container init), then
writes one JSON line on the report pipe — {"ok": true, "pid": N, "monitor_pid": M} or
{"ok": false, "kind": "Conflict", "error": "..."} — and closes it. EOF without a line
means the monitor died; its traceback is in the bundle's monitor.log.
"""

from __future__ import annotations

import json
import os
import select
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.api import (
    Conflict,
    EngineError,
    EngineRuntimeError,
    Healthcheck,
    InvalidArgument,
    NotFound,
    Resources,
    RestartPolicy,
    Ulimit,
)
from engine.runtime.rootfs import RootfsPlan

if TYPE_CHECKING:
    from engine.store import Store

ERRORS: dict[str, type[EngineError]] = {
    "Conflict": Conflict, "NotFound": NotFound, "InvalidArgument": InvalidArgument,
    "EngineRuntimeError": EngineRuntimeError,
}


@dataclass(frozen=True)
class ProcessPlan:
    args: tuple[str, ...]
    env: tuple[str, ...]  # "K=V"
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    caps: frozenset[str] = frozenset()
    no_new_privs: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    seccomp: bytes | None = None  # a compiled filter (seccomp.py); None: unconfined


@dataclass(frozen=True)
class LaunchPlan:
    """Everything the monitor needs to (re)start one container, resolved by the CLI."""

    container_id: str
    name: str
    rootfs: RootfsPlan
    process: ProcessPlan
    hostname: str
    domainname: str = ""
    network_mode: str = ""  # "", "bridge", "none", "host", "container:<id>"
    join_netns_pid: int = 0  # network_mode container:<x>: pid of x's init
    pid_host: bool = False
    ipc_host: bool = False
    healthcheck: Healthcheck | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0
    resources: Resources = field(default_factory=Resources)
    privileged: bool = False
    devices: tuple[str, ...] = ()
    log_driver: str = "json-file"  # "none": output is discarded, as Docker's none driver
    log_max_size: int | None = None
    log_max_file: int = 1
    auto_remove: bool = False
    tty: bool = False  # the init gets a terminal of the container's devpts as stdio
    stdin_open: bool = False  # stdin stays open (a pipe nobody writes to), as `-i`

    @property
    def own_netns(self) -> bool:
        return self.network_mode not in ("host",) and not self.network_mode.startswith(
            "container:")


def launch(engine: Any, store: Store, plan: LaunchPlan, timeout: float = 60.0) -> dict[str, Any]:
    """Start the monitor for `plan` and return its report (raises the reported error)."""
    from engine.runtime import monitor

    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # intermediate
        code = 1
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                monitor.main(engine, store, plan, w)  # never returns
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    try:
        data = _read_report(r, timeout)
    finally:
        os.close(r)
    if not data:
        raise EngineRuntimeError(
            f"the monitor of {plan.name} exited before the container started "
            f"(see {store.path('containers', plan.container_id, 'monitor.log')})")
    report: dict[str, Any] = json.loads(data)
    if not report.get("ok"):
        raise ERRORS.get(report.get("kind", ""), EngineRuntimeError)(report["error"])
    return report


def _read_report(fd: int, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise EngineRuntimeError("timed out waiting for the container monitor")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]
