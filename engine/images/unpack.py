"""Safe, streaming extraction of one image layer into a directory, in overlay form.

Every path is resolved with `openat2(RESOLVE_IN_ROOT)` from a descriptor of the target
directory, and every final operation is an `*at` call that never follows the last
component: absolute paths, `..`, symlinks and hardlinks cannot reach outside the target
(they are scoped into it, as containerd does, or rejected). Whiteouts become overlayfs
markers (`.wh.X` -> char device 0:0, `.wh..wh..opq` -> `trusted.overlay.opaque=y`).
The diff_id is computed while streaming; special headers over 1 MiB and streams over
a byte budget are refused before they are buffered or written.
"""

from __future__ import annotations

import bz2
import contextlib
import ctypes
import errno
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.api import EngineRuntimeError, InvalidArgument
from engine.images.blobs import CHUNK, HashingReader

MAX_SPECIAL_HEADER = 1 << 20  # Go's archive/tar limit for PAX and GNU long records
DEFAULT_MAX_BYTES = 64 << 30
MAX_ID = 2**32 - 2
# Errors caused by what the archive contains (not by the host): reported as invalid.
_ARCHIVE_ERRNOS = (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR,
                   errno.EEXIST, errno.EXDEV, errno.EINVAL)

SYS_OPENAT2 = 437  # x86_64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0,
            resolve: int = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) -> int:
    """openat2(2): open `path` as if `dirfd` were the root directory."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, resolve)
    raw = os.fsencode(path)
    for _ in range(64):
        fd = _libc.syscall(SYS_OPENAT2, ctypes.c_int(dirfd), ctypes.c_char_p(raw),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.EAGAIN:  # EAGAIN: a concurrent rename; retry as runc does
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def invalid(why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid archive: {why}")


class GuardedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses huge PAX/GNU long records before tarfile buffers them."""

    def _guard(self) -> None:
        if not 0 <= self.size <= MAX_SPECIAL_HEADER:
            raise invalid(f"special header of {self.size} bytes exceeds "
                          f"{MAX_SPECIAL_HEADER} bytes")

    def _proc_gnulong(self, tarfile: Any) -> Any:
        self._guard()
        return super()._proc_gnulong(tarfile)  # type: ignore[misc]

    def _proc_pax(self, tarfile: Any) -> Any:
        self._guard()
        return super()._proc_pax(tarfile)  # type: ignore[misc]


def clean_path(path: str) -> list[str]:
    """Components of `path` relative to the root; `..` above the root is dropped."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return parts


def clean_name(name: str) -> list[str]:
    """Path components of a member name, scoped under the root as `Join("/", name)`."""
    if "\x00" in name:
        raise invalid(f"NUL byte in name {name!r}")
    return clean_path(name)


def decompressed(stream: IO[bytes]) -> IO[bytes]:
    """The stream, decompressed if it starts with a gzip, bzip2 or xz magic."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(
        _RawAdapter(stream), CHUNK)
    head = buffered.peek(6)[:6]
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(buffered)  # type: ignore[return-value]
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(buffered)  # type: ignore[return-value]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise InvalidArgument("zstd-compressed layers are not supported")
    return buffered


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader wrap any object with a `read` method."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._stream.read(len(buf))
        buf[:len(data)] = data
        return len(data)


@dataclass(frozen=True)
class Unpacked:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of file content in the layer
    tar_bytes: int  # length of the uncompressed tar stream


def opaque_xattr() -> str:
    return "trusted.overlay.opaque" if os.geteuid() == 0 else "user.overlay.opaque"


def _xattr_allowed(name: str) -> bool:
    return not (name.startswith("trusted.") or name == "security.selinux")


