"""Sweep a temporary engine data root before it is deleted: stop what it started, remove
its cgroups, bridges and rules, and unmount whatever is mounted under it.

Tests remove their containers themselves; this is the safety net for a test that failed
half-way. Everything is found from the root's own files (state.json and DNS pid files,
checked against the process start time so a reused pid is never hit, network files) or
from /proc by a path under the root, and only the engine's own processes (`pyc-*`, or
listed in the root's state files, or inside a container's cgroup) are killed. Unmounting
before `rmtree` matters: a bind volume mounted under the root would otherwise have its
*source* emptied by the recursive delete.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import time
from pathlib import Path

from tests import hostscan

MNT_DETACH = 2
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def container_ids(root: Path) -> list[str]:
    """Ids of the containers of `root`, those half-way through removal included."""
    try:
        names = os.listdir(root / "containers")
    except OSError:
        return []
    return [n.removeprefix(".removing-") for n in names]


def _pid_pairs(root: Path) -> list[tuple[int, int]]:
    """(pid, start time) of the monitors, container inits and DNS responders on record."""
    pairs = []
    for cid in container_ids(root):
        for name in (cid, f".removing-{cid}"):
            try:
                state = json.loads((root / "containers" / name / "state.json").read_text())
            except (OSError, ValueError):
                continue
            for pid_key, start_key in (("monitor_pid", "monitor_start"), ("pid", "pid_start")):
                with contextlib.suppress(TypeError, ValueError):
                    pairs.append((int(state.get(pid_key) or 0), int(state.get(start_key) or 0)))
    for pidfile in (root / "run" / "dns").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid, start = (int(x) for x in pidfile.read_text().split())
            pairs.append((pid, start))
    return [(pid, start) for pid, start in pairs if pid > 0 and start]


def _engine_process(p: hostscan.Proc) -> bool:
    return p.comm.startswith("pyc-") or any(
        cg.strip("/").startswith(hostscan.CGROUP_PARENT_PREFIX) and cg.count("/") >= 2
        for cg in hostscan.proc_cgroups(p.pid))


def root_processes(root: Path) -> list[hostscan.Proc]:
    """Live engine processes of `root`: on record in its files, or holding a path in it."""
    spare = hostscan.ancestors(os.getpid())
    found: dict[int, hostscan.Proc] = {}
    for pid, start in _pid_pairs(root):
        p = hostscan.proc(pid)
        if p is not None and p.start == start and p.state != "Z" and p.pid not in spare:
            found[pid] = p
    top = str(root)
    for p in hostscan.processes().values():
        if p.pid in spare or p.pid in found or not _engine_process(p):
            continue
        if any(hostscan.under(path, top) for path in hostscan.proc_paths(p.pid)):
            found[p.pid] = p
    return list(found.values())


def kill_processes(procs: list[hostscan.Proc], timeout: float = 5.0) -> None:
    for p in procs:
        if hostscan.alive(p.pid, p.start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(hostscan.alive(p.pid, p.start) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)


def remove_cgroup(path: str, timeout: float = 5.0) -> bool:
    """Kill what is left in a container's cgroup directory and remove it (children first)."""
    deadline = time.monotonic() + timeout
    while True:
        for dirpath, _dirs, _files in os.walk(path, topdown=False):
            for pid in hostscan.cgroup_procs(dirpath):
                if pid != os.getpid():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
        if not os.path.isdir(path):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def unmount_under(root: Path) -> list[str]:
    """Detach every mount at or below `root`, deepest first. Returns the mount points."""
    top = str(root)
    points = sorted({p for p, _ in hostscan.mounts() if hostscan.under(p, top)},
                    key=lambda p: p.count("/"), reverse=True)
    for point in points:
        _libc.umount2(point.encode(), MNT_DETACH)
    return points


def keep_logs(root: Path, dest: Path, limit: int = 64 * 1024) -> list[Path]:
    """Copy the tail of every container's monitor.log and json log out of `root` (about to
    be deleted) into `dest`, so a failed test can still be diagnosed. Returns the copies."""
    kept = []
    for log in sorted(root.glob("containers/*/monitor.log")) + \
            sorted(root.glob("containers/*/*-json.log")):
        with contextlib.suppress(OSError):
            with open(log, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - limit))
                data = f.read()
            if data:
                dest.mkdir(parents=True, exist_ok=True)
                copy = dest / f"{log.parent.name[:12]}-{log.name}"
                copy.write_bytes(data)
                kept.append(copy)
    return kept


def _remove_nft_rules(ids: list[str]) -> None:
    if not ids or not hostscan.nft_lines():
        return
    with contextlib.suppress(Exception):
        from engine.network import nft

        for cid in ids:
            if nft.tagged(cid[:12]):
                nft.unpublish(cid[:12])


def sweep_root(root: Path) -> list[str]:
    """Release everything the engine made for data root `root` (the files stay).
    Returns what had to be released, for the report."""
    done: list[str] = []
    ids = container_ids(root)
    procs = root_processes(root)
    kill_processes(procs)
    done += [f"process {p.pid} ({p.comm})" for p in procs]
    wanted = set(ids)
    for path in sorted(hostscan.cgroup_dirs()):
        if os.path.basename(path) in wanted:
            remove_cgroup(path)
            done.append(f"cgroup {path}")
    _remove_nft_rules(ids)
    if (root / "networks").is_dir():
        with contextlib.suppress(Exception):
            from engine.network.bridge import release_root

            done += [f"bridge {name}" for name in release_root(root)]
    done += [f"mount {point}" for point in unmount_under(root)]
    return done
