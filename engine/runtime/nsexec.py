"""Run a process inside a running container: setns into its namespaces, join its cgroups, exec.

Used by `exec` and by the monitor's health checks. Process layout (engine-feasibility §2):

    caller --fork--> X: join the container's cgroups, setns ipc/uts/net/pid/mnt (mnt last),
                        chroot to the container init's root
                     X --fork--> Y: new session (controlling tty if asked), stdio, cwd,
                        signal dispositions reset, caps + user, fds closed, execve
                     X relays signals to Y and exits with Y's code (128+N for signal N)

`spawn_in_container` returns X's host pid once Y has exec'd (or raises `ExecFailed` with
Docker's exit code 126/127 when it could not); the caller reaps X with `wait_exit_code`.
For a TTY, `open_pty(pid)` allocates a pair from the container's own devpts instance.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import stat
import struct
import termios
import time
from collections.abc import Iterable, Mapping, Sequence

from engine.api import EngineRuntimeError
from engine.runtime import ops_syscalls as sc
from engine.runtime.caps import DEFAULT_CAPS, apply_caps
from engine.runtime.seccomp import install as install_seccomp  # never import after chroot

NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")  # mnt last: it changes our root
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
RELAYED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


class ExecFailed(EngineRuntimeError):
    """The process could not be started in the container (exit_code as Docker: 126/127)."""

    def __init__(self, message: str, exit_code: int = 126) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def wait_exit_code(pid: int, flags: int = 0) -> int | None:
    """Reap `pid`; its exit code with signals as 128+N; None if WNOHANG and still running."""
    while True:
        try:
            got, status = os.waitpid(pid, flags)
        except ChildProcessError:
            return None
        if got == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


def open_pty(pid: int) -> tuple[int, int]:
    """A (master, slave) pair from the devpts of container init `pid` (host pty as fallback).

    The slave is opened through the master (TIOCGPTPEER), so no path inside the container
    is trusted; the ptmx itself is found with RESOLVE_IN_ROOT and checked to be 5:2.
    """
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        master = sc.openat2(root, "dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY,
                            resolve=sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)
    except OSError:
        master = -1
    finally:
        os.close(root)
    if master >= 0:
        st = os.fstat(master)
        if stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (5, 2):
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            return master, int(slave)
        os.close(master)
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    return master, slave


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _same_ns(pid: int, ns: str) -> bool:
    try:
        a, b = os.stat(f"/proc/{pid}/ns/{ns}"), os.stat(f"/proc/self/ns/{ns}")
    except FileNotFoundError:
        return True
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


def _env_list(env: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(env, Mapping):
        return dict(env)
    out: dict[str, str] = {}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def spawn_in_container(pid: int, argv: Sequence[str], *,
                       env: Mapping[str, str] | Sequence[str] = (),
                       uid: int = 0, gid: int = 0, groups: Sequence[int] = (),
                       cwd: str = "/", tty: bool = False,
                       stdin: int | None = None, stdout: int | None = None,
                       stderr: int | None = None, caps: Iterable[str] | None = None,
                       cgroup: object | Sequence[str] | None = None,
                       no_new_privs: bool = False, start_timeout: float = 30.0,
                       seccomp: bytes | None = None) -> int:
    """Start `argv` in the container whose init has host pid `pid`; returns X's host pid.

    `stdin/stdout/stderr` are fds in the caller (None: /dev/null); with `tty` the process
    gets a new session whose controlling terminal is its stdin (a pty slave from
    `open_pty`). `cgroup` is a `cgroups.Cgroup` or a list of group directories.
    `caps` defaults to Docker's default set; `seccomp` is the container's compiled filter
    (engine/runtime/seccomp.py), loaded right before the caps drop. If the process has
    not exec'd within `start_timeout` seconds (a frozen cgroup, a stuck mount) the
    helper is killed.
    """
    if not argv:
        raise ExecFailed("no command given", 126)
    if not os.path.exists(f"/proc/{pid}"):
        raise EngineRuntimeError(f"container process {pid} is not running")
    if cgroup is not None and hasattr(cgroup, "frozen") and cgroup.frozen():
        raise EngineRuntimeError("the container is paused")
    if cgroup is None:
        cg_dirs: list[str] = []
    elif hasattr(cgroup, "paths"):
        cg_dirs = list(cgroup.paths())
    else:
        cg_dirs = [str(p) for p in cgroup]  # type: ignore[attr-defined]
    envd = _env_list(env)
    capset = set(DEFAULT_CAPS if caps is None else caps)
    args = [os.fsencode(a) for a in argv]
    opened: list[int] = []
    try:
        ns_fds = []
        for ns in NAMESPACES:
            if not _same_ns(pid, ns):
                fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
                opened.append(fd)
                ns_fds.append(fd)
        root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        opened.append(root_fd)
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        opened.append(null)
        cg_fds = []
        for d in cg_dirs:
            try:
                fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # a group removed meanwhile: the container is going away
            opened.append(fd)
            cg_fds.append(fd)
        stdio = [null if fd is None else fd for fd in (stdin, stdout, stderr)]
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        raise EngineRuntimeError(f"cannot enter container process {pid}: {exc}") from exc

    try:
        child = os.fork()
    except OSError as exc:
        for fd in (*opened, err_r, err_w):
            os.close(fd)
        raise EngineRuntimeError(f"cannot start a process in container {pid}: {exc}") from exc
    if child == 0:  # X
        code = 126
        try:
            os.close(err_r)
            _child_x(ns_fds, root_fd, cg_fds, stdio, err_w, args, envd, uid, gid, groups,
                     cwd, tty, capset, no_new_privs, seccomp)
        except BaseException as exc:  # report anything to the caller, never return
            with contextlib.suppress(BaseException):
                os.write(err_w, f"{code}:{exc}".encode())
        finally:
            os._exit(code)
    os.close(err_w)
    for fd in opened:
        os.close(fd)
    data = _read_until_exec(err_r, child, start_timeout)
    if data:
        wait_exit_code(child)
        code_text, _, message = data.decode(errors="replace").partition(":")
        raise ExecFailed(message.strip() or "exec failed",
                         int(code_text) if code_text.isdigit() else 126)
    return child


def _read_until_exec(err_r: int, child: int, timeout: float) -> bytes:
    """The error report of X/Y, or b"" once Y exec'd (the CLOEXEC pipe reached EOF)."""
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([err_r], [], [], left)[0]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
                wait_exit_code(child)
                raise EngineRuntimeError(f"the process did not start within {timeout:g}s")
            chunk = os.read(err_r, 4096)
            if not chunk:
                return data
            data += chunk
    finally:
        os.close(err_r)


