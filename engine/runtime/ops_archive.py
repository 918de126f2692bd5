"""Tar streams in and out of a directory tree addressed by a root fd, never leaving that root.

Every path a caller or an archive names is resolved with openat2(RESOLVE_IN_ROOT), so an
absolute or `..`-laden symlink inside the tree resolves inside it, as it would for the
container's own processes. Walking and writing then only ever touch single names relative
to an already resolved directory fd, with O_NOFOLLOW. No user or group names are looked up
(NSS would load the image's libraries); archives carry numeric ids only. PAX and GNU long
name records over 1 MiB are refused before tarfile buffers them (Go's limit).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator
from typing import IO, Any

from engine.api import InvalidArgument, NotFound
from engine.runtime import ops_syscalls as sc

MAX_SPECIAL_RECORD = 1 << 20
_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_COPY_CHUNK = 1 << 20


class _BoundedTarInfo(tarfile.TarInfo):
    """TarInfo that refuses oversized PAX / GNU long-name records before reading them."""

    def _proc_gnulong(self, tf: Any) -> Any:
        if self.size > MAX_SPECIAL_RECORD:
            raise InvalidArgument(f"tar long-name record of {self.size} bytes is too large")
        return super()._proc_gnulong(tf)  # type: ignore[misc]

    def _proc_pax(self, tf: Any) -> Any:
        if self.size > MAX_SPECIAL_RECORD:
            raise InvalidArgument(f"tar PAX header of {self.size} bytes is too large")
        return super()._proc_pax(tf)  # type: ignore[misc]


def clean_path(path: str) -> list[str]:
    """Components of a path, without empty parts and `.`; `..` is refused."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"invalid path {path!r}: '..' is not allowed")
    return parts


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH,
                 follow: bool = True) -> int:
    """An fd for `path` resolved inside root_fd (symlinks stay inside the root)."""
    rel = "/".join(p for p in path.split("/") if p) or "."
    return sc.openat2(root_fd, rel, flags | (0 if follow else os.O_NOFOLLOW), resolve=_RESOLVE)


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_in_root(root_fd: int, path: str, follow: bool = False) -> os.stat_result | None:
    """lstat (or stat with `follow`) of `path` inside the root; None if it does not exist."""
    try:
        fd = open_in_root(root_fd, path, os.O_PATH, follow=follow)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    with _fd(fd):
        return os.stat(fd)


# --------------------------------------------------------------------------- create


