"""Per-container process limits: ulimits (setrlimit in the child) and namespaced sysctls.

`validate_ulimits` and `validate_sysctls` run at create time so that bad values fail
early with one clear message; `apply_ulimits` runs in the container init just before
exec. Sysctls are written by `rootfs.write_sysctls` inside the container's namespaces
before /proc/sys is made read-only.
"""

from __future__ import annotations

import resource
from collections.abc import Iterable

from engine.api import InvalidArgument, Ulimit

RLIMITS: dict[str, int] = {
    "core": resource.RLIMIT_CORE, "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA, "fsize": resource.RLIMIT_FSIZE,
    "locks": 10, "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE, "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS, "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": getattr(resource, "RLIMIT_RTTIME", 15), "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK, "as": resource.RLIMIT_AS,
}

# Docker accepts only sysctls that are namespaced (moby opts/sysctl validation).
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_UTS_SYSCTLS = {"kernel.domainname", "kernel.hostname"}


def validate_ulimits(ulimits: Iterable[Ulimit]) -> None:
    for u in ulimits:
        if u.name not in RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        if u.soft < -1 or u.hard < -1 or (u.hard != -1 and u.soft > u.hard and u.soft != -1):
            raise InvalidArgument(
                f"ulimit {u.name}: soft limit {u.soft} is greater than hard limit {u.hard}")
        _, host_hard = resource.getrlimit(RLIMITS[u.name])
        if host_hard != resource.RLIM_INFINITY and (u.hard == -1 or u.hard > host_hard):
            raise InvalidArgument(
                f"ulimit {u.name}: hard limit {u.hard} is above this host's limit "
                f"{host_hard} (pycompose cannot raise it)")


def apply_ulimits(ulimits: Iterable[Ulimit]) -> None:
    for u in ulimits:
        soft = resource.RLIM_INFINITY if u.soft == -1 else u.soft
        hard = resource.RLIM_INFINITY if u.hard == -1 else u.hard
        resource.setrlimit(RLIMITS[u.name], (soft, hard))


def validate_sysctls(sysctls: Iterable[tuple[str, str]], network_mode: str,
                     ipc_mode: str = "") -> None:
    for key, _ in sysctls:
        if key in _UTS_SYSCTLS:
            raise InvalidArgument(f"sysctl {key!r} is not allowed: use hostname/domainname")
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if ipc_mode == "host":
                raise InvalidArgument(f"sysctl {key!r} is not allowed with ipc mode host")
            continue
        if key.startswith("net."):
            if network_mode == "host":
                raise InvalidArgument(
                    f"sysctl {key!r} is not allowed when the network mode is host")
            continue
        raise InvalidArgument(f"sysctl {key!r} is not allowed: it is not namespaced")
