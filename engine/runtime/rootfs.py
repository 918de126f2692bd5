"""The container's filesystem, built inside its own (just unshared) mount namespace.

`prepare(plan)` runs in the container init before "go": rprivate /, overlay of the
image layers with the bundle's upper/work, /proc, a tmpfs /dev with only the standard
nodes, a new devpts instance, /dev/shm (shm_size), /dev/mqueue, read-only /sys, the
spec's binds and tmpfs mounts, /etc/hosts, /etc/resolv.conf, /etc/hostname,
/dev/init (tini) for `init: true`, sysctls, Docker's masked and read-only /proc paths
(missing ones skipped), device nodes (`devices:`; all of the host's when privileged),
and a read-only rootfs when asked. After "go", `mount_cgroups` shows the container's
own cgroup dirs read-only at /sys/fs/cgroup, and `enter(plan)` pivot_roots into it. Mount targets inside the rootfs are resolved with
openat2(RESOLVE_IN_ROOT), so an image's symlinks cannot point a mount at the host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from engine.runtime import syscalls as sc

MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/proc/interrupts",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
             ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))
TINI = "/usr/bin/tini-static"
DEFAULT_SHM = 64 * 1024 * 1024


@dataclass(frozen=True)
class MountPlan:
    """One resolved mount: `bind` (source = host path) or `tmpfs`."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    propagation: str = ""
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None


