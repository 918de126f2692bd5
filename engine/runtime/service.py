"""The engine service for containers: create/start/stop/kill/restart/remove/list/wait/logs.

Mixin `ContainerService` of `engine.local.LocalEngine`. Each container is a bundle
(layout in bundle.py); starting one launches its detached monitor (launcher.py,
monitor.py), which then owns the container's lifecycle and its state transitions.
This side resolves what the monitor needs (image config, user, mounts, network files),
asks the monitor to stop (stop.json + SIGUSR1) and reads state, reporting a running
container whose monitor vanished as `dead`. Also the hooks other engine parts call:
`_container_record`, `_containers_using_*`, `_container_pid`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from engine.api import (
    Conflict,
    Container,
    ContainerSpec,
    EngineRuntimeError,
    Healthcheck,
    InvalidArgument,
    LogLine,
    Mount,
    NotFound,
)
from engine.runtime import bundle, specs, sweep
from engine.store import Store

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
DEFAULT_STOP_TIMEOUT = 10.0
_SIGKILL, _SIGTERM, _SIGINT = int(signal.SIGKILL), int(signal.SIGTERM), int(signal.SIGINT)


class ContainerService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    # ----------------------------------------------------------------- lookup

    def _container_ids(self) -> list[str]:
        d = self.store.path("containers")
        try:
            return sorted(p.name for p in d.iterdir()
                          if len(p.name) == 64 and (p / "config.json").exists())
        except FileNotFoundError:
            return []

    def _container_resolve_id(self, ref: str) -> str:
        if not ref:
            raise NotFound("No such container: (empty)")
        ids = self._container_ids()
        if ref in ids:
            return ref
        name = ref.lstrip("/")
        for cid in ids:
            with contextlib.suppress(FileNotFoundError, ValueError):
                if bundle.read_config(self.store, cid).get("name") == name:
                    return cid
        matches = [cid for cid in ids if cid.startswith(ref.lower())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def _container_record(self, ref: str) -> Container:
        cid = self._container_resolve_id(ref)
        try:
            cfg = bundle.read_config(self.store, cid)
        except (FileNotFoundError, ValueError):
            raise NotFound(f"No such container: {ref}")
        state = bundle.read_state(self.store, cid)
        status, error = _observed_status(state)
        return bundle.record_from(cfg, state, status, error)

    def _container_pid(self, ref: str) -> int:
        c = self._container_record(ref)
        if c.state.status not in ("running", "paused") or not c.state.pid:
            raise EngineRuntimeError(f"container {c.name} is not running")
        return c.state.pid

    def _containers_using_image(self, image_id: str) -> list[str]:
        out = []
        for cid in self._container_ids():
            with contextlib.suppress(FileNotFoundError, ValueError):
                if bundle.read_config(self.store, cid).get("image_id") == image_id:
                    out.append(cid)
        return out

    def _containers_using_volume(self, name: str) -> list[str]:
        out = []
        for cid in self._container_ids():
            with contextlib.suppress(FileNotFoundError, ValueError):
                mounts = bundle.read_config(self.store, cid)["spec"].get("mounts", [])
                if any(m.get("type") == "volume" and m.get("source") == name
                       for m in mounts):
                    out.append(cid)
        return out

    def _containers_on_network(self, network_id: str) -> list[str]:
        out = []
        for cid in self._container_ids():
            state = bundle.read_state(self.store, cid)
            if any(n.get("network_id") == network_id or n.get("network") == network_id
                   for n in state.get("networks") or []):
                out.append(cid)
        return out

    # ----------------------------------------------------------------- create

    def container_create(self, spec: ContainerSpec) -> Container:
        from engine.runtime.limits import validate_sysctls, validate_ulimits
        from engine.runtime.user import resolve_in_layers

        if spec.name is not None and not NAME_RE.match(spec.name):
            raise InvalidArgument(
                f"Invalid container name ({spec.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                "are allowed")
        image = self._image_resolve(spec.image)  # type: ignore[attr-defined]
        icfg: dict[str, Any] = dict(image.config or {})
        dirs = self._image_layer_dirs(image.id)  # type: ignore[attr-defined]
        layer_dirs = [Path(p) for p in dirs]
        validate_ulimits(spec.ulimits)
        validate_sysctls(spec.sysctls, spec.network_mode, spec.ipc_mode)
        specs.validate_restart(spec)
        specs.validate_modes(spec)
        stop_signal = spec.stop_signal or icfg.get("StopSignal") or "SIGTERM"
        specs.check_signal(stop_signal)
        entrypoint = list(spec.entrypoint) if spec.entrypoint is not None else \
            list(icfg.get("Entrypoint") or [])
        if spec.command is not None:
            cmd = list(spec.command)
        elif spec.entrypoint is not None:
            cmd = []
        else:
            cmd = list(icfg.get("Cmd") or [])
        args = entrypoint + cmd
        if not args:
            raise InvalidArgument("no command specified")
        user_ref = spec.user if spec.user is not None else (icfg.get("User") or None)
        resolved = resolve_in_layers(user_ref, spec.group_add, layer_dirs)
        cid = bundle.new_id()
        hostname = spec.hostname or cid[:12]
        if spec.network_mode == "host" and not spec.hostname:
            hostname = os.uname().nodename
        env = specs.merge_env(icfg.get("Env") or [], spec.env, hostname, resolved.home)
        healthcheck = specs.healthcheck(spec.healthcheck, icfg.get("Healthcheck"))
        cfg = {
            "id": cid, "name": "", "created": bundle.now_rfc3339(), "image": spec.image,
            "image_id": image.id, "spec": {},
            "process": {"args": args, "env": env,
                        "cwd": spec.working_dir or icfg.get("WorkingDir") or "/",
                        "uid": resolved.uid, "gid": resolved.gid,
                        "groups": list(resolved.groups), "user": user_ref or ""},
            "hostname": hostname, "stop_signal": stop_signal,
            "stop_timeout": spec.stop_grace_period if spec.stop_grace_period is not None
            else DEFAULT_STOP_TIMEOUT,
            "healthcheck": None if healthcheck is None else {
                "test": list(healthcheck.test), "interval": healthcheck.interval,
                "timeout": healthcheck.timeout, "retries": healthcheck.retries,
                "start_period": healthcheck.start_period,
                "start_interval": healthcheck.start_interval},
            "lowerdirs": [str(p) for p in layer_dirs],
            "image_volumes": sorted(icfg.get("Volumes") or {}),  # anonymous volumes
        }
        name = (spec.name or specs.generated_name(cid)).lstrip("/")
        cfg["name"] = name
        labels = {**(icfg.get("Labels") or {}), **dict(spec.labels)}  # as Docker: image's too
        cfg["spec"] = bundle.spec_to_dict(replace(spec, name=name,
                                                  labels=tuple(labels.items())))
        creating = sweep.Creating(self.store, cid)  # a creator killed here leaves a sweepable dir
        d = self.store.ensure("containers", cid)
        try:
            for sub in ("upper", "work", "rootfs"):
                (d / sub).mkdir(mode=0o755, exist_ok=True)
            (d / "hostname").write_text(hostname + "\n")
            (d / "hosts").write_text(specs.HOSTS_BASE + specs.extra_hosts(spec))
            (d / "resolv.conf").write_text(specs.resolv_conf(spec, host=False))
            self.store.write_json(bundle.state_path(self.store, cid), bundle.initial_state())
            with self.store.lock("containers"):  # config.json makes it visible: check first
                for other in self._container_ids():
                    with contextlib.suppress(FileNotFoundError, ValueError):
                        if bundle.read_config(self.store, other).get("name") == name:
                            raise Conflict(
                                f'Conflict. The container name "/{name}" is already in use '
                                f'by container "{other}". You have to remove (or rename) '
                                "that container to be able to reuse that name.")
                self.store.write_json(bundle.config_path(self.store, cid), cfg)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        finally:
            creating.release()
        self.store.emit("container", "create", cid, name=name, image=spec.image)
        return self._container_record(cid)

    # ----------------------------------------------------------------- start

    def container_start(self, ref: str) -> None:
        from engine.runtime import launcher

        cid = self._container_resolve_id(ref)
        with self.store.lock(f"container-op-{cid}"):  # one start at a time
            sweep.wait_starting(self.store, cid)  # a killed starter's monitor goes on
            c = self._container_record(cid)
            if c.state.status in ("running", "paused", "restarting"):
                return
            if c.state.status == "dead":
                self._container_reap(cid)
            cfg = bundle.read_config(self.store, cid)
            plan, networks = self._launch_plan(cid, cfg, c.spec)
            bundle.update_state(self.store, cid, restart_count=0, error="", manual_stop=False,
                                health=None, networks=networks)
            launcher.launch(self, self.store, plan)

    def _launch_plan(self, cid: str, cfg: dict[str, Any], spec: ContainerSpec
                     ) -> tuple[Any, list[dict[str, Any]]]:
        """The monitor's LaunchPlan, and the network attachments to record in state."""
        from engine.runtime import caps as capmod
        from engine.runtime.launcher import LaunchPlan, ProcessPlan
        from engine.runtime.logs import parse_size
        from engine.runtime.rootfs import MountPlan, RootfsPlan, empty_lower

        d = bundle.bundle_dir(self.store, cid)
        mounts = tuple(self._mount_plan(m, cid, cfg["image_id"])
                       for m in specs.with_image_volumes(spec, cfg))
        mode = spec.network_mode
        join_pid = 0
        if mode.startswith("container:"):
            join_pid = self._container_pid(mode.split(":", 1)[1])
        networks: list[dict[str, Any]] = []
        prepare = getattr(self, "_net_prepare", None)
        if prepare is not None:
            attachments, hosts, resolv = prepare(cid, spec)
            (d / "hosts").write_text(hosts)
            (d / "resolv.conf").write_text(resolv)
            networks = [{**vars(a), "aliases": list(a.aliases)} for a in attachments]
        elif mode.startswith("container:"):
            other = self._container_resolve_id(mode.split(":", 1)[1])
            for f in ("hosts", "resolv.conf"):
                shutil.copyfile(bundle.bundle_dir(self.store, other) / f, d / f)
        elif mode == "host":
            shutil.copyfile("/etc/hosts", d / "hosts")
            (d / "resolv.conf").write_text(specs.resolv_conf(spec, host=True))
        else:  # no network part in this engine: an isolated namespace with lo only
            (d / "hosts").write_text(specs.HOSTS_BASE + specs.extra_hosts(spec))
        files = (((str(d / "hostname"), "/etc/hostname"), (str(d / "hosts"), "/etc/hosts"),
                  (str(d / "resolv.conf"), "/etc/resolv.conf")))
        lowers = tuple(cfg["lowerdirs"]) or (empty_lower(d),)
        missing = [p for p in cfg["lowerdirs"] if not os.path.isdir(p)]
        if missing:
            raise NotFound(f"the layers of image {cfg['image']} ({cfg['image_id'][:19]}) "
                           f"are gone: {missing[0]}")
        rootfs = RootfsPlan(
            merged=str(d / "rootfs"), lowerdirs=lowers, upper=str(d / "upper"),
            work=str(d / "work"), mounts=tuple(m for m in mounts if isinstance(m, MountPlan)),
            files=files, read_only=spec.read_only, privileged=spec.privileged,
            shm_size=spec.shm_size, init=spec.init, sysctls=specs.sysctls(spec),
            devices=tuple(specs.device_paths(dev) for dev in spec.devices))
        proc = cfg["process"]
        args = tuple(proc["args"])
        if spec.init:
            args = ("/dev/init", "--", *args)
        caps = capmod.effective_caps(spec.cap_add, spec.cap_drop, spec.privileged)
        no_new_privs = any(o.replace("=", ":") in ("no-new-privileges", "no-new-privileges:true")
                           for o in spec.security_opt)
        from engine.runtime import seccomp

        process = ProcessPlan(args=args, env=tuple(proc["env"]), cwd=proc["cwd"],
                              uid=proc["uid"], gid=proc["gid"], groups=tuple(proc["groups"]),
                              caps=frozenset(caps), no_new_privs=no_new_privs,
                              ulimits=spec.ulimits,
                              seccomp=seccomp.program_for(self.store, spec.security_opt,
                                                          spec.privileged, caps))
        hc = cfg.get("healthcheck")
        max_size = spec.log_config.option("max-size")
        max_file = spec.log_config.option("max-file")
        return LaunchPlan(
            container_id=cid, name=cfg["name"], rootfs=rootfs, process=process,
            hostname=cfg["hostname"], domainname=spec.domainname or "",
            network_mode=mode, join_netns_pid=join_pid, pid_host=spec.pid_mode == "host",
            ipc_host=spec.ipc_mode == "host",
            healthcheck=None if hc is None else Healthcheck(
                test=tuple(hc["test"]), interval=hc["interval"], timeout=hc["timeout"],
                retries=hc["retries"], start_period=hc["start_period"],
                start_interval=hc["start_interval"]),
            restart=spec.restart, stop_signal=cfg["stop_signal"],
            stop_timeout=float(cfg["stop_timeout"]), resources=spec.resources,
            privileged=spec.privileged, devices=tuple(specs.device_rule(dev) for dev in spec.devices),
            log_driver=spec.log_config.driver or "json-file",
            log_max_size=parse_size(max_size) if max_size else None,
            log_max_file=int(max_file) if max_file else 1, auto_remove=spec.auto_remove,
            tty=spec.tty, stdin_open=spec.stdin_open), networks

    def _mount_plan(self, m: Mount, cid: str, image_id: str) -> Any:
        from engine.runtime.rootfs import MountPlan

        if not m.target.startswith("/"):
            raise InvalidArgument(f"invalid mount target {m.target!r}: must be absolute")
        if m.type == "tmpfs":
            return MountPlan("tmpfs", m.target, read_only=m.read_only,
                             tmpfs_size=m.tmpfs_size, tmpfs_mode=m.tmpfs_mode)
        if m.type == "volume":
            source_of = getattr(self, "_volume_source", None)
            if source_of is None:
                raise EngineRuntimeError("named volumes are not available in this engine")
            source = str(source_of(m, cid, image_id))
        elif m.type == "bind":
            source = m.source
            if not os.path.isabs(source):
                raise InvalidArgument(f"invalid mount config for type \"bind\": {source!r} "
                                      "is not an absolute path")
            if not os.path.exists(source):
                if not m.create_host_path:
                    raise InvalidArgument('invalid mount config for type "bind": bind '
                                          f"source path does not exist: {source}")
                os.makedirs(source, exist_ok=True)
        else:
            raise InvalidArgument(f"unknown mount type {m.type!r}")
        return MountPlan("bind", m.target, source=source, read_only=m.read_only,
                         propagation=m.propagation)

    # ----------------------------------------------------------------- stop / kill

    def _request_stop(self, cid: str, sig: str, timeout: float | None, grace: bool,
                      keep_policy: bool = False) -> bool:
        """Ask the monitor to signal the container; False if no monitor is alive."""
        state = bundle.read_state(self.store, cid)
        self.store.write_json(bundle.stop_request_path(self.store, cid),
                              {"signal": sig, "timeout": timeout, "grace": grace,
                               "keep_policy": keep_policy})
        if not keep_policy:
            bundle.update_state(self.store, cid, manual_stop=True)
        if not bundle.monitor_alive(state):
            return False
        try:
            os.kill(int(state["monitor_pid"]), signal.SIGUSR1)
        except ProcessLookupError:
            return False
        return True

    def container_stop(self, ref: str, timeout: float | None = None) -> None:
        cid = self._container_resolve_id(ref)
        c = self._container_record(cid)
        cfg = bundle.read_config(self.store, cid)
        if c.state.status not in ("running", "paused", "restarting"):
            if c.state.status == "dead":
                self._container_reap(cid)
            return
        grace = float(cfg.get("stop_timeout", DEFAULT_STOP_TIMEOUT)) if timeout is None \
            else float(timeout)
        if c.state.status == "paused":
            with contextlib.suppress(Exception):
                self.container_unpause(cid)  # type: ignore[attr-defined]
        sig = cfg.get("stop_signal") or "SIGTERM"
        self.store.emit("container", "kill", cid, name=c.name,
                        signal=str(specs.check_signal(sig)))
        forever = grace < 0  # as Docker: a negative timeout waits for as long as it takes
        if not self._request_stop(cid, sig, None if forever else grace, grace=not forever):
            self._container_reap(cid)
        elif not self._wait_status(cid, lambda s: s not in ("running", "paused", "restarting"),
                                   None if forever else grace + 10.0):
            raise EngineRuntimeError(f"container {c.name} did not stop")
        self.store.emit("container", "stop", cid, name=c.name)

    def container_kill(self, ref: str, signal: str = "SIGKILL") -> None:
        sig = specs.check_signal(signal)
        cid = self._container_resolve_id(ref)
        c = self._container_record(cid)
        if c.state.status not in ("running", "paused", "restarting"):
            raise Conflict(f"Cannot kill container: {c.name}: container {cid} is not running")
        self.store.emit("container", "kill", cid, name=c.name, signal=str(sig))
        stop_sig = specs.check_signal(bundle.read_config(self.store, cid).get("stop_signal")
                                 or "SIGTERM")
        ends_it = sig in (_SIGKILL, _SIGTERM, _SIGINT, stop_sig)
        if c.state.status == "paused" and sig == _SIGKILL:  # a frozen task cannot die
            with contextlib.suppress(Exception):
                self.container_unpause(cid)  # type: ignore[attr-defined]
        if not self._request_stop(cid, str(sig), None, grace=False,
                                  keep_policy=not ends_it) and ends_it:
            self._container_reap(cid)

    def container_restart(self, ref: str, timeout: float | None = None) -> None:
        cid = self._container_resolve_id(ref)
        self.container_stop(cid, timeout)
        self.container_start(cid)
        c = self._container_record(cid)
        self.store.emit("container", "restart", cid, name=c.name)

    def _wait_status(self, cid: str, done: Any, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                c = self._container_record(cid)
            except NotFound:
                return True
            if done(c.state.status):
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    # ----------------------------------------------------------------- remove

    def container_remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        cid = self._container_resolve_id(ref)
        try:
            c = self._container_record(cid)
        except NotFound:  # a bundle whose config.json is unreadable: remove what is there
            if not bundle.bundle_dir(self.store, cid).exists():
                raise
            self._container_destroy(cid)
            return
        if c.state.status in ("running", "paused", "restarting"):
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {cid}. Stop the container "
                    "before attempting removal or force remove")
            if c.state.status == "paused":
                with contextlib.suppress(Exception):
                    self.container_unpause(cid)  # type: ignore[attr-defined]
            if self._request_stop(cid, "SIGKILL", None, grace=False):
                self._wait_status(cid, lambda s: s not in ("running", "paused",
                                                           "restarting"), 15.0)
                self._wait_monitor_gone(cid, 5.0)
        cfg = bundle.read_config(self.store, cid)
        self._container_destroy(cid)
        if volumes and hasattr(self, "volume_remove"):
            self._remove_anonymous_volumes(cid, cfg)

    def _remove_anonymous_volumes(self, cid: str, cfg: dict[str, Any]) -> None:
        """`rm -v`: the container's anonymous volumes (named ones stay, as Docker)."""
        from engine.volumes import anonymous_name

        spec = bundle.spec_from_dict(cfg["spec"])
        for m in specs.with_image_volumes(spec, cfg):
            if m.type == "volume" and not m.source:
                with contextlib.suppress(NotFound, Conflict):
                    self.volume_remove(anonymous_name(cid, m.target))  # type: ignore[attr-defined]

    def _wait_monitor_gone(self, cid: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not bundle.monitor_alive(bundle.read_state(self.store, cid)):
                return
            time.sleep(0.02)

    def _container_reap(self, cid: str) -> None:
        """Clean what a dead monitor left: the container's processes, cgroup, network."""
        state = bundle.read_state(self.store, cid)
        from engine.runtime.syscalls import boot_id

        pid, start = int(state.get("pid") or 0), int(state.get("pid_start") or 0)
        same_boot = state.get("boot_id") in ("", None, boot_id())
        if pid and start and same_boot and bundle.process_alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            from engine.runtime.cgroups import CgroupDriver

            CgroupDriver.detect(parent=state.get("cgroup_parent")).open(cid).remove()
        teardown = getattr(self, "_net_teardown", None)
        if teardown is not None:
            with contextlib.suppress(Exception):
                teardown(cid)
        if state.get("status") in ("running", "paused", "restarting"):
            bundle.update_state(self.store, cid, status="exited", pid=0,
                                exit_code=state.get("exit_code") or 137,
                                error=state.get("error") or "monitor process died",
                                finished_at=bundle.now_rfc3339())

    def _container_destroy(self, cid: str) -> None:
        """Remove a stopped container's resources and bundle, then emit `destroy`."""
        name = ""
        with contextlib.suppress(Exception):
            name = bundle.read_config(self.store, cid).get("name", "")
        self._container_reap(cid)
        release = getattr(self, "_net_release", None)
        if release is not None:
            with contextlib.suppress(NotFound):
                release(cid)
        d = bundle.bundle_dir(self.store, cid)
        tmp = d.with_name(f".removing-{cid}")
        with self.store.lock("containers"):
            with contextlib.suppress(FileNotFoundError):
                os.rename(d, tmp)
            shutil.rmtree(bundle.attach_dir(self.store, cid), ignore_errors=True)
            for lock in (bundle.lock_name(cid), f"container-op-{cid}", sweep.starting_lock(cid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.store.path("locks", f"{lock}.lock"))
        shutil.rmtree(tmp, ignore_errors=True)  # renamed away: no need to hold the lock
        self.store.emit("container", "destroy", cid, name=name)

    # ----------------------------------------------------------------- queries

    def container_list(self, all: bool = False,
                       labels: dict[str, str | None] | None = None) -> list[Container]:
        sweep.sweep_incomplete(self.store)  # what a killed create/remove left behind
        out = []
        for cid in self._container_ids():
            try:
                c = self._container_record(cid)
            except NotFound:
                continue
            if not all and c.state.status not in ("running", "paused", "restarting"):
                continue
            if labels and not _labels_match(c.labels, labels):
                continue
            out.append(c)
        out.sort(key=lambda c: c.created, reverse=True)
        return out

    def container_inspect(self, ref: str) -> Container:
        return self._container_record(ref)

    def container_wait(self, ref: str, condition: str = "not-running",
                       timeout: float | None = None) -> int:
        cid = self._container_resolve_id(ref)
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition}")
        if condition == "next-exit":
            first = self._container_record(cid).state.finished_at
            ok = self._wait_finished_changed(cid, first, timeout)
        elif condition == "removed":
            ok = self._wait_status(cid, lambda s: False, timeout)
        else:
            ok = self._wait_status(
                cid, lambda s: s not in ("running", "paused", "restarting"), timeout)
        if not ok:
            raise EngineRuntimeError(f"timed out waiting for container {ref}")
        try:
            return self._container_record(cid).state.exit_code
        except NotFound:
            return 0

    def _wait_finished_changed(self, cid: str, first: str, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                c = self._container_record(cid)
            except NotFound:
                return True
            if c.state.finished_at != first and c.state.status != "running":
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def container_logs(self, ref: str, follow: bool = False, tail: int | None = None,
                       since: float | None = None,
                       until: float | None = None) -> Iterator[LogLine]:
        from engine.runtime.logs import read_logs

        cid = self._container_resolve_id(ref)
        path = bundle.log_path(self.store, cid)

        def alive() -> bool:
            return bundle.monitor_alive(bundle.read_state(self.store, cid))

        return read_logs(path, follow=follow, tail=tail, since=since, until=until,
                         alive=alive)

    def container_attach(self, ref: str, stdin: IO[Any] | None, stdout: IO[Any],
                         stderr: IO[Any], tty: bool) -> int:
        """Relay stdio to the container's monitor until the container exits; its code.

        A container that already exited (or whose monitor is ending) is replayed from its
        log instead, so a caller racing a short-lived container still sees its output."""
        from engine.runtime import attach

        cid = self._container_resolve_id(ref)
        c = self._container_record(cid)
        if c.state.status in ("created", "dead"):
            raise Conflict(f"You cannot attach to a stopped container {c.name}, "
                           "start it first")
        code = attach.attach(self.store.run_dir, cid, stdin, stdout, stderr, tty)
        if code is None:
            write = {"stdout": attach.writer(stdout), "stderr": attach.writer(stderr)}
            for line in self.container_logs(cid, follow=True):
                write[line.stream](line.text.encode())
        if code is None or code == attach.MONITOR_LOST:
            return self.container_wait(cid)
        return code


# --------------------------------------------------------------------------- helpers


def _observed_status(state: dict[str, Any]) -> tuple[str, str | None]:
    """The status to report: a live status whose monitor is gone becomes `dead`."""
    status = state.get("status", "created")
    if status in ("running", "paused", "restarting") and not bundle.monitor_alive(state):
        pid = state.get("monitor_pid")
        return "dead", f"the container's monitor (pid {pid}) is gone; container killed"
    return status, None


def _labels_match(have: dict[str, str], want: dict[str, str | None]) -> bool:
    return all(k in have and (v is None or have[k] == v) for k, v in want.items())