def _child_x(ns_fds: list[int], root_fd: int, cg_fds: list[int], stdio: list[int],
             err_w: int, args: list[bytes], env: dict[str, str], uid: int, gid: int,
             groups: Sequence[int], cwd: str, tty: bool, caps: set[str],
             no_new_privs: bool, seccomp: bytes | None = None) -> None:
    # X itself stays out of the container's cgroups (its memory is not the container's);
    # Y joins them through fds opened on the host side, before it does anything else.
    for fd in ns_fds:
        sc.setns(fd, 0)
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")
    y = os.fork()
    if y == 0:
        code = 126
        try:
            code = _child_y(cg_fds, stdio, err_w, args, env, uid, gid, groups, cwd, tty,
                            caps, no_new_privs, seccomp)
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(err_w, f"{code}:{exc}".encode())
        finally:
            os._exit(code)
    for fd in {*stdio, err_w, root_fd, *ns_fds, *cg_fds}:
        with contextlib.suppress(OSError):
            os.close(fd)
    for s in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.close(s)

    def relay(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(y, signum)

    for s in RELAYED_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(s, relay)
    result = wait_exit_code(y)
    os._exit(result if result is not None else 255)


def _child_y(cg_fds: list[int], stdio: list[int], err_w: int, args: list[bytes],
             env: dict[str, str], uid: int, gid: int, groups: Sequence[int], cwd: str,
             tty: bool, caps: set[str], no_new_privs: bool,
             seccomp: bytes | None = None) -> int:
    """Returns the exit code to use if exec fails (after writing the reason)."""
    for fd in cg_fds:
        os.write(fd, b"0")
    os.setsid()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in stdio]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
    if tty:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:
        os.chdir(cwd or "/")
    except OSError as exc:
        raise ExecFailed(f"chdir to cwd ({cwd!r}) set in config.json failed: "
                         f"{os.strerror(exc.errno or errno.ENOENT).lower()}", 126) from exc
    _reset_signals()
    if seccomp:  # before the caps drop: without no_new_privs it needs CAP_SYS_ADMIN
        install_seccomp(seccomp)
    apply_caps(caps, uid=uid, gid=gid, groups=list(groups), no_new_privs=no_new_privs)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    os.closerange(3, err_w)
    os.closerange(err_w + 1, 1 << 16)
    return _exec(args, env, err_w)


def _reset_signals() -> None:
    for s in range(1, signal.NSIG):
        if s in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _exec(args: list[bytes], env: dict[str, str], err_w: int) -> int:
    envb = {k.encode(): v.encode() for k, v in env.items()}
    prog = args[0]
    if b"/" in prog:
        candidates = [prog]
    else:
        path = env.get("PATH", DEFAULT_PATH)
        candidates = [os.path.join(d.encode() or b".", prog) for d in path.split(":")]
    denied = False
    last: OSError | None = None
    for cand in candidates:
        try:
            os.execve(cand, args, envb)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
                denied = True
                last = exc
            elif len(candidates) == 1:
                last = exc
    name = prog.decode(errors="replace")
    if denied:
        msg, code = f'exec: "{name}": permission denied', 126
    elif b"/" in prog:
        msg, code = f'exec: "{name}": {os.strerror(last.errno if last and last.errno else errno.ENOENT).lower()}', 127
    else:
        msg, code = f'exec: "{name}": executable file not found in $PATH', 127
    os.write(err_w, f"{code}:{msg}".encode())
    return code