@dataclass(frozen=True)
class RootfsPlan:
    merged: str
    lowerdirs: tuple[str, ...]  # bottom -> top
    upper: str
    work: str
    mounts: tuple[MountPlan, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (host file, target) e.g. hosts -> /etc/hosts
    read_only: bool = False
    privileged: bool = False
    shm_size: int | None = None
    init: bool = False
    sysctls: tuple[tuple[str, str], ...] = ()
    mount_sys: bool = True
    extra_masked: tuple[str, ...] = field(default_factory=tuple)
    devices: tuple[tuple[str, str], ...] = ()  # (host device path, path in the container)


def prepare(plan: RootfsPlan) -> None:
    m = plan.merged
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    lowers = ":".join(reversed(plan.lowerdirs))  # overlay wants the top layer first
    sc.mount("overlay", m, "overlay", 0,
             f"lowerdir={lowers},upperdir={plan.upper},workdir={plan.work}")
    root_fd = os.open(m, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _mount_at(root_fd, "/proc", "proc", "proc", sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV)
        _setup_dev(root_fd, plan)
        if plan.mount_sys:
            sys_flags = sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV
            if not plan.privileged:
                sys_flags |= sc.MS_RDONLY
            _mount_at(root_fd, "/sys", "sysfs", "sysfs", sys_flags)
        for mp in plan.mounts:
            _apply_mount(root_fd, mp)
        for host_file, target in plan.files:
            _bind(root_fd, host_file, target, is_dir=False, read_only=False)
        if plan.init:
            _bind(root_fd, TINI, "/dev/init", is_dir=False, read_only=True)
        write_sysctls(root_fd, plan.sysctls)
        if not plan.privileged:
            _mask_paths(root_fd, MASKED_PATHS + plan.extra_masked)
            for path in READONLY_PATHS:
                _readonly_path(root_fd, path)
        if plan.read_only:
            sc.mount(None, m, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)
    finally:
        os.close(root_fd)


def enter(plan: RootfsPlan) -> None:
    """pivot_root into the prepared rootfs and drop the old root (the runc trick)."""
    os.chdir(plan.merged)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def mount_cgroups(plan: RootfsPlan, groups: list[tuple[str, str]]) -> None:
    """/sys/fs/cgroup as Docker shows it on v1/hybrid hosts: a tmpfs with one bind per
    hierarchy of the container's own groups; read-only unless privileged."""
    if not plan.mount_sys or not groups:
        return
    where = os.path.join(plan.merged, "sys/fs/cgroup")
    if not os.path.isdir(where):
        return
    sc.mount("tmpfs", where, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755")
    ro = 0 if plan.privileged else sc.MS_RDONLY
    for name, path in groups:
        target = os.path.join(where, name)
        os.makedirs(target, exist_ok=True)
        sc.mount(path, target, None, sc.MS_BIND)
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_NOSUID | sc.MS_NODEV
                 | sc.MS_NOEXEC | ro)
    sc.mount(None, where, None, sc.MS_REMOUNT | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
             | ro, "mode=755")


def write_sysctls(root_fd: int, sysctls: tuple[tuple[str, str], ...]) -> None:
    if not sysctls:
        return
    proc_sys = _real_fd(sc.open_in_root(root_fd, "/proc/sys", os.O_PATH | os.O_DIRECTORY))
    try:
        for key, value in sysctls:
            with open(f"/proc/self/fd/{proc_sys}/{key.replace('.', '/')}", "w") as f:
                f.write(value)
    finally:
        os.close(proc_sys)


# --------------------------------------------------------------------------- helpers


def _open_target(root_fd: int, target: str, is_dir: bool, create: bool = True) -> int:
    """An O_PATH fd of `target` inside the rootfs, creating it (and parents) if missing."""
    parts = [p for p in target.split("/") if p]
    cur = "/"
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt = os.path.join(cur, part)
        try:
            fd = sc.open_in_root(root_fd, nxt, os.O_PATH)
            os.close(fd)
        except FileNotFoundError:
            if not create:
                raise
            parent = sc.open_in_root(root_fd, cur, os.O_PATH | os.O_DIRECTORY)
            try:
                if last and not is_dir:
                    fd = os.open(part, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644,
                                 dir_fd=_real_fd(parent))
                    os.close(fd)
                else:
                    os.mkdir(part, 0o755, dir_fd=_real_fd(parent))
            except FileExistsError:
                pass
        cur = nxt
    return sc.open_in_root(root_fd, cur, os.O_PATH)


def _real_fd(path_fd: int) -> int:
    """O_PATH fds cannot be dir_fd for mkdir/open; reopen through /proc/self/fd."""
    fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    os.close(path_fd)
    return fd


def _mount_at(root_fd: int, target: str, source: str | None, fstype: str | None,
              flags: int, data: str | None = None, is_dir: bool = True) -> None:
    fd = _open_target(root_fd, target, is_dir)
    try:
        sc.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
    finally:
        os.close(fd)


def _bind(root_fd: int, source: str, target: str, is_dir: bool, read_only: bool,
          propagation: str = "") -> None:
    fd = _open_target(root_fd, target, is_dir)
    try:
        where = f"/proc/self/fd/{fd}"
        sc.mount(source, where, None, sc.MS_BIND | sc.MS_REC)
    finally:
        os.close(fd)
    # the fd still names the covered inode: reopen the target to reach the new mount
    fd = _open_target(root_fd, target, is_dir, create=False)
    try:
        where = f"/proc/self/fd/{fd}"
        if read_only:
            sc.mount(None, where, None,
                     sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
        sc.mount(None, where, None, sc.PROPAGATION.get(propagation or "rprivate",
                                                      sc.MS_PRIVATE | sc.MS_REC))
    finally:
        os.close(fd)


def _apply_mount(root_fd: int, mp: MountPlan) -> None:
    if mp.type == "tmpfs":
        opts = [f"mode={mp.tmpfs_mode:o}" if mp.tmpfs_mode is not None else "mode=1777"]
        if mp.tmpfs_size:
            opts.append(f"size={mp.tmpfs_size}")
        flags = sc.MS_NOSUID | sc.MS_NODEV | (sc.MS_RDONLY if mp.read_only else 0)
        _mount_at(root_fd, mp.target, "tmpfs", "tmpfs", flags, ",".join(opts))
        return
    is_dir = os.path.isdir(mp.source)
    _bind(root_fd, mp.source, mp.target, is_dir, mp.read_only, mp.propagation)


def _setup_dev(root_fd: int, plan: RootfsPlan) -> None:
    _mount_at(root_fd, "/dev", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME,
              "mode=755,size=65536k")
    # reached through an fd resolved in the rootfs: merged/dev may be an image symlink
    # to a host path; below it is our own fresh tmpfs, so plain names are safe
    dev_fd = _real_fd(sc.open_in_root(root_fd, "/dev", os.O_PATH | os.O_DIRECTORY))
    try:
        _fill_dev(f"/proc/self/fd/{dev_fd}", plan)
    finally:
        os.close(dev_fd)


def _fill_dev(dev: str, plan: RootfsPlan) -> None:
    old = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(os.path.join(dev, name), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for name, target in DEV_LINKS:
            os.symlink(target, os.path.join(dev, name))
        for d, mode in (("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o1777)):
            os.mkdir(os.path.join(dev, d), mode)
    finally:
        os.umask(old)
    sc.mount("devpts", os.path.join(dev, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    shm = plan.shm_size or DEFAULT_SHM
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs",
             sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV, f"mode=1777,size={shm}")
    sc.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue",
             sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV)
    wanted = list(plan.devices)
    if plan.privileged:  # as Docker: every device node of the host
        wanted += [(h, h) for h in _host_devices("/dev")]
    for host, inside in wanted:
        _copy_device(dev, host, inside)


def _host_devices(top: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue", "hugepages")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                mode = os.lstat(path).st_mode
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                    out.append(path)
    return out


def _copy_device(dev: str, host: str, inside: str) -> None:
    """Make the node `host` (a host device) at `inside` (under /dev) in the container."""
    st = os.stat(host)
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise OSError(errno.EINVAL, f"{host} is not a device")
    rel = os.path.normpath(inside).lstrip("/")
    if not rel.startswith("dev/") or ".." in rel.split("/"):
        raise OSError(errno.EINVAL, f"device path {inside} must be under /dev")
    target = os.path.join(dev, rel[4:])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mknod(target, st.st_mode, st.st_rdev)
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))


def _mask_paths(root_fd: int, paths: tuple[str, ...]) -> None:
    null_fd = sc.open_in_root(root_fd, "/dev/null", os.O_PATH)
    try:
        _mask_with(root_fd, null_fd, paths)
    finally:
        os.close(null_fd)


def _mask_with(root_fd: int, null_fd: int, paths: tuple[str, ...]) -> None:
    st = os.fstat(null_fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        raise OSError(errno.EPERM, "/dev/null in the container is not char 1:3")
    devnull = f"/proc/self/fd/{null_fd}"
    for path in paths:
        fd = _open_if_present(root_fd, path)
        if fd is None:
            continue
        try:
            where = f"/proc/self/fd/{fd}"
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                sc.mount("tmpfs", where, "tmpfs", sc.MS_RDONLY, "size=0")
            else:
                sc.mount(devnull, where, None, sc.MS_BIND)
        finally:
            os.close(fd)


def _open_if_present(root_fd: int, path: str) -> int | None:
    """An O_PATH fd of `path` resolved inside the rootfs; None where it does not exist."""
    try:
        return sc.open_in_root(root_fd, path, os.O_PATH)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _readonly_path(root_fd: int, path: str) -> None:
    fd = _open_if_present(root_fd, path)
    if fd is None:
        return
    try:
        where = f"/proc/self/fd/{fd}"
        sc.mount(where, where, None, sc.MS_BIND | sc.MS_REC)
    finally:
        os.close(fd)
    fd = sc.open_in_root(root_fd, path, os.O_PATH)
    try:
        where = f"/proc/self/fd/{fd}"
        sc.mount(None, where, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC
                 | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    finally:
        os.close(fd)


def empty_lower(bundle: Path) -> str:
    """Overlay needs at least one lower dir; an image without layers gets an empty one."""
    p = bundle / "empty-lower"
    p.mkdir(exist_ok=True)
    return str(p)
