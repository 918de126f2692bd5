"""Read-only views of the host resources our engine creates, for the test cleanup code.

Processes (with their start time, so a reused pid is never mistaken for ours), cgroup
directories of our parents, mount points, network links, iptables/nft lines and the
bridge registry. Nothing here changes the host; `rootsweep` and `leakcheck` decide.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Cgroup parents of the engine (`pycompose`) and of the tests (`pyct…`, `pycn…`, `pyc-test-…`).
CGROUP_PARENT_PREFIX = "pyc"
BRIDGE_REGISTRY = Path("/run/pycompose-net/bridges")
NET_RUN_DIR = Path("/run/pycompose-net")
DEFAULT_RUN_DIR = Path("/run/pycompose")
DELETED = " (deleted)"
COUNTERS = re.compile(r" \[\d+:\d+\]$")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # /proc/<pid>/stat starttime: with the pid, names the process for good
    ppid: int
    comm: str
    cmdline: str
    state: str

    @property
    def key(self) -> str:
        return f"{self.pid}:{self.start}"


def _stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, starttime) of a live pid, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    return comm, fields[0], int(fields[1]), int(fields[19])


def proc(pid: int) -> Proc | None:
    st = _stat(pid)
    if st is None:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = ""
    return Proc(pid, st[3], st[2], st[0], cmdline, st[1])


def processes() -> dict[int, Proc]:
    out: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            p = proc(int(entry))
            if p is not None and p.state != "Z":
                out[p.pid] = p
    return out


def starttime(pid: int) -> int:
    st = _stat(pid)
    return st[3] if st else 0


def alive(pid: int, start: int) -> bool:
    """True if `pid` is still the process that started at `start` (and not a zombie)."""
    st = _stat(pid) if pid > 0 and start else None
    return st is not None and st[3] == start and st[1] != "Z"


def ancestors(pid: int) -> set[int]:
    """`pid` and every process above it, up to pid 1."""
    seen = {pid}
    while pid > 1:
        st = _stat(pid)
        if st is None:
            break
        pid = st[2]
        seen.add(pid)
    return seen


def descends_from(p: Proc, root_pid: int, procs: dict[int, Proc]) -> bool:
    pid, hops = p.ppid, 0
    while pid > 1 and hops < 64:
        if pid == root_pid:
            return True
        parent = procs.get(pid)
        if parent is None:
            return False
        pid, hops = parent.ppid, hops + 1
    return False


def proc_paths(pid: int) -> list[str]:
    """The cwd and the paths of the open descriptors of `pid` (" (deleted)" stripped)."""
    paths = []
    with_links = [f"/proc/{pid}/cwd"]
    try:
        with_links += [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        pass
    for link in with_links:
        try:
            target = os.readlink(link)
        except OSError:
            continue
        if target.startswith("/"):
            paths.append(target.removesuffix(DELETED))
    return paths


def proc_cgroups(pid: int) -> list[str]:
    """The cgroup paths of `pid`, one per hierarchy (`/pycompose/<id>`...)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return [line.rstrip("\n").split(":", 2)[2] for line in f if line.count(":") >= 2]
    except OSError:
        return []


def under(path: str, top: str) -> bool:
    top = top.rstrip("/")
    return path == top or path.startswith(top + "/")


# ------------------------------------------------------------------------ cgroups


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount of our mount namespace, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            out.append((_unescape(left.split()[4]), right.split()[0]))
    return out


def cgroup_hierarchies() -> list[Path]:
    return [Path(point) for point, fstype in mounts() if fstype in ("cgroup", "cgroup2")]


def cgroup_dirs() -> set[str]:
    """Our parents' directories and their children, in every hierarchy."""
    out: set[str] = set()
    for hier in cgroup_hierarchies():
        try:
            tops = [e for e in os.scandir(hier)
                    if e.is_dir() and e.name.startswith(CGROUP_PARENT_PREFIX)]
        except OSError:
            continue
        for top in tops:
            out.add(top.path)
            try:
                out.update(e.path for e in os.scandir(top.path) if e.is_dir())
            except OSError:
                pass
    return out


def cgroup_procs(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


# ------------------------------------------------------------------------ network


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def links() -> dict[str, str]:
    """Interface name -> its master bridge ("" if none)."""
    out = {}
    for line in _run(["ip", "-o", "link", "show"]).splitlines():
        parts = line.split(": ", 2)
        if len(parts) < 3:
            continue
        name = parts[1].split("@")[0]
        m = re.search(r" master (\S+)", parts[2])
        out[name] = m.group(1) if m else ""
    return out


def netns() -> set[str]:
    return {line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line}


def iptables_lines() -> set[str]:
    """Our chains and tagged rules, plus the built-in chains' policies (a test may flip
    FORWARD to DROP and must restore it)."""
    out = set()
    table = ""
    for line in _run(["iptables-save"]).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif "pycompose" in line.lower():
            out.add(f"{table} {COUNTERS.sub('', line)}")
        elif line.startswith(":") and " - " not in line:
            out.add(f"{table} policy {line.split()[0]} {line.split()[1]}")
    return out


def nft_lines() -> set[str]:
    """The rules of our nft table (`table ip pycompose`, used by the nft port driver)."""
    text = _run(["nft", "list", "table", "ip", "pycompose"])
    return {f"nft {line.strip()}" for line in text.splitlines() if "pycompose:" in line}


def bridge_owners() -> dict[str, str]:
    """Registered bridge -> the data root that owns it."""
    out = {}
    try:
        entries = list(BRIDGE_REGISTRY.iterdir())
    except OSError:
        return out
    for entry in entries:
        try:
            out[entry.name] = str(json.loads(entry.read_text())["root"])
        except (OSError, ValueError, KeyError, TypeError):
            out[entry.name] = ""
    return out


def run_entries() -> set[str]:
    """Entries of the host-wide run directories (/run/pycompose-net/<kind>/<bridge>: the
    bridge registry and its kin; /run/pycompose, the default data root's)."""
    out = set()
    try:
        kinds = [p for p in NET_RUN_DIR.iterdir() if p.is_dir()]
    except OSError:
        kinds = []
    for d in (*kinds, DEFAULT_RUN_DIR):
        try:
            out.update(str(p) for p in d.iterdir())
        except OSError:
            pass
    return out
