"""Thin ctypes wrappers for the Linux syscalls Python 3.11 lacks (namespaces, mounts, caps).

Every wrapper raises `OSError` with the errno and a message naming the call and its
arguments; callers translate to `engine.api` errors where a user can see them.
x86_64 syscall numbers are used where libc has no wrapper (pivot_root, capset...).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import struct

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long

# clone / unshare / setns flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NS_FLAGS = {"mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
            "net": CLONE_NEWNET, "pid": CLONE_NEWPID, "cgroup": CLONE_NEWCGROUP,
            "user": CLONE_NEWUSER}

# mount flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

MNT_DETACH = 0x2

PROPAGATION = {"private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
               "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
               "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC}

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_CHILD_SUBREAPER = 36

# x86_64 syscall numbers
SYS_PIVOT_ROOT = 155
SYS_CAPGET = 125
SYS_CAPSET = 126
SYS_CLOSE_RANGE = 436

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else s.encode()


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(ret, f"mount {source or fstype} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    ret = _libc.syscall(SYS_PIVOT_ROOT, _b(new_root), _b(put_old))
    _check(ret, f"pivot_root({new_root}, {put_old})")


def sethostname(name: str) -> None:
    socket.sethostname(name)


def setdomainname(name: str) -> None:
    data = name.encode()
    _check(_libc.setdomainname(data, len(data)), f"setdomainname({name})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_process_name(name: str) -> None:
    """The comm name shown by ps (15 bytes at most)."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _libc.prctl(PR_SET_NAME, ctypes.cast(buf, ctypes.c_void_p).value or 0, 0, 0, 0)


def capbset_read(cap: int) -> bool:
    return prctl(PR_CAPBSET_READ, cap) == 1


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def clear_ambient_caps() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread as 64-bit masks."""
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(SYS_CAPGET, header, data), "capget")
    eff = data[0] | (data[3] << 32)
    prm = data[1] | (data[4] << 32)
    inh = data[2] | (data[5] << 32)
    return eff, prm, inh


def capset(effective: int, permitted: int, inheritable: int = 0) -> None:
    """Set the calling thread's capability sets from 64-bit masks."""
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    lo = 0xFFFFFFFF
    data = (ctypes.c_uint32 * 6)(effective & lo, permitted & lo, inheritable & lo,
                                 effective >> 32, permitted >> 32, inheritable >> 32)
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def close_fds_from(lowfd: int = 3) -> None:
    """Close every descriptor >= lowfd (close_range, else a /proc/self/fd walk)."""
    if _libc.syscall(SYS_CLOSE_RANGE, lowfd, 0xFFFFFFFF, 0) == 0:
        return
    os.closerange(lowfd, 65536)


def reset_signals() -> None:
    """Default dispositions and an empty mask: what a freshly exec'd program expects."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGALRM, signal.SIGTTOU, signal.SIGTTIN,
                signal.SIGTSTP):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def pidfd_open(pid: int) -> int:
    return os.pidfd_open(pid)


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """Signal through a pidfd (no pid-reuse race). syscall 424 on x86_64."""
    _check(_libc.syscall(424, pidfd, sig, None, 0), f"pidfd_send_signal({sig})")


def proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[19])


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def makedev(major: int, minor: int) -> int:
    return os.makedev(major, minor)


def pack_winsize(rows: int, cols: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


def open_in_root(root_fd: int, path: str, flags: int = os.O_RDONLY, mode: int = 0) -> int:
    """openat2(RESOLVE_IN_ROOT): `path` and every symlink in it resolve inside root_fd."""
    how = struct.pack("QQQ", flags | os.O_CLOEXEC, mode,
                      RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    buf = ctypes.create_string_buffer(how, len(how))
    ret = _libc.syscall(SYS_OPENAT2, root_fd, _b(path.lstrip("/") or "."), buf,
                        ctypes.c_size_t(len(how)))
    return _check(ret, f"openat2 {path}")


def loopback_up() -> None:
    """Bring `lo` up in the calling process's network namespace (SIOCSIFFLAGS)."""
    import fcntl

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


CLOSE_RANGE_CLOEXEC = 1 << 2


def cloexec_fds_from(lowfd: int = 3) -> None:
    """Mark every descriptor >= lowfd close-on-exec (they vanish at execve)."""
    if _libc.syscall(SYS_CLOSE_RANGE, lowfd, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= lowfd:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
