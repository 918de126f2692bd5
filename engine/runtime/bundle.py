"""The container bundle on disk: its layout, (de)serialisation of specs, and state updates.

One directory per container, `<data root>/containers/<id>/` (id = 64 hex digits):

    config.json       written once by container_create (never changed afterwards):
                        {"id", "name", "created" (RFC 3339), "image" (as asked),
                         "image_id" ("sha256:..."), "spec" (ContainerSpec as JSON, see
                         spec_to_dict), "process": {"args": [...], "env": ["K=V"...],
                         "cwd": "/", "uid": 0, "gid": 0, "groups": [..], "user": "..."},
                         "hostname", "stop_signal" ("SIGTERM"), "stop_timeout" (s),
                         "healthcheck" (resolved Healthcheck as JSON or null),
                         "lowerdirs": [bottom .. top layer dirs],
                         "image_volumes": [the image's VOLUME paths]}
    state.json        rewritten atomically, always through `update_state` (flock
                      `container-<id>` in the store's locks/):
                        {"status": created|running|paused|restarting|exited|dead,
                         "pid" (host pid of the container init, 0 if none),
                         "pid_start" (/proc/<pid>/stat starttime, against pid reuse),
                         "monitor_pid", "monitor_start", "boot_id",
                         "exit_code", "oom_killed", "error", "started_at",
                         "finished_at", "restart_count", "manual_stop" (bool: stopped
                         or killed by a user, Docker's HasBeenManuallyStopped),
                         "health": {"status", "failing_streak", "log": [
                            {"start", "end", "exit_code", "output"} x5]} or null,
                         "networks": [NetworkAttachment as JSON], "ports":
                         [PublishedPort as JSON]}
    stop.json         a request to the monitor, then SIGUSR1 to it (container_stop/kill):
                        {"signal": "SIGTERM", "timeout": 10 (grace, s; null = the
                         container's), "grace": true (SIGKILL after the timeout),
                         "keep_policy": false (true: a plain signal, e.g. SIGHUP, that
                         does not count as a manual stop for the restart policy)}
    <id>-json.log     stdout/stderr as JSON lines {"log","stream","time"} (json-file);
                      rotated files are <id>-json.log.1 (newest) ... .N
    monitor.log       the monitor's own diagnostics (one line per problem)
    upper/ work/      overlay upper and work directories (the container's changes)
    rootfs/           the overlay mount point; mounted only inside the container's own
                      mount namespace, so nothing is left mounted on the host
    hosts resolv.conf hostname   bind-mounted read-write at /etc/... in the container

Runtime files live under the store's run dir, `<run dir>/containers/<id>/`:

    attach.sock       the monitor's attach socket (protocol in attach.py), present while
                      the monitor runs; the directory goes with it

The status written is the monitor's view; readers report a live status (running,
paused, restarting) whose monitor is gone (pid + start time + boot id) as `dead`.
Removing a container removes the directory.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.api import (
    Container,
    ContainerSpec,
    ContainerState,
    Health,
    HealthLog,
    NetworkAttachment,
    PublishedPort,
)
from engine.store import Store

NEVER = "0001-01-01T00:00:00Z"
HEALTH_LOG_KEEP = 5


def new_id() -> str:
    return secrets.token_hex(32)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bundle_dir(store: Store, cid: str) -> Path:
    return store.path("containers", cid)


def config_path(store: Store, cid: str) -> Path:
    return bundle_dir(store, cid) / "config.json"


def state_path(store: Store, cid: str) -> Path:
    return bundle_dir(store, cid) / "state.json"


def log_path(store: Store, cid: str) -> Path:
    return bundle_dir(store, cid) / f"{cid}-json.log"


def attach_dir(store: Store, cid: str) -> Path:
    return store.run_dir / "containers" / cid


def stop_request_path(store: Store, cid: str) -> Path:
    return bundle_dir(store, cid) / "stop.json"


def lock_name(cid: str) -> str:
    return f"container-{cid}"


# --------------------------------------------------------------------------- state


def initial_state() -> dict[str, Any]:
    return {"status": "created", "pid": 0, "pid_start": 0, "monitor_pid": 0,
            "monitor_start": 0, "boot_id": "", "exit_code": 0, "oom_killed": False,
            "error": "", "started_at": NEVER, "finished_at": NEVER, "restart_count": 0,
            "manual_stop": False, "health": None, "networks": [], "ports": []}


def read_state(store: Store, cid: str) -> dict[str, Any]:
    state = initial_state()
    try:
        data = store.read_json(state_path(store, cid), {})
    except ValueError:
        data = {"status": "dead", "error": "state.json is corrupt"}
    if isinstance(data, dict):
        state.update(data)
    return state


def update_state(store: Store, cid: str, **changes: Any) -> dict[str, Any]:
    """Read-modify-write state.json under the container's lock; returns the new state."""
    with store.lock(lock_name(cid)):
        state = read_state(store, cid)
        state.update(changes)
        store.write_json(state_path(store, cid), state, durable=False)  # see write_atomic
        return state


