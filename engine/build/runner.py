"""RUN: one command in a throw-away container on a stage's layers, through the runtime's
launcher (engine/runtime/launcher.py) with Docker's default security profile.

The step's bundle lives under `containers/<id>/` like any container's, but without a
`config.json`, so it never shows in container lists; it is removed when the step ends.
Its output comes from the bundle's json-file log; its changes from the overlay upper dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.api import BuildError
from engine.store import Store

POLL = 0.01


class _NoNetwork:
    """The engine as the monitor sees it for a build step: no network hooks, so the
    step gets its own network namespace with loopback only (`--network=none`)."""


@dataclass(frozen=True)
class RunStep:
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    lowerdirs: tuple[str, ...]
    network: str  # "none" or "host"
    binds: tuple[tuple[str, str, bool], ...] = ()  # (host path, target, read_only)
    tmpfs: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    shm_size: int | None = None


class StepContainer:
    """A bundle for one RUN; use as a context manager so it is always removed."""

    def __init__(self, store: Store) -> None:
        from engine.runtime import bundle

        self.store = store
        self.id = bundle.new_id()
        self.dir = bundle.bundle_dir(store, self.id)
        self.upper = self.dir / "upper"

    def __enter__(self) -> StepContainer:
        from engine.runtime import bundle

        for sub in ("upper", "work", "rootfs"):
            (self.dir / sub).mkdir(parents=True, mode=0o755)
        self.store.write_json(bundle.state_path(self.store, self.id), bundle.initial_state())
        return self

    def __exit__(self, *exc: object) -> None:
        from engine.runtime import bundle

        state = bundle.read_state(self.store, self.id)
        if bundle.monitor_alive(state):  # interrupted: end the step's container
            pid, start = int(state.get("pid") or 0), int(state.get("pid_start") or 0)
            if pid and start and bundle.process_alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while bundle.monitor_alive(bundle.read_state(self.store, self.id)) and \
                    time.monotonic() < deadline:
                time.sleep(POLL)
        self._reap(bundle.read_state(self.store, self.id))
        _remove_tree(self.dir)

    def _reap(self, state: dict[str, Any]) -> None:
        """What a monitor that died mid-step can leave: the step's init and its cgroup."""
        from engine.runtime import bundle
        from engine.runtime.cgroups import CgroupDriver

        pid, start = int(state.get("pid") or 0), int(state.get("pid_start") or 0)
        if pid and start and bundle.process_alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            CgroupDriver.detect(parent=state.get("cgroup_parent")).open(self.id).remove()

    def run(self, step: RunStep, on_output: Callable[[str], None]) -> tuple[int, str]:
        """Run the step; returns (exit code, combined output)."""
        from engine.runtime import bundle, launcher
        from engine.runtime.caps import effective_caps
        from engine.runtime.launcher import LaunchPlan, ProcessPlan
        from engine.runtime.rootfs import RootfsPlan, empty_lower
        from engine.runtime.seccomp import program_for

        hosts = self.dir / "hosts"
        resolv = self.dir / "resolv.conf"
        hostname = self.dir / "hostname"
        base = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if step.network == "host":
            with contextlib.suppress(OSError):
                base = Path("/etc/hosts").read_text()
        extra = "".join(f"{e.replace('=', ':').split(':', 1)[1]}\t"
                        f"{e.replace('=', ':').split(':', 1)[0]}\n" for e in step.extra_hosts)
        hosts.write_text(base + extra)
        try:
            resolv.write_text(Path("/etc/resolv.conf").read_text())
        except OSError:
            resolv.write_text("")
        hostname.write_text(self.id[:12] + "\n")
        from engine.runtime.rootfs import MountPlan

        mounts = tuple(MountPlan("bind", target, source=src, read_only=ro)
                       for src, target, ro in step.binds)
        mounts += tuple(MountPlan("tmpfs", t) for t in step.tmpfs)
        rootfs = RootfsPlan(
            merged=str(self.dir / "rootfs"),
            lowerdirs=step.lowerdirs or (empty_lower(self.dir),), upper=str(self.upper),
            work=str(self.dir / "work"), mounts=mounts,
            files=((str(hostname), "/etc/hostname"), (str(hosts), "/etc/hosts"),
                   (str(resolv), "/etc/resolv.conf")), shm_size=step.shm_size)
        caps = frozenset(effective_caps((), (), False))
        process = ProcessPlan(args=step.args, env=step.env, cwd=step.cwd, uid=step.uid,
                              gid=step.gid, groups=step.groups, caps=caps,
                              seccomp=program_for(self.store, (), False, caps))
        plan = LaunchPlan(container_id=self.id, name=f"build-{self.id[:12]}", rootfs=rootfs,
                          process=process, hostname=self.id[:12],
                          network_mode="host" if step.network == "host" else "none")
        try:
            launcher.launch(_NoNetwork(), self.store, plan)
        except Exception as e:  # the command could not even start (e.g. not found)
            return 127, str(e) + "\n"
        log = bundle.log_path(self.store, self.id)
        output: list[str] = []
        offset = 0
        delay = POLL
        while True:
            state = bundle.read_state(self.store, self.id)
            finished = state.get("status") not in ("running", "created", "restarting") or \
                not bundle.monitor_alive(state)
            offset = _read_log(log, offset, output, on_output)
            if finished and not bundle.monitor_alive(state):
                _read_log(log, offset, output, on_output)
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        state = bundle.read_state(self.store, self.id)
        if state.get("status") == "running":
            raise BuildError("the build step's monitor died")
        return int(state.get("exit_code") or 0), "".join(output)


def _read_log(path: Path, offset: int, output: list[str],
              on_output: Callable[[str], None]) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        with contextlib.suppress(ValueError):
            text = json.loads(line).get("log", "")
            output.append(text)
            on_output(text)
    return offset + end


def _remove_tree(path: Path) -> None:
    """Remove a step bundle; shutil.rmtree never follows the symlinks a step created."""
    with contextlib.suppress(FileNotFoundError):
        tmp = path.with_name(f".removing-{path.name}")
        os.rename(path, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
