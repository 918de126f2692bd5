"""The container's init process (G) from fork to execve, and process-level helpers.

Runs in the child the monitor forks: unshare the namespaces, say "ready", build the
rootfs, wait for "go" (the monitor joins cgroups and wires the network meanwhile),
pivot_root, apply limits, user and capabilities, hand stdio over (pipes, or a terminal
of the container's own devpts whose master goes to the monitor over a unix socket),
close every other descriptor, reset signal dispositions, and execve. Any failure is
written as JSON on a CLOEXEC pipe, so EOF without data means the exec happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
from dataclasses import dataclass

from engine.runtime import rootfs
from engine.runtime import syscalls as sc
from engine.runtime.launcher import LaunchPlan

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StartError(Exception):
    """The container could not be started; `code` is the exit code to record."""

    def __init__(self, message: str, code: int = 128, kind: str = "EngineRuntimeError"):
        super().__init__(message)
        self.code = code
        self.kind = kind


def signal_number(name: str | int) -> int:
    if isinstance(name, int):
        return name
    s = str(name).strip().upper()
    if s.isdigit():
        return int(s)
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(signal.Signals[s])
    except KeyError:
        raise ValueError(f"invalid signal: {name}")


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _lookup(cmd: str, env: dict[str, str]) -> str:
    if "/" in cmd:
        if not os.path.exists(cmd):
            raise StartError(f'exec: "{cmd}": stat {cmd}: no such file or directory', 127)
        return cmd
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(d or ".", cmd)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise StartError(f'exec: "{cmd}": executable file not found in $PATH', 127)


@dataclass(frozen=True)
class ChildFds:
    """The container init's ends of the pipes shared with the monitor."""

    out_w: int
    err_w: int
    in_r: int  # -1: stdin is /dev/null
    ready_w: int
    go_r: int
    fail_w: int
    tty_sock: int  # -1: no terminal; else where to send the terminal's master fd


def _open_terminal(sock_fd: int) -> int:
    """In the init after pivot_root: a new pty of the container's own devpts. The master
    goes to the monitor; the slave becomes the controlling terminal. Returns the slave."""
    import fcntl
    import termios

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, 0x40045431, struct.pack("i", 0))  # TIOCSPTLCK: unlock
    slave = fcntl.ioctl(master, 0x5441, os.O_RDWR | os.O_NOCTTY)  # TIOCGPTPEER
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    sock = socket.socket(fileno=sock_fd)
    socket.send_fds(sock, [b"t"], [master])
    sock.detach()
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    return slave


def container_init(plan: LaunchPlan, fds: ChildFds) -> None:
    """G: the container's init, from fork to execve. Never returns."""
    out_w, err_w, ready_w, go_r, fail_w = fds.out_w, fds.err_w, fds.ready_w, fds.go_r, \
        fds.fail_w
    code = 127
    try:
        signal.set_wakeup_fd(-1)
        sc.reset_signals()
        sc.set_pdeathsig(signal.SIGKILL)
        flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS
        if not plan.ipc_host:
            flags |= sc.CLONE_NEWIPC
        if plan.join_netns_pid:
            fd = os.open(f"/proc/{plan.join_netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            sc.setns(fd, sc.CLONE_NEWNET)
            os.close(fd)
        elif plan.own_netns:
            flags |= sc.CLONE_NEWNET
        sc.unshare(flags)
        if flags & sc.CLONE_NEWNET:
            sc.loopback_up()
        os.write(ready_w, b"r")
        os.close(ready_w)
        sc.sethostname(plan.hostname)
        if plan.domainname:
            sc.setdomainname(plan.domainname)
        rootfs.prepare(plan.rootfs)
        from engine.runtime import caps as capmod
        from engine.runtime import seccomp
        from engine.runtime.limits import apply_ulimits

        go = b""
        while chunk := os.read(go_r, 65536):
            go += chunk
        if not go.startswith(b"g"):
            os._exit(1)  # the monitor gave up on us
        os.close(go_r)
        rootfs.mount_cgroups(plan.rootfs, [tuple(g) for g in json.loads(go[1:])])
        rootfs.enter(plan.rootfs)
        terminal = _open_terminal(fds.tty_sock) if fds.tty_sock >= 0 else -1
        proc = plan.process
        env = dict(e.split("=", 1) for e in proc.env)
        if proc.cwd and proc.cwd != "/":
            os.makedirs(proc.cwd, exist_ok=True)
        apply_ulimits(proc.ulimits)
        path = _lookup(proc.args[0], env)
        if proc.seccomp:  # before the caps drop: without no_new_privs it needs CAP_SYS_ADMIN
            seccomp.install(proc.seccomp)
        capmod.apply_caps(proc.caps, uid=proc.uid, gid=proc.gid, groups=proc.groups,
                          no_new_privs=proc.no_new_privs)
        try:
            os.chdir(proc.cwd or "/")
        except OSError as e:
            raise StartError(f"chdir to cwd ({proc.cwd!r}) set in config.json failed: {e}",
                             128)
        if fds.tty_sock >= 0:
            for target in (0, 1, 2):
                os.dup2(terminal, target)
        else:
            os.dup2(fds.in_r if fds.in_r >= 0 else os.open("/dev/null", os.O_RDWR), 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
        sc.set_pdeathsig(signal.SIGKILL)  # set again: a uid change clears it
        sc.reset_signals()
        sc.cloexec_fds_from(3)
        os.execve(path, list(proc.args), env)
    except StartError as e:
        code = e.code
        _fail(fail_w, str(e), code)
    except PermissionError as e:
        code = 126
        _fail(fail_w, f"exec: {e}", code)
    except BaseException as e:
        _fail(fail_w, f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e),
              code)
    os._exit(code)


def _fail(fd: int, message: str, code: int) -> None:
    with contextlib.suppress(BaseException):
        os.write(fd, json.dumps({"error": message, "code": code}).encode())