def read_config(store: Store, cid: str) -> dict[str, Any]:
    data = store.read_json(config_path(store, cid))
    if not isinstance(data, dict):
        raise FileNotFoundError(str(config_path(store, cid)))
    return data


# --------------------------------------------------------------------------- spec JSON


def spec_to_dict(spec: ContainerSpec) -> dict[str, Any]:
    return _jsonable(dataclasses.asdict(spec))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def spec_from_dict(data: dict[str, Any]) -> ContainerSpec:
    return typing.cast(ContainerSpec, _build(ContainerSpec, data))


def _build(tp: Any, value: Any) -> Any:
    """Rebuild a value of (resolved) type `tp` from its JSON form."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(members[0], value) if len(members) == 1 else value
    if origin is tuple:
        items = typing.get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_build(items[0], v) for v in value)
        return tuple(_build(a, v) for a, v in zip(items, value, strict=False))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _field_types(tp)
        kwargs = {k: _build(hints[k], v) for k, v in value.items() if k in hints}
        return tp(**kwargs)
    return value


@functools.cache
def _field_types(tp: type) -> dict[str, Any]:
    """A dataclass's resolved field types by name (typing.get_type_hints is slow)."""
    hints = typing.get_type_hints(tp)
    return {f.name: hints[f.name] for f in dataclasses.fields(tp)}


def record_from(cfg: dict[str, Any], state: dict[str, Any], status: str | None = None,
                error: str | None = None) -> Container:
    """The `engine.api.Container` record of a bundle's config and state."""
    health = state.get("health")
    health_rec = None
    if isinstance(health, dict):
        health_rec = Health(status=health.get("status", "starting"),
                            failing_streak=int(health.get("failing_streak", 0)),
                            log=tuple(HealthLog(start=h["start"], end=h["end"],
                                                exit_code=int(h["exit_code"]),
                                                output=h["output"])
                                      for h in health.get("log", [])))
    st = ContainerState(
        status=typing.cast(Any, status or state["status"]),
        pid=int(state.get("pid") or 0) if (status or state["status"]) in
        ("running", "paused") else 0,
        exit_code=int(state.get("exit_code") or 0),
        oom_killed=bool(state.get("oom_killed")),
        error=error if error is not None else str(state.get("error") or ""),
        started_at=state.get("started_at") or NEVER,
        finished_at=state.get("finished_at") or NEVER,
        health=health_rec,
        restart_count=int(state.get("restart_count") or 0),
    )
    return Container(
        id=cfg["id"], name=cfg["name"], created=cfg["created"], image=cfg["image"],
        image_id=cfg["image_id"], spec=spec_from_dict(cfg["spec"]), state=st,
        networks=tuple(NetworkAttachment(**{**n, "aliases": tuple(n.get("aliases", ()))})
                       for n in state.get("networks") or []),
        ports=tuple(PublishedPort(**p) for p in state.get("ports") or []),
    )


# --------------------------------------------------------------------------- liveness


def process_alive(pid: int, start: int) -> bool:
    """True if `pid` runs and is the same process that had start time `start`."""
    from engine.runtime.syscalls import proc_starttime

    if pid <= 0:
        return False
    current = proc_starttime(pid)
    if current is None:
        return False
    if start and current != start:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rfind(b")") + 2:data.rfind(b")") + 3] != b"Z"
    except OSError:
        return False


def monitor_alive(state: dict[str, Any]) -> bool:
    from engine.runtime.syscalls import boot_id

    if state.get("boot_id") and state["boot_id"] != boot_id():
        return False
    return process_alive(int(state.get("monitor_pid") or 0),
                         int(state.get("monitor_start") or 0))


def ensure_dir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path
