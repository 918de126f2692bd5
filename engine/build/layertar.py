"""Layer tarballs the builder writes: a RUN step's overlay upper directory as a diff
(whiteouts `.wh.X`, opaque directories `.wh..wh..opq`, mount-point stubs left out), and
the entries COPY/ADD add (written by copyops.py through `LayerWriter`)."""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from engine.build.fstree import LayeredTree, is_opaque, is_whiteout

# Files and directories the runtime creates as mount points when the image lacks them.
MOUNT_STUBS = ("etc/hosts", "etc/resolv.conf", "etc/hostname")
MOUNT_DIRS = ("dev", "proc", "sys", "etc")


class LayerWriter:
    """An uncompressed layer tar in a temporary file; each path is written once."""

    def __init__(self, tmpdir: str | os.PathLike[str] | None = None) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115
        self.tar = tarfile.open(  # noqa: SIM115
            fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)
        self.names: set[str] = set()
        self.count = 0

    def add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        info.name = info.name.strip("/")
        if not info.name or info.name in self.names:
            return
        info.uname = info.gname = ""
        self.names.add(info.name)
        self.tar.addfile(info, data)
        self.count += 1

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0,
            mtime: float = 0) -> None:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, int(mtime)
        self.add(ti)

    def finish(self) -> IO[bytes]:
        """Close the tar and return the file positioned at its start."""
        self.tar.close()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()


def diff_upper(upper: Path, lower: LayeredTree, writer: LayerWriter,
               mount_targets: tuple[str, ...] = ()) -> None:
    """Write the changes an overlay upper directory holds over `lower` into `writer`;
    empty mount points the step's mounts created (and their new parents) are left out."""
    stubs = set(MOUNT_STUBS) | set(MOUNT_DIRS)
    for target in mount_targets:
        parts = [p for p in target.split("/") if p]
        stubs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    for rel in _changed(upper, lower, [], stubs):
        path = upper.joinpath(*rel)
        name = "/".join(rel)
        st = os.lstat(path)
        if is_whiteout(st):
            parent = "/".join(rel[:-1])
            ti = tarfile.TarInfo((parent + "/" if parent else "") + ".wh." + rel[-1])
            writer.add(ti)
            continue
        ti = writer.tar.gettarinfo(str(path), arcname=name)
        if not ti.issym():
            ti.pax_headers = {**ti.pax_headers, **_xattrs(path)}
        if ti.isreg():
            with open(path, "rb") as f:
                writer.add(ti, f)
        else:
            writer.add(ti)
        if stat.S_ISDIR(st.st_mode) and is_opaque(path):
            writer.add(tarfile.TarInfo(name + "/.wh..wh..opq"))


def _changed(upper: Path, lower: LayeredTree, base: list[str],
             stubs: set[str]) -> list[list[str]]:
    """Paths under `base` to write, parents before children."""
    out: list[list[str]] = []
    d = upper.joinpath(*base)
    for name in sorted(os.listdir(d)):
        rel = base + [name]
        st = os.lstat(d / name)
        low = lower.lstat(rel)
        if "/".join(rel) in stubs and low is None and stat.S_ISREG(st.st_mode) \
                and st.st_size == 0:
            continue
        if stat.S_ISDIR(st.st_mode) and not is_opaque(d / name):
            children = _changed(upper, lower, rel, stubs)
            same = low is not None and stat.S_ISDIR(low.st_mode) and (
                stat.S_IMODE(low.st_mode), low.st_uid, low.st_gid) == (
                stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            stub = low is None and not children and "/".join(rel) in stubs
            if (same and not children) or stub:
                continue
            out.append(rel)
            out.extend(children)
            continue
        out.append(rel)
        if stat.S_ISDIR(st.st_mode):
            out.extend(_all(upper, rel))
    return out


def _all(upper: Path, base: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    d = upper.joinpath(*base)
    for name in sorted(os.listdir(d)):
        rel = base + [name]
        out.append(rel)
        if stat.S_ISDIR(os.lstat(d / name).st_mode):
            out.extend(_all(upper, rel))
    return out


def _xattrs(path: Path) -> dict[str, str]:
    """Extended attributes to keep in the layer (file capabilities, user.*), as PAX
    `SCHILY.xattr.` records; overlay's own trusted.* attributes are left out."""
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for attr in names:
        if attr.startswith("trusted.") or attr == "security.selinux":
            continue
        try:
            value = os.getxattr(path, attr, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + attr] = value.decode("utf-8", "surrogateescape")
    return out