class TarWriter:
    """Adds trees from a root fd to a streaming tar (numeric owners, hardlinks kept)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._links: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        self.tar.close()

    def add(self, root_fd: int, path: str, arcname: str, follow: bool = False) -> None:
        """Add `path` (resolved inside the root; a final symlink kept unless `follow`)."""
        parts = _lexical(path.split("/"))  # as Docker's Clean: a final `..` never climbs
        parent = "/".join(parts[:-1])
        try:
            pfd = open_in_root(root_fd, parent, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"could not find the file {path} in container") from exc
        with _fd(pfd):
            if not parts:  # the root itself
                if arcname:
                    self._add_root(pfd, arcname)
                else:
                    self.add_contents(pfd, "")
                return
            name = parts[-1]
            if follow:
                try:
                    self._add_followed(root_fd, path, arcname)
                except FileNotFoundError as exc:
                    raise NotFound(f"could not find the file {path} in container") from exc
                return
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise NotFound(f"could not find the file {path} in container") from exc
            self._add_entry(pfd, name, st, arcname)

    def _add_followed(self, root_fd: int, path: str, arcname: str) -> None:
        """Add the target of `path` (cp -L): resolve fully inside the root, then add it."""
        fd = open_in_root(root_fd, path, os.O_PATH)
        with _fd(fd):
            st = os.stat(fd)
            if stat.S_ISDIR(st.st_mode):
                dfd = open_in_root(root_fd, path, os.O_RDONLY | os.O_DIRECTORY)
                with _fd(dfd):
                    self._add_root(dfd, arcname)
                return
            if not stat.S_ISREG(st.st_mode):
                raise InvalidArgument(f"{path}: not a regular file or directory")
            rfd = open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK)
            with _fd(rfd):
                self._add_regular_fd(rfd, st, arcname)

    def _add_root(self, dfd: int, arcname: str) -> None:
        st = os.stat(dfd)
        self.tar.addfile(self._info(arcname, st, tarfile.DIRTYPE))
        self.add_contents(dfd, arcname)

    def _info(self, arcname: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(arcname)
        ti.type = kind
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        return ti

    def _add_regular_fd(self, fd: int, st: os.stat_result, arcname: str) -> None:
        ti = self._info(arcname, st, tarfile.REGTYPE)
        ti.size = st.st_size
        with os.fdopen(os.dup(fd), "rb") as f:
            self.tar.addfile(ti, _Exactly(f, st.st_size))

    def _add_entry(self, pfd: int, name: str, st: os.stat_result, arcname: str) -> None:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            self.tar.addfile(self._info(arcname, st, tarfile.DIRTYPE))
            try:
                dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=pfd)
            except OSError:
                return  # vanished or unreadable: keep the directory entry itself
            with _fd(dfd):
                self.add_contents(dfd, arcname)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                ti = self._info(arcname, st, tarfile.LNKTYPE)
                ti.linkname = self._links[key]
                self.tar.addfile(ti)
                return
            if st.st_nlink > 1:
                self._links[key] = arcname
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                             dir_fd=pfd)
            except OSError:
                return
            with _fd(fd):
                self._add_regular_fd(fd, os.fstat(fd), arcname)
        elif stat.S_ISLNK(mode):
            ti = self._info(arcname, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(name, dir_fd=pfd)
            self.tar.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti = self._info(arcname, st, tarfile.CHRTYPE if stat.S_ISCHR(mode)
                            else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(ti)
        elif stat.S_ISFIFO(mode):
            self.tar.addfile(self._info(arcname, st, tarfile.FIFOTYPE))
        # sockets are skipped, as Docker does

    def add_contents(self, dfd: int, arcname: str) -> None:
        for name in sorted(os.listdir(dfd)):
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            self._add_entry(dfd, name, st, f"{arcname}/{name}" if arcname else name)


class _Exactly:
    """A reader that yields exactly `size` bytes (zero-padded if the file shrank)."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            data += b"\0" * (n - len(data))
        self.left -= len(data)
        return data


# --------------------------------------------------------------------------- extract


def _lexical(parts: list[str]) -> list[str]:
    """Normalise `.` and `..` lexically, never above the root."""
    out: list[str] = []
    for p in parts:
        if p in ("", "."):
            continue
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return out


