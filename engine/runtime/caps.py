"""Linux capabilities: Docker's default set, names <-> numbers, cap_add/cap_drop, applying a set in a child.

`effective_caps()` follows moby's `oci/caps.TweakCapabilities`: privileged gets every
capability, `ALL` in cap_add adds all (minus cap_drop), `ALL` in cap_drop keeps only
cap_add, otherwise defaults minus drops plus adds. `apply_caps()` runs in a forked child
right before exec: it shrinks the bounding set, clears ambient and inheritable, switches
user if asked (keeping the permitted set across setuid, as runc does), and sets
effective = permitted = the set. After exec, root keeps the set; other users get an empty
effective set, exactly as in a `docker run --user`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence

from engine.api import InvalidArgument
from engine.runtime import ops_syscalls as sc

# Index = capability number (linux/capability.h).
CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAP_NAMES)}

# moby oci/caps/defaults.go DefaultCapabilities(); CapEff 00000000a80425fb.
DEFAULT_CAPS: frozenset[str] = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
})


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read().strip()), len(CAP_NAMES) - 1)
    except (OSError, ValueError):
        return len(CAP_NAMES) - 1


def all_caps() -> frozenset[str]:
    """Every capability the running kernel knows."""
    return frozenset(CAP_NAMES[: last_cap() + 1])


def normalize(name: str) -> str:
    """`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `all` -> `ALL`."""
    n = name.strip().upper()
    if n == "ALL":
        return n
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in CAP_NUMBERS:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return n


def to_mask(caps: Iterable[str]) -> int:
    mask = 0
    for c in caps:
        mask |= 1 << CAP_NUMBERS[normalize(c)]
    return mask


def from_mask(mask: int) -> set[str]:
    return {name for i, name in enumerate(CAP_NAMES) if mask >> i & 1}


def effective_caps(cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (),
                   privileged: bool = False) -> set[str]:
    """The capability set of a container, by Docker's rules."""
    if privileged:
        return set(all_caps())
    adds = {normalize(c) for c in cap_add}
    drops = {normalize(c) for c in cap_drop}
    if not adds and not drops:
        return set(DEFAULT_CAPS)
    if "ALL" in adds:
        return {c for c in all_caps() if c not in drops}
    if "ALL" in drops:
        return adds - {"ALL"}
    return (set(DEFAULT_CAPS) - drops) | adds


def bounding_set() -> set[str]:
    """The bounding set of the calling process (what it can pass on at all)."""
    caps: set[str] = set()
    for i in range(last_cap() + 1):
        try:
            if sc.prctl(sc.PR_CAPBSET_READ, i) == 1:
                caps.add(CAP_NAMES[i])
        except OSError:
            break
    return caps


def unavailable(caps: Iterable[str]) -> set[str]:
    """Caps asked for that this host cannot grant (not in our own bounding set)."""
    return set(caps) - bounding_set()


def apply_caps(caps: Iterable[str], *, uid: int | None = None, gid: int | None = None,
               groups: Sequence[int] | None = None, no_new_privs: bool = False) -> None:
    """In a child, as root, right before exec: leave only `caps`, optionally as another user.

    Caps this process does not hold itself are left out silently (see `unavailable`).
    """
    wanted = {normalize(c) for c in caps} & bounding_set()
    mask = to_mask(wanted)
    for i in range(last_cap() + 1):
        if not mask >> i & 1:
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, i)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    if uid is not None or gid is not None or groups is not None:
        sc.prctl(sc.PR_SET_KEEPCAPS, 1)
        if groups is not None:
            os.setgroups(list(groups))
        if gid is not None:
            os.setresgid(gid, gid, gid)
        if uid is not None:
            os.setresuid(uid, uid, uid)
        sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    sc.capset(mask, mask, 0)
    if no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


def status_masks(pid: int | str = "self") -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb of a process from /proc/PID/status."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                out[key] = int(value.strip(), 16)
    return out
