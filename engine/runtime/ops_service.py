"""The engine service for exec, top, stats, pause/unpause, cp, diff and export.

Mixin `ContainerOpsService` of `engine.local.LocalEngine`. It reaches the container
service only through its hooks (`_container_record`, `_container_pid`) and the bundle
layout (`bundle.py`): the resolved process in config.json, `lowerdirs`, `upper/`, `work/`.
A running container is entered through its init's namespaces (`nsexec`) or its root
(`/proc/<pid>/root`, every path resolved inside it); a stopped one through an overlay
mounted in a helper's private mount namespace (`ops_rootfs`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from engine.api import (
    Conflict,
    Container,
    EngineRuntimeError,
    ExecSpec,
    InvalidArgument,
    NotFound,
    Stats,
)
from engine.store import Store

STATS_FIRST_INTERVAL = 0.25  # seconds between the two samples of a first stats call
STATS_PREV_MAX_AGE = 30.0


class ContainerOpsService:
    """Mixin of engine.local.LocalEngine."""

    store: Store
    _container_record: Callable[[str], Container]  # ContainerService's hook

    # ----------------------------------------------------------------- helpers

    def _ops_record(self, ref: str) -> Container:
        return self._container_record(ref)

    def _ops_running(self, ref: str, action: str) -> tuple[Container, int]:
        c = self._ops_record(ref)
        if c.state.status == "paused" and action == "exec":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if c.state.status not in ("running", "paused") or not c.state.pid:
            raise Conflict(f"Container {c.id} is not running")
        return c, c.state.pid

    def _ops_config(self, cid: str) -> dict[str, Any]:
        from engine.runtime import bundle

        try:
            return bundle.read_config(self.store, cid)
        except (FileNotFoundError, ValueError) as exc:
            raise NotFound(f"No such container: {cid}") from exc

    def _ops_cgroup(self, cid: str) -> Any:
        """The container's cgroup, or None when it has none (not running, no cgroupfs)."""
        from engine.runtime import bundle
        from engine.runtime.cgroups import CgroupDriver

        try:
            parent = bundle.read_state(self.store, cid).get("cgroup_parent")
            return CgroupDriver.detect(parent=parent).open(cid)
        except (NotFound, EngineRuntimeError):
            return None

    def _ops_emit(self, c: Container, action: str, **attrs: str) -> None:
        self.store.emit("container", action, c.id, name=c.name, image=c.image, **attrs)

    @contextlib.contextmanager
    def _ops_root(self, c: Container, writable: bool) -> Iterator[int]:
        """A dir fd of the container's filesystem: its live root, else a private overlay."""
        if c.state.status in ("running", "paused") and c.state.pid:
            try:
                fd = os.open(f"/proc/{c.state.pid}/root",
                             os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    yield fd
                finally:
                    os.close(fd)
                return
        with self._ops_merged(c, writable) as fd:
            yield fd

    @contextlib.contextmanager
    def _ops_merged(self, c: Container, writable: bool) -> Iterator[int]:
        from engine.runtime import bundle
        from engine.runtime.ops_rootfs import merged_root

        cfg = self._ops_config(c.id)
        bdir = bundle.bundle_dir(self.store, c.id)
        lowers = [str(p) for p in cfg.get("lowerdirs") or []]
        upper, work = bdir / "upper", bdir / "work"
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        with merged_root(lowers, str(upper), str(work), self.store.run_dir / "ops",
                         writable=writable) as fd:
            yield fd

    # ----------------------------------------------------------------- exec

    def container_exec(self, ref: str, spec: ExecSpec, *, stdin: int | None = None,
                       stdout: int | None = None, stderr: int | None = None) -> int:
        """Run a command in a running container; its exit code (0 at once with `detach`).

        Without explicit fds the caller's own stdio is used (stdin only with spec.stdin);
        with `spec.tty` a pty from the container's devpts is relayed to them.
        """
        from engine.runtime import nsexec
        from engine.runtime.caps import effective_caps

        if not spec.cmd:
            raise InvalidArgument("no command specified")
        if spec.working_dir and not spec.working_dir.startswith("/"):
            raise InvalidArgument(f"the working directory '{spec.working_dir}' is invalid, "
                                  "it needs to be an absolute path")
        if any(not k or "=" in k for k, _ in spec.env):
            raise InvalidArgument("invalid environment variable name in exec")
        c, pid = self._ops_running(ref, "exec")
        cfg = self._ops_config(c.id)
        proc = cfg.get("process") or {}
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in proc.get("env") or [])
        env.update(dict(spec.env))
        if spec.tty:
            env.setdefault("TERM", "xterm")
        uid, gid = int(proc.get("uid", 0)), int(proc.get("gid", 0))
        groups = [int(g) for g in proc.get("groups") or []]
        if spec.user:
            uid, gid, groups = self._ops_user(pid, spec.user)
        cwd = spec.working_dir or proc.get("cwd") or "/"
        caps = effective_caps(c.spec.cap_add, c.spec.cap_drop,
                              c.spec.privileged or spec.privileged)
        nnp = any(o.replace("=", ":") in ("no-new-privileges:true", "no-new-privileges")
                  for o in c.spec.security_opt)
        cg = self._ops_cgroup(c.id)
        from engine.runtime import seccomp  # exec'd processes get the container's filter

        kwargs: dict[str, Any] = dict(env=env, uid=uid, gid=gid, groups=groups, cwd=cwd,
                                      caps=caps, cgroup=cg, no_new_privs=nnp,
                                      seccomp=seccomp.program_for(
                                          self.store, c.spec.security_opt, c.spec.privileged,
                                          effective_caps(c.spec.cap_add, c.spec.cap_drop,
                                                         c.spec.privileged)))
        cmd_text = " ".join(spec.cmd)
        exec_id = secrets.token_hex(32)
        self._ops_emit(c, f"exec_create: {cmd_text}", execID=exec_id)
        self._ops_emit(c, f"exec_start: {cmd_text}", execID=exec_id)
        if spec.detach:
            return self._ops_exec_detached(pid, spec, kwargs)
        try:
            code = self._ops_exec_attached(pid, spec, kwargs, stdin, stdout, stderr)
        except nsexec.ExecFailed as exc:
            self._ops_emit(c, "exec_die", execID=exec_id, exitCode=str(exc.exit_code))
            raise
        self._ops_emit(c, "exec_die", execID=exec_id, exitCode=str(code))
        return code

    def _ops_exec_attached(self, pid: int, spec: ExecSpec, kwargs: dict[str, Any],
                           stdin: int | None, stdout: int | None, stderr: int | None) -> int:
        """Run to completion on the caller's fds (through a relayed pty with `tty`)."""
        from engine.runtime import nsexec

        in_fd = (0 if stdin is None else stdin) if spec.stdin else None
        out_fd = 1 if stdout is None else stdout
        err_fd = 2 if stderr is None else stderr
        if spec.tty:
            from engine.runtime.ops_exec import copy_winsize, relay_pty

            master, slave = nsexec.open_pty(pid)
            for fd in (in_fd, out_fd):  # the size must be right before the program starts
                if fd is not None and os.isatty(fd):
                    copy_winsize(fd, master)
                    break
            try:
                helper = nsexec.spawn_in_container(pid, spec.cmd, tty=True, stdin=slave,
                                                   stdout=slave, stderr=slave, **kwargs)
                os.close(slave)
                slave = -1
                return relay_pty(master, helper, in_fd, out_fd)
            finally:
                os.close(master)
                if slave >= 0:
                    os.close(slave)
        helper = nsexec.spawn_in_container(pid, spec.cmd, stdin=in_fd, stdout=out_fd,
                                           stderr=err_fd, **kwargs)
        try:
            got = nsexec.wait_exit_code(helper)
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.kill(helper, 2)
            got = nsexec.wait_exit_code(helper)
        return 255 if got is None else got

    def _ops_exec_detached(self, pid: int, spec: ExecSpec, kwargs: dict[str, Any]) -> int:
        """Start and forget: an intermediate process owns the helper, we reap it at once."""
        from engine.runtime import nsexec

        r, w = os.pipe2(os.O_CLOEXEC)
        middle = os.fork()
        if middle == 0:
            try:
                os.close(r)
                os.setsid()
                nsexec.spawn_in_container(pid, spec.cmd, **kwargs)
                os.write(w, b"ok")
            except BaseException as exc:
                with contextlib.suppress(BaseException):
                    os.write(w, str(exc).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            msg = f.read().decode(errors="replace")
        nsexec.wait_exit_code(middle)
        if msg != "ok":
            raise nsexec.ExecFailed(msg or "exec failed")
        return 0

    def _ops_user(self, pid: int, user: str) -> tuple[int, int, list[int]]:
        """Resolve `user` from the container's own /etc/passwd and /etc/group, as text."""
        from engine.runtime import user as usermod
        from engine.runtime.ops_archive import open_in_root

        def read(path: str) -> str:
            try:
                root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    fd = open_in_root(root, path, os.O_RDONLY)
                finally:
                    os.close(root)
            except OSError:
                return ""
            with os.fdopen(fd, "rb") as f:
                return f.read(4 << 20).decode("utf-8", "replace")

        r = usermod.resolve(user, (), read("etc/passwd"), read("etc/group"))
        return r.uid, r.gid, list(r.groups)

    # ----------------------------------------------------------------- top, stats

    def container_top(self, ref: str) -> tuple[list[str], list[list[str]]]:
        from engine.runtime.ops_top import descendants, top

        c, pid = self._ops_running(ref, "top")
        cg = self._ops_cgroup(c.id)
        pids = cg.pids() if cg is not None else []
        if pid not in pids:
            pids = sorted(set(pids) | set(descendants(pid)))
        return top(pids)

    def container_stats(self, ref: str) -> Stats:
        from engine.runtime.ops_stats import sample, with_cpu

        c = self._ops_record(ref)
        if c.state.status not in ("running", "paused") or not c.state.pid:
            return Stats(cpu_percent=0.0, memory_usage=0, memory_limit=0, pids=0)
        cg = self._ops_cgroup(c.id)
        if cg is None:
            raise EngineRuntimeError(f"container {c.name} has no cgroup to read stats from")
        cache: dict[str, Any] = self.__dict__.setdefault("_ops_stats_prev", {})
        prev = cache.get(c.id)
        now = time.monotonic_ns()
        if prev is None or (now - prev.wall_ns) / 1e9 > STATS_PREV_MAX_AGE:
            prev = sample(cg, c.state.pid)
            time.sleep(STATS_FIRST_INTERVAL)
        cur = sample(cg, c.state.pid)
        cache[c.id] = cur
        return with_cpu(prev, cur)

    # ----------------------------------------------------------------- pause

    def container_pause(self, ref: str) -> None:
        c, _ = self._ops_running(ref, "pause")
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is already paused")
        cg = self._ops_cgroup(c.id)
        if cg is None:
            raise EngineRuntimeError(f"container {c.name} has no cgroup to freeze")
        cg.freeze()
        if not self._ops_transition(c.id, "running", "paused"):
            cg.thaw()  # it stopped meanwhile: leave its recorded state alone
            raise Conflict(f"Container {c.id} is not running")
        self._ops_emit(c, "pause")

    def container_unpause(self, ref: str) -> None:
        c = self._ops_record(ref)
        if c.state.status != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        cg = self._ops_cgroup(c.id)
        if cg is not None:
            cg.thaw()
        self._ops_transition(c.id, "paused", "running")
        self._ops_emit(c, "unpause")

    def _ops_transition(self, cid: str, expect: str, new: str) -> bool:
        """Set state.json's status to `new` only if it is still `expect` (under its lock)."""
        from engine.runtime import bundle

        with self.store.lock(bundle.lock_name(cid)):
            state = bundle.read_state(self.store, cid)
            if state.get("status") != expect:
                return False
            state["status"] = new
            self.store.write_json(bundle.state_path(self.store, cid), state)
            return True

    # ----------------------------------------------------------------- cp

    def container_copy_to(self, ref: str, src: str, dest: str, *, archive: bool = False,
                          follow_link: bool = False) -> None:
        """Copy a host path (or a tar stream on stdin for `-`) into the container."""
        with _os_errors("copy into the container"):
            self._ops_copy_to(ref, src, dest, archive, follow_link)

    def _ops_copy_to(self, ref: str, src: str, dest: str, archive: bool,
                     follow_link: bool) -> None:
        from engine.runtime.ops_archive import extract, lstat_in_root
        from engine.runtime.ops_copy import copy_tree

        c = self._ops_record(ref)
        owner = None if archive else (0, 0)
        with self._ops_root(c, writable=True) as root:
            if src == "-":
                st = lstat_in_root(root, dest, follow=True)
                if st is None or not _is_dir(st):
                    raise InvalidArgument(
                        "destination must be a directory when copying from stdin")
                extract(sys.stdin.buffer, root, dest, owner=owner)
                return
            host = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                copy_tree(host, _host_abs(src), root, dest, owner=owner, src_label="host",
                          follow=follow_link)
            finally:
                os.close(host)
        self._ops_emit(c, "extract-to-dir", path=dest)

    def container_copy_from(self, ref: str, src: str, dest: str, *, archive: bool = False,
                            follow_link: bool = False) -> None:
        """Copy a container path to a host path (or as a tar stream to stdout for `-`)."""
        with _os_errors("copy from the container"):
            self._ops_copy_from(ref, src, dest, archive, follow_link)

    def _ops_copy_from(self, ref: str, src: str, dest: str, archive: bool,
                       follow_link: bool) -> None:
        from engine.runtime.ops_copy import copy_tree, plan_copy, write_tar

        c = self._ops_record(ref)
        owner = None if archive else (os.getuid(), os.getgid())
        with self._ops_root(c, writable=False) as root:
            if dest == "-":
                plan_copy(root, src, root, "/", follow=follow_link)  # existence check
                name = [p for p in src.split("/") if p and p != "."]
                write_tar(root, src.rstrip("/"), sys.stdout.buffer,
                          name[-1] if name else "root", follow=follow_link)
                sys.stdout.buffer.flush()
                return
            host = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                copy_tree(root, src, host, _host_abs(dest), owner=owner, follow=follow_link)
            finally:
                os.close(host)
        self._ops_emit(c, "archive-path", path=src)

    # ----------------------------------------------------------------- diff, export

    def container_diff(self, ref: str) -> list[tuple[str, str]]:
        """[(kind, path)] with kind "A", "C" or "D", sorted by path (`docker diff`)."""
        from engine.runtime import bundle
        from engine.runtime.ops_diff import changes

        c = self._ops_record(ref)
        cfg = self._ops_config(c.id)
        upper = bundle.bundle_dir(self.store, c.id) / "upper"
        if not upper.is_dir():
            return []
        return changes(str(upper), [str(p) for p in cfg.get("lowerdirs") or []])

    def container_export(self, ref: str, out: str | IO[bytes]) -> None:
        """The container's merged filesystem (without volumes or binds) as a tar."""
        with _os_errors("export"):
            self._ops_export(ref, out)

    def _ops_export(self, ref: str, out: str | IO[bytes]) -> None:
        from engine.runtime.ops_copy import write_tar

        c = self._ops_record(ref)
        with self._ops_merged(c, writable=False) as root:
            if not isinstance(out, str):
                write_tar(root, "/", out, "", contents_only=True)
                return
            target = Path(_host_abs(out))
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as f:
                    write_tar(root, "/", f, "", contents_only=True)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        self._ops_emit(c, "export")


@contextlib.contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Host refusals (EROFS, ENOSPC, EACCES...) as one engine error naming the path."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise EngineRuntimeError(f"{what} failed: "
                                 f"{(exc.strerror or str(exc)).lower()}{where}") from exc


def _is_dir(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode)


def _host_abs(path: str) -> str:
    """Absolute host path keeping docker cp's meaningful `/.` and `/` endings."""
    suffix = "/." if path.endswith("/.") else "/" if path.endswith("/") else ""
    return os.path.abspath(path).rstrip("/") + suffix if path else path