def _ensure_dir(root_fd: int, parts: list[str], depth: int = 0) -> int:
    """An O_PATH fd of the directory `parts` inside the root, creating missing ones.

    A dangling symlink on the way is followed inside the root (its target is created),
    as the container's own `mkdir -p` through that link would.
    """
    fd = os.dup(root_fd)
    done: list[str] = []
    try:
        for i, name in enumerate(parts):
            done.append(name)
            try:
                nfd = open_in_root(root_fd, "/".join(done), os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISLNK(st.st_mode):
                    if depth >= 40:
                        raise InvalidArgument(f"{'/'.join(done)}: too many levels of "
                                              "symbolic links") from None
                    target = os.readlink(name, dir_fd=fd)
                    base = [] if target.startswith("/") else done[:-1]
                    rest = _lexical(base + target.split("/")) + parts[i + 1:]
                    os.close(fd)
                    fd = -1
                    return _ensure_dir(root_fd, rest, depth + 1)
                os.mkdir(name, 0o755, dir_fd=fd)
                nfd = open_in_root(root_fd, "/".join(done), os.O_PATH | os.O_DIRECTORY)
            except NotADirectoryError as exc:
                raise InvalidArgument(f"{'/'.join(done)}: not a directory") from exc
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


def _rename(parts: list[str], rename: tuple[str, str] | None) -> list[str]:
    if rename and parts and parts[0] == rename[0]:
        return clean_path(rename[1]) + parts[1:]
    return parts


def extract(stream: IO[bytes], root_fd: int, dest: str = "/",
            rename: tuple[str, str] | None = None,
            owner: tuple[int, int] | None = None) -> int:
    """Unpack a tar stream under `dest` inside the root; returns the number of entries.

    `rename` maps the archive's top-level name to another (cp to a new name); `owner`
    forces every entry's uid/gid (None keeps the archive's numeric ids).
    """
    base = clean_path(dest)
    dir_times: list[tuple[list[str], int]] = []
    count = 0
    try:
        tar = tarfile.open(fileobj=stream, mode="r|*", tarinfo=_BoundedTarInfo)  # noqa: SIM115
    except tarfile.ReadError as exc:
        raise InvalidArgument(f"invalid tar stream: {exc}") from exc
    try:
        for member in tar:
            parts = _rename(clean_path(member.name), rename)
            if not parts:
                continue
            full = base + parts
            pfd = _ensure_dir(root_fd, full[:-1])
            with _fd(pfd):
                _extract_one(tar, member, root_fd, pfd, full, base, rename, owner)
            if member.isdir():
                dir_times.append((full, int(member.mtime)))
            count += 1
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid tar stream: {exc}") from exc
    finally:
        tar.close()
    for full, mtime in reversed(dir_times):
        with contextlib.suppress(OSError):
            fd = open_in_root(root_fd, "/".join(full), os.O_RDONLY | os.O_DIRECTORY,
                              follow=False)
            with _fd(fd):
                os.utime(fd, (mtime, mtime))
    return count


def _extract_one(tar: tarfile.TarFile, m: tarfile.TarInfo, root_fd: int, pfd: int,
                 full: list[str], base: list[str], rename: tuple[str, str] | None,
                 owner: tuple[int, int] | None) -> None:
    name = full[-1]
    uid, gid = owner if owner is not None else (m.uid, m.gid)
    try:
        existing = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if stat.S_ISDIR(existing.st_mode):
            if not m.isdir():
                raise InvalidArgument(
                    f"cannot overwrite directory {'/' + '/'.join(full)!r} with non-directory")
        else:
            os.unlink(name, dir_fd=pfd)
            existing = None
    mode = m.mode & 0o7777
    if m.isdir():
        if existing is None:
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=pfd)
        with _fd(fd):
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
    elif m.isreg():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=pfd)
        with _fd(fd):
            src = tar.extractfile(m)
            if src is not None:
                while chunk := src.read(_COPY_CHUNK):
                    os.write(fd, chunk)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.utime(fd, (m.mtime, m.mtime))
    elif m.issym():
        os.symlink(m.linkname, name, dir_fd=pfd)
        os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        with contextlib.suppress(OSError):
            os.utime(name, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
    elif m.islnk():
        target = base + _rename(clean_path(m.linkname), rename)
        if not target:
            raise InvalidArgument(f"invalid hard link target {m.linkname!r}")
        tpfd = open_in_root(root_fd, "/".join(target[:-1]), os.O_PATH | os.O_DIRECTORY)
        with _fd(tpfd):
            try:
                os.link(target[-1], name, src_dir_fd=tpfd, dst_dir_fd=pfd,
                        follow_symlinks=False)
            except FileNotFoundError as exc:
                raise InvalidArgument(f"hard link target {m.linkname!r} not found") from exc
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        dev = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
        os.mknod(name, kind | 0o600, dev, dir_fd=pfd)
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        with _fd(fd):
            os.chown(f"/proc/self/fd/{fd}", uid, gid)
            os.chmod(f"/proc/self/fd/{fd}", mode)
    else:
        return  # unknown types (sockets, pax globals) are skipped