class _Extractor:
    """Applies tar members one by one beneath one root directory descriptor."""

    def __init__(self, root_fd: int, max_bytes: int) -> None:
        self.root_fd = root_fd
        self.max_bytes = max_bytes
        self.declared = 0
        self.content = 0
        self.dirs: list[tuple[list[str], tarfile.TarInfo]] = []
        self.is_root = os.geteuid() == 0
        fs = os.fstatvfs(root_fd)
        self.free = fs.f_bavail * fs.f_frsize

    # ------------------------------------------------------------- resolution

    def _open_dir(self, comps: list[str], create: bool) -> int:
        """An O_PATH descriptor of the directory `comps`, resolved inside the root."""
        if not comps:
            return os.dup(self.root_fd)
        try:
            return openat2(self.root_fd, "/".join(comps), os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create:
                raise invalid(f"no such directory {'/'.join(comps)!r}") from None
        except NotADirectoryError:
            raise invalid(f"{'/'.join(comps)!r} is not a directory") from None
        parent = self._open_dir(comps[:-1], create=True)
        try:
            try:
                os.mkdir(comps[-1], 0o755, dir_fd=parent)
            except FileExistsError:
                raise invalid(f"{'/'.join(comps)!r} is a dangling link or not a "
                              "directory") from None
        finally:
            os.close(parent)
        return openat2(self.root_fd, "/".join(comps), os.O_PATH | os.O_DIRECTORY)

    @staticmethod
    def _remove(pfd: int, base: str) -> None:
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    # ------------------------------------------------------------- members

    def apply(self, tar: tarfile.TarFile, ti: tarfile.TarInfo) -> None:
        comps = clean_name(ti.name)
        if not comps:
            if ti.isdir():
                self.dirs.append(([], ti))
            return  # "", ".", ".." or "/" as a non-directory: nothing to write
        base = comps[-1]
        if base.startswith(".wh."):
            self._whiteout(comps)
            return
        self._check_ids(ti)
        pfd = self._open_dir(comps[:-1], create=True)
        try:
            if ti.isdir():
                self._mkdir(pfd, base)
                self.dirs.append((comps, ti))
            elif ti.isreg():
                self._regular(tar, ti, pfd, base)
            elif ti.issym():
                self._symlink(ti, pfd, base)
            elif ti.islnk():
                self._hardlink(ti, pfd, base)
            elif ti.ischr() or ti.isblk():
                self._device(ti, pfd, base)
            elif ti.isfifo():
                self._remove(pfd, base)
                os.mkfifo(base, 0o600, dir_fd=pfd)
                self._meta_path(pfd, base, ti)
            else:
                raise invalid(f"unsupported entry type {ti.type!r} for {ti.name!r}")
        finally:
            os.close(pfd)

    @staticmethod
    def _check_ids(ti: tarfile.TarInfo) -> None:
        for what, value in (("uid", ti.uid), ("gid", ti.gid)):
            if not 0 <= value <= MAX_ID:
                raise invalid(f"{what} {value} out of range for {ti.name!r}")
        if ti.size < 0:
            raise invalid(f"negative size for {ti.name!r}")

    def _mkdir(self, pfd: int, base: str) -> None:
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
            return
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(base, dir_fd=pfd)
            os.mkdir(base, 0o700, dir_fd=pfd)

    def _regular(self, tar: tarfile.TarFile, ti: tarfile.TarInfo, pfd: int, base: str) -> None:
        self.declared += ti.size
        if self.declared > self.max_bytes:
            raise invalid(f"layer content exceeds the limit of {self.max_bytes} bytes")
        if self.declared > self.free:
            raise EngineRuntimeError(f"not enough disk space to unpack the layer "
                                     f"({self.declared} bytes declared, {self.free} free)")
        self._remove(pfd, base)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            src = tar.extractfile(ti)
            if src is not None:
                while chunk := src.read(CHUNK):
                    os.write(fd, chunk)
                    self.content += len(chunk)
            self._meta_fd(fd, ti)
        finally:
            os.close(fd)
        self._utime(pfd, base, ti)

    def _symlink(self, ti: tarfile.TarInfo, pfd: int, base: str) -> None:
        if not ti.linkname or "\x00" in ti.linkname:
            raise invalid(f"bad symlink target for {ti.name!r}")
        self._remove(pfd, base)
        os.symlink(ti.linkname, base, dir_fd=pfd)
        self._chown(pfd, base, ti)
        self._utime(pfd, base, ti)

    def _hardlink(self, ti: tarfile.TarInfo, pfd: int, base: str) -> None:
        target = clean_name(ti.linkname)
        if not target:
            raise invalid(f"hardlink {ti.name!r} points at the root")
        spfd = self._open_dir(target[:-1], create=False)
        try:
            try:
                src = os.lstat(target[-1], dir_fd=spfd)
            except FileNotFoundError:
                raise invalid(f"hardlink target {ti.linkname!r} not found") from None
            if stat.S_ISDIR(src.st_mode):
                raise invalid(f"hardlink {ti.name!r} points at a directory")
            with contextlib.suppress(FileNotFoundError):
                dst = os.lstat(base, dir_fd=pfd)
                if (dst.st_dev, dst.st_ino) == (src.st_dev, src.st_ino):
                    return
            self._remove(pfd, base)
            os.link(target[-1], base, src_dir_fd=spfd, dst_dir_fd=pfd,
                    follow_symlinks=False)
        finally:
            os.close(spfd)

    def _device(self, ti: tarfile.TarInfo, pfd: int, base: str) -> None:
        for value in (ti.devmajor, ti.devminor):
            if not 0 <= value < 2**32:
                raise invalid(f"device number {value} out of range for {ti.name!r}")
        kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK
        self._remove(pfd, base)
        try:
            os.mknod(base, kind | 0o600, os.makedev(ti.devmajor, ti.devminor), dir_fd=pfd)
        except PermissionError:
            return  # rootless: device nodes are skipped, as Docker does
        self._meta_path(pfd, base, ti)

    def _whiteout(self, comps: list[str]) -> None:
        base = comps[-1]
        pfd = self._open_dir(comps[:-1], create=True)
        try:
            if base == ".wh..wh..opq":
                dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
                try:
                    os.setxattr(dfd, opaque_xattr(), b"y")
                finally:
                    os.close(dfd)
                return
            if base.startswith(".wh..wh."):
                return  # aufs metadata (.wh..wh.plnk and friends): not content
            target = base[len(".wh."):]
            if target in ("", ".", ".."):
                raise invalid(f"invalid whiteout {'/'.join(comps)!r}")
            self._remove(pfd, target)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
        finally:
            os.close(pfd)

    # ------------------------------------------------------------- metadata

    def _chown(self, pfd: int, base: str, ti: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(base, ti.uid, ti.gid, dir_fd=pfd, follow_symlinks=False)

    @staticmethod
    def _utime(pfd: int, base: str, ti: tarfile.TarInfo) -> None:
        try:
            ns = int(ti.mtime * 1_000_000_000)
            os.utime(base, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
        except (OverflowError, ValueError, OSError):
            pass  # an absurd mtime is not worth failing the layer for

    def _xattrs(self, fd: int, ti: tarfile.TarInfo) -> None:
        for key, value in ti.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr."):]
                if _xattr_allowed(name):
                    with contextlib.suppress(OSError):
                        os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))

    def _meta_fd(self, fd: int, ti: tarfile.TarInfo) -> None:
        """Owner, mode (after chown, which clears setuid) and xattrs through an open fd."""
        if self.is_root:
            os.fchown(fd, ti.uid, ti.gid)
        os.fchmod(fd, ti.mode & 0o7777)
        self._xattrs(fd, ti)

    def _meta_path(self, pfd: int, base: str, ti: tarfile.TarInfo) -> None:
        """Metadata of a FIFO or device without opening it (an O_PATH fd via /proc)."""
        self._chown(pfd, base, ti)
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.chmod(f"/proc/self/fd/{fd}", ti.mode & 0o7777)
        finally:
            os.close(fd)
        self._utime(pfd, base, ti)

    def finish(self) -> None:
        """Directory owners, modes, xattrs and mtimes, deepest first."""
        for comps, ti in reversed(self.dirs):
            try:
                if comps:
                    fd = openat2(self.root_fd, "/".join(comps),
                                 os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                else:
                    fd = os.dup(self.root_fd)
            except OSError:
                continue  # replaced by a later member
            try:
                self._meta_fd(fd, ti)
                ns = int(ti.mtime * 1_000_000_000)
                with contextlib.suppress(OverflowError, ValueError, OSError):
                    os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)


def unpack_stream(stream: IO[bytes], dest: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Unpacked:
    """Extract a (possibly compressed) layer tar into the existing directory `dest`.

    `max_bytes` caps the uncompressed stream and the declared file sizes.
    """
    hashing = HashingReader(decompressed(stream), limit=max_bytes)
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        extractor = _Extractor(root_fd, max_bytes)
        try:
            with tarfile.open(fileobj=hashing, mode="r|",  # type: ignore[call-overload]
                              tarinfo=GuardedTarInfo) as tar:
                for ti in tar:
                    extractor.apply(tar, ti)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib_error(),
                lzma.LZMAError) as exc:
            raise invalid(str(exc) or type(exc).__name__) from None
        extractor.finish()
        try:
            hashing.drain()
        except (EOFError, gzip.BadGzipFile, zlib_error(), lzma.LZMAError) as exc:
            raise invalid(str(exc) or type(exc).__name__) from None
    except OSError as exc:
        if exc.errno in _ARCHIVE_ERRNOS:
            raise invalid(f"{exc.strerror}: {exc.filename!r}") from None
        raise
    finally:
        os.close(root_fd)
    return Unpacked(hashing.digest, extractor.content, hashing.count)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def unpack_to_new_dir(stream: IO[bytes], parent: Path,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Unpacked, Path]:
    """Extract into a fresh temporary directory under `parent`; removed on any error."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=".unpack-"))
    try:
        os.chmod(tmp, 0o755)
        return unpack_stream(stream, tmp, max_bytes), tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
