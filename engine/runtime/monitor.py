"""The per-container supervisor (one detached process per container, like conmon).

Layout per run (engine-feasibility.md §1, with its "Bugs found" traps avoided):

    M (this monitor, host namespaces)
      setns(own pid ns, NEWPID); unshare(NEWPID)   # re-armed for every (re)start
      fork -> G (PID 1 of a new pid ns, M's direct child: pidfd + waitpid work)
        G: unshare(NEWNS|NEWUTS|NEWIPC[|NEWNET]); write "ready"  (only AFTER unshare)
           hostname, rootfs.prepare (overlay, /proc, /dev, masks, binds, sysctls)
           read "go"                     # meanwhile M joins cgroups + sets up the veth
           pivot_root, ulimits, user + caps, cwd, fds, signals, execve
           (errors go to a CLOEXEC pipe: EOF without data == exec happened)

M then owns stdout/stderr (json-file log with rotation; also relayed, with stdin and the
terminal's size, to clients of its attach socket: attach_hub.py), writes every state transition
atomically, runs health checks on schedule, forwards stop requests (stop.json + SIGUSR1)
with the grace period then SIGKILL, records the exit code and OOM kills, and applies the
restart policy with Docker's back-off (100 ms doubling, max 1 min, reset after 10 s up).
G's side is containerinit.py; health-check processes are probes.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from engine.api import EngineError
from engine.runtime import bundle, sweep
from engine.runtime import syscalls as sc
from engine.runtime.attach_hub import MARK as ATTACH
from engine.runtime.attach_hub import AttachHub
from engine.runtime.containerinit import (
    ChildFds,
    StartError,
    container_init,
    exit_code_of,
    signal_number,
)
from engine.runtime.health import HealthMonitor, probe_argv
from engine.runtime.launcher import ERRORS, LaunchPlan
from engine.runtime.logs import LogWriter, NullWriter, timestamp
from engine.runtime.probes import Probe
from engine.store import Store

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0
DRAIN_AFTER_EXIT = 2.0


@dataclass
class Run:
    pid: int
    pidfd: int
    out_r: int  # stdout pipe, or the terminal's master side with a tty
    err_r: int  # stderr pipe; -1 with a tty (one stream, as Docker)
    cgroup: Any
    started: float
    keep: tuple[int, ...] = ()  # fds held open for the container (stdin's write end)


# --------------------------------------------------------------------------- entry


def main(engine: Any, store: Store, plan: LaunchPlan, report_fd: int) -> None:
    """Body of the monitor process (forked by launcher.launch). Never returns."""
    code = 0
    try:
        report_fd = _detach(store, plan, report_fd)
        monitor = Monitor(engine, store, plan, report_fd)
        monitor.starting_fd = sweep.claim_start(store, plan.container_id)
        monitor.run()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(code)


def _detach(store: Store, plan: LaunchPlan, report_fd: int) -> int:
    """Own stdio (monitor.log), one inherited fd only (the report pipe), sane signals."""
    os.chdir("/")
    null = os.open("/dev/null", os.O_RDWR)
    log = os.open(bundle.bundle_dir(store, plan.container_id) / "monitor.log",
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(report_fd, 3)
    os.set_inheritable(3, False)
    sc.close_fds_from(4)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGALRM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    sc.set_process_name(f"pyc-mon-{plan.container_id[:6]}")
    return 3


class Monitor:
    """Supervises one container for as long as it runs (restarts included)."""

    def __init__(self, engine: Any, store: Store, plan: LaunchPlan, report_fd: int) -> None:
        # who we are goes into state with the first transition (running, or the failure)
        self.identity = {"monitor_pid": os.getpid(),
                         "monitor_start": sc.proc_starttime(os.getpid()) or 0,
                         "boot_id": sc.boot_id()}
        self.engine = engine
        self.store = store
        self.plan = plan
        self.cid = plan.container_id
        self.report_fd: int | None = report_fd
        self.starting_fd: int | None = None  # sweep.claim_start: held until the report
        self.stop_requested = False
        self.kill_at: float | None = None
        self.self_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGUSR1, self._on_stop_signal)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        self._pending_stop = False
        self.log = NullWriter() if plan.log_driver == "none" else LogWriter(
            bundle.log_path(store, self.cid), plan.log_max_size, plan.log_max_file)
        self.hub: AttachHub | None = None
        try:  # before the first report: a client may connect as soon as start returns
            self.hub = AttachHub(bundle.attach_dir(store, self.cid))
        except OSError as e:
            print(f"attach socket: {e}", file=sys.stderr)

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self._pending_stop = True

    # ----------------------------------------------------------------- lifecycle

    def run(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bundle.stop_request_path(self.store, self.cid))
        delay = BACKOFF_START
        restart_count = 0
        first = True
        try:
            while True:
                try:
                    run = self._start_once()
                except StartError as e:
                    self._record_start_failure(e, first)
                    return
                if first:
                    self._report({"ok": True, "pid": run.pid, "monitor_pid": os.getpid()})
                    first = False
                code, oom = self._supervise(run)
                ran = time.monotonic() - run.started
                if not self._should_restart(code, restart_count):
                    self._finish(code, oom, "exited")
                    if self.hub is not None:
                        self.hub.end_run(code)
                    return
                self._finish(code, oom, "restarting")
                if self.hub is not None:
                    self.hub.end_run(code)
                delay = BACKOFF_START if ran >= BACKOFF_RESET_AFTER else delay
                if not self._sleep_interruptible(delay):
                    bundle.update_state(self.store, self.cid, status="exited")
                    return
                delay = min(delay * 2, BACKOFF_MAX)
                restart_count += 1
                bundle.update_state(self.store, self.cid, restart_count=restart_count)
        finally:
            self.log.close()
            if self.hub is not None:
                self.hub.close()
            if self.plan.auto_remove:
                with contextlib.suppress(Exception):
                    self.engine._container_destroy(self.cid)

    def _should_restart(self, code: int, count: int) -> bool:
        if self.stop_requested:
            return False
        policy = self.plan.restart
        if policy.name in ("always", "unless-stopped"):
            return True
        if policy.name == "on-failure":
            return code != 0 and (policy.maximum_retry_count <= 0
                                  or count < policy.maximum_retry_count)
        return False

    def _sleep_interruptible(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self._check_stop_request(None)
            if self.stop_requested:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            sel = selectors.DefaultSelector()
            sel.register(self.wake_r, selectors.EVENT_READ)
            sel.select(left)
            sel.close()
            self._drain_wake()

    def _report(self, msg: dict[str, Any]) -> None:
        if self.starting_fd is not None:  # the state now says what happened
            os.close(self.starting_fd)
            self.starting_fd = None
        if self.report_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.report_fd, json.dumps(msg).encode() + b"\n")
        os.close(self.report_fd)
        self.report_fd = None

    def _record_start_failure(self, e: StartError, first: bool) -> None:
        print(f"start failed: {e}", file=sys.stderr)
        self.store.emit("container", "die", self.cid, name=self.plan.name,
                        exitCode=str(e.code))
        never_ran = bundle.read_state(self.store, self.cid).get("started_at") == bundle.NEVER
        bundle.update_state(self.store, self.cid, **self.identity,
                            status="created" if never_ran else "exited",  # as Docker
                            exit_code=e.code, error=str(e), pid=0,
                            finished_at=bundle.now_rfc3339())
        if first:
            self._report({"ok": False, "kind": e.kind, "error": str(e)})

    def _finish(self, code: int, oom: bool, status: str) -> None:
        # events first: whoever sees the new state finds `die` already in the journal
        if oom:
            self.store.emit("container", "oom", self.cid, name=self.plan.name)
        self.store.emit("container", "die", self.cid, name=self.plan.name,
                        exitCode=str(code))
        bundle.update_state(self.store, self.cid, status=status, exit_code=code, pid=0,
                            pid_start=0, oom_killed=oom, finished_at=bundle.now_rfc3339(),
                            ports=[])

    # ----------------------------------------------------------------- one run

    def _start_once(self) -> Run:
        plan = self.plan
        try:
            if not plan.pid_host:
                sc.setns(self.self_pidns, sc.CLONE_NEWPID)
                sc.unshare(sc.CLONE_NEWPID)
        except OSError as e:
            raise StartError(f"cannot create the pid namespace: {e}")
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        in_r, in_w = os.pipe2(os.O_CLOEXEC) if plan.stdin_open else (-1, -1)
        tty_parent, tty_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) \
            if plan.tty else (None, None)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            for fd in (out_r, err_r, ready_r, go_w, fail_r, in_w):
                if fd >= 0:
                    os.close(fd)
            container_init(plan, ChildFds(out_w, err_w, in_r, ready_w, go_r, fail_w,
                                          tty_child.fileno() if tty_child else -1))
        for fd in (out_w, err_w, ready_w, go_r, fail_w, in_r):
            if fd >= 0:
                os.close(fd)
        if tty_child is not None:
            tty_child.close()
        if not plan.pid_host:
            # our later children (probes, helpers) belong in our own pid namespace
            sc.setns(self.self_pidns, sc.CLONE_NEWPID)
        pidfd = sc.pidfd_open(pid)
        cgroup = None
        try:
            if os.read(ready_r, 1) != b"r":
                raise StartError(self._read_failure(fail_r, pid)[0] or "container init died")
            cgroup = self._cgroup_create(pid)
            if plan.resources.oom_score_adj is not None:
                with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                    f.write(str(plan.resources.oom_score_adj))
            ports = self._net_setup(pid)
            os.write(go_w, b"g" + json.dumps(_cgroup_mounts(cgroup)).encode())
            os.close(go_w)
            go_w = -1
            if tty_parent is not None:
                master = _receive_fd(tty_parent)
                if master >= 0:  # the init's stdio is the terminal: one stream
                    os.close(out_r)
                    os.close(err_r)
                    out_r, err_r = master, -1
            message, code = self._read_failure(fail_r, pid)
            if message:
                raise StartError(message, code)
        except BaseException as e:
            if go_w >= 0:
                os.close(go_w)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            for fd in (pidfd, out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            self._cleanup_run(cgroup)
            if isinstance(e, StartError):
                raise
            if isinstance(e, EngineError):
                kind = type(e).__name__ if type(e).__name__ in ERRORS else "EngineRuntimeError"
                raise StartError(str(e), 128, kind)
            if isinstance(e, OSError):
                raise StartError(str(e), 128)
            raise
        finally:
            os.close(ready_r)
            os.close(fail_r)
            if tty_parent is not None:
                tty_parent.close()
        now = bundle.now_rfc3339()
        health = None
        if plan.healthcheck is not None and probe_argv(plan.healthcheck.test):
            health = {"status": "starting", "failing_streak": 0, "log": []}
        bundle.update_state(self.store, self.cid, **self.identity, status="running", pid=pid,
                            pid_start=sc.proc_starttime(pid) or 0, exit_code=0, error="",
                            oom_killed=False, started_at=now, finished_at=bundle.NEVER,
                            health=health, ports=[_port_json(p) for p in ports])
        self.store.emit("container", "start", self.cid, name=plan.name)
        return Run(pid, pidfd, out_r, err_r, cgroup, time.monotonic(),
                   (in_w,) if in_w >= 0 else ())

    def _read_failure(self, fail_r: int, pid: int) -> tuple[str, int]:
        data = b""
        while True:
            chunk = os.read(fail_r, 65536)
            if not chunk:
                break
            data += chunk
        if not data:
            return "", 0
        try:
            msg = json.loads(data)
            return str(msg["error"]), int(msg.get("code", 127))
        except (ValueError, KeyError):
            return data.decode(errors="replace"), 127

    def _cgroup_create(self, pid: int) -> Any:
        try:
            from engine.runtime.cgroups import CgroupDriver
        except ImportError:
            return None
        driver = CgroupDriver.detect()
        cg = driver.create(self.cid, self.plan.resources, privileged=self.plan.privileged,
                           devices=self.plan.devices)
        # Kept so that cleanup from a process with another $PYCOMPOSE_CGROUP_PARENT finds it.
        bundle.update_state(self.store, self.cid, cgroup_parent=driver.parent)
        cg.add(pid)
        return cg

    def _net_setup(self, pid: int) -> tuple[Any, ...]:
        setup = getattr(self.engine, "_net_setup", None)
        if setup is None:
            return ()
        return tuple(setup(self.cid, pid))

    def _cleanup_run(self, cgroup: Any) -> None:
        teardown = getattr(self.engine, "_net_teardown", None)
        if teardown is not None:
            try:
                teardown(self.cid)
            except Exception as e:  # keep supervising; the next start retries
                print(f"network teardown: {e}", file=sys.stderr)
        if cgroup is not None:
            try:
                cgroup.remove()
            except Exception as e:
                print(f"cgroup remove: {e}", file=sys.stderr)

    # ----------------------------------------------------------------- supervision

    def _supervise(self, run: Run) -> tuple[int, bool]:
        """Pump logs, probe health, forward stops until the init exits; (code, oom)."""
        sel = selectors.DefaultSelector()
        streams = {fd: name for fd, name in ((run.out_r, "stdout"), (run.err_r, "stderr"))
                   if fd >= 0}
        for fd in streams:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, "log")
        sel.register(run.pidfd, selectors.EVENT_READ, "exit")
        sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        hub = self.hub
        if hub is not None:  # the hub owns the container's stdin from here on
            terminal = run.out_r if self.plan.tty and run.err_r < 0 else -1
            stdin = terminal if terminal >= 0 else (run.keep[0] if run.keep else -1)
            if not self.plan.stdin_open:
                stdin = -1
            elif stdin != terminal:
                run.keep = ()
            hub.begin_run(sel, stdin, terminal)
        health = None
        if self.plan.healthcheck is not None and probe_argv(self.plan.healthcheck.test):
            health = HealthMonitor(self.plan.healthcheck, time.monotonic())
        probe: Probe | None = None
        next_probe = time.monotonic() + (health.delay(time.monotonic()) if health else 0)
        exited_at: float | None = None
        open_streams = set(streams)
        while open_streams or exited_at is None:
            now = time.monotonic()
            if exited_at is not None and now - exited_at > DRAIN_AFTER_EXIT:
                break
            timeouts = [DRAIN_AFTER_EXIT if exited_at is not None else 3600.0]
            if self.kill_at is not None:
                timeouts.append(self.kill_at - now)
            if health is not None and exited_at is None:
                timeouts.append((probe.deadline if probe else next_probe) - now)
            if hub is not None:
                hub.flush()
                timeouts.append(hub.timeout() or 3600.0)
            for key, mask in sel.select(max(0.0, min(timeouts))):
                what = key.data
                if what == ATTACH and hub is not None:
                    hub.handle(key.fileobj, mask)
                elif what == "log":
                    try:
                        data = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:  # EIO: the terminal's last user has gone
                        data = b""
                    if data:
                        self.log.write(streams[key.fd], data)
                        if hub is not None:
                            hub.output(streams[key.fd], data)
                    else:
                        self.log.flush(streams[key.fd])
                        sel.unregister(key.fd)
                        open_streams.discard(key.fd)
                elif what == "exit":
                    sel.unregister(run.pidfd)
                    exited_at = time.monotonic()
                elif what == "wake":
                    self._drain_wake()
                    self._check_stop_request(run)
                elif what == "probe" and probe is not None and probe.read():
                    sel.unregister(probe.out_r)
                    self._finish_probe(probe, health)
                    probe = None
                    next_probe = time.monotonic() + (health.delay(time.monotonic())
                                                     if health else 0)
            now = time.monotonic()
            if self.kill_at is not None and now >= self.kill_at and exited_at is None:
                self._kill(run, signal.SIGKILL)
                self.kill_at = None
            if health is not None and exited_at is None:
                if probe is None and now >= next_probe:
                    probe = self._start_probe(run, health)
                    if probe is None:
                        next_probe = now + health.delay(now)
                    else:
                        sel.register(probe.out_r, selectors.EVENT_READ, "probe")
                elif probe is not None and now >= probe.deadline:
                    sel.unregister(probe.out_r)
                    probe.timed_out = True
                    self._finish_probe(probe, health)
                    probe = None
                    next_probe = now + health.delay(now)
        if probe is not None:
            probe.abort()
        if hub is not None:
            hub.detach_selector()
        sel.close()
        for fd in streams:
            self.log.flush(streams[fd])
            os.close(fd)
        for fd in run.keep:
            os.close(fd)
        _, status = os.waitpid(run.pid, 0)
        os.close(run.pidfd)
        code = exit_code_of(status)
        oom = False
        if run.cgroup is not None:
            with contextlib.suppress(Exception):
                oom = run.cgroup.oom_kills() > 0
        self.kill_at = None
        self._cleanup_run(run.cgroup)
        return code, oom

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass

    def _check_stop_request(self, run: Run | None) -> None:
        if not self._pending_stop:
            return
        self._pending_stop = False
        try:
            req = self.store.read_json(bundle.stop_request_path(self.store, self.cid)) or {}
            sig = signal_number(req.get("signal") or self.plan.stop_signal)
            timeout = float(req["timeout"]) if req.get("timeout") is not None \
                else self.plan.stop_timeout
        except (ValueError, TypeError, AttributeError) as e:  # a bad request: stop anyway
            print(f"stop request: {e}", file=sys.stderr)
            req, sig, timeout = {}, signal_number(self.plan.stop_signal), self.plan.stop_timeout
        if not req.get("keep_policy"):
            self.stop_requested = True
        if run is None:
            return
        self._kill(run, sig)
        if sig != signal.SIGKILL and req.get("grace", True):
            deadline = time.monotonic() + max(0.0, timeout)
            self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)

    def _kill(self, run: Run, sig: int) -> None:
        # The init's death ends its pid namespace; whatever else is left in the cgroup
        # (pid: host) goes when the cgroup is removed after the exit.
        with contextlib.suppress(OSError):
            sc.pidfd_send_signal(run.pidfd, sig)

    # ----------------------------------------------------------------- health

    def _start_probe(self, run: Run, health: HealthMonitor) -> Probe | None:
        assert self.plan.healthcheck is not None
        argv = probe_argv(self.plan.healthcheck.test)
        if not argv:
            return None
        try:
            return Probe.spawn(run.pid, run.cgroup, self.plan, argv, health.timeout)
        except Exception as e:  # a probe that cannot even start counts as a failure
            start = timestamp()
            self._record_probe(health, start, -1, f"failed to run the health check: {e}")
            return None

    def _finish_probe(self, probe: Probe, health: HealthMonitor | None) -> None:
        code, output = probe.result()
        if health is not None:
            self._record_probe(health, probe.start, code, output)

    def _record_probe(self, health: HealthMonitor, start: str, code: int,
                      output: str) -> None:
        changed = health.record(time.monotonic(), start, timestamp(), code, output)
        if changed:  # the event first: whoever sees the new state finds it in the journal
            self.store.emit("container", f"health_status: {changed}", self.cid,
                            name=self.plan.name)
        bundle.update_state(self.store, self.cid, health=health.as_state())


def _cgroup_mounts(cgroup: Any) -> list[tuple[str, str]]:
    """(name under /sys/fs/cgroup, host dir) for each hierarchy of the container's groups."""
    if cgroup is None:
        return []
    out = []
    for ctrl, path in getattr(cgroup, "v1", {}).items():
        out.append((ctrl, str(path)))
    unified = getattr(cgroup, "unified", None)
    if unified is not None:
        out.append(("unified" if out else "", str(unified)))
    return [(n, p) for n, p in out if n and os.path.isdir(p)]


def _port_json(p: Any) -> dict[str, Any]:
    return {"container_port": p.container_port, "protocol": p.protocol,
            "host_ip": p.host_ip, "host_port": p.host_port}


def _receive_fd(sock: socket.socket) -> int:
    """The fd the init sends (a terminal master), or -1 if it died or exec'd first."""
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    except OSError:
        return -1
    return fds[0] if fds else -1
