"""`docker top`: `ps -ef`-style rows for a container's processes, read from the host's /proc.

Columns are those of `ps -ef` (UID PID PPID C STIME TTY TIME CMD) with host pids, as
`docker top` shows them. User names come from the host's /etc/passwd parsed as text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
_HZ = os.sysconf("SC_CLK_TCK")


def _host_users() -> dict[int, str]:
    users: dict[int, str] = {}
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 2 and parts[2].isdigit():
                    users.setdefault(int(parts[2]), parts[0])
    except OSError:
        pass
    return users


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _tty_name(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}"
    return "?"


def _cputime(ticks: int) -> str:
    secs = ticks // _HZ
    days, secs = divmod(secs, 86400)
    text = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    return f"{days}-{text}" if days else text


def process_row(pid: int, users: dict[int, str], boot: float, now: float) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    comm = raw[raw.find("(") + 1:raw.rfind(")")]
    fields = raw[raw.rfind(")") + 2:].split()
    ppid, tty_nr = int(fields[1]), int(fields[4])
    cpu_ticks = int(fields[11]) + int(fields[12])
    started = boot + int(fields[19]) / _HZ
    elapsed = max(now - started, 1e-9)
    c = int(cpu_ticks / _HZ * 100 / elapsed)
    lt = time.localtime(started)
    stime = (time.strftime("%H:%M", lt) if now - started < 86400
             else time.strftime("%b%d", lt))
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    cmd = " ".join(args) if args else f"[{comm}]"
    return [users.get(uid, str(uid)), str(pid), str(ppid), str(c), stime, _tty_name(tty_nr),
            _cputime(cpu_ticks), cmd]


def top(pids: Iterable[int]) -> tuple[list[str], list[list[str]]]:
    users, boot, now = _host_users(), _boot_time(), time.time()
    rows = [r for r in (process_row(p, users, boot, now) for p in sorted(pids)) if r]
    return list(TITLES), rows


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendants (used when a container has no cgroup of its own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)
