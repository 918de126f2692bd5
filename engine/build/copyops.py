"""COPY and ADD: Docker's source/destination rules, written as layer entries.

A directory source copies its contents; a file goes to `dest` itself unless `dest` ends
with `/`, is an existing directory of the image, or several sources are copied (then
`dest` must end with `/`). Parents that exist keep their metadata; missing ones are
created 0755 root. `--chown`/`--chmod` apply to what is copied. ADD extracts a local tar
(plain, gzip, bzip2, xz) into the destination directory; member names are scoped below
it and the hardened layer extractor later refuses anything escaping the layer."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from typing import IO

from engine.api import BuildError
from engine.build.fstree import LayeredTree, Tree, clean
from engine.build.layertar import LayerWriter


@dataclass(frozen=True)
class Owner:
    uid: int | None = None  # None: keep the source's (ADD tar) or root (COPY)
    gid: int | None = None


@dataclass(frozen=True)
class CopyItem:
    tree: Tree
    parts: list[str]  # symlink-free path in the tree
    src: str  # as written, for messages


def content_digest(items: list[CopyItem]) -> str:
    """A digest of what COPY reads: names, types, modes, link targets and content (not
    mtimes, owners or the context's other files)."""
    h = hashlib.sha256()
    for item in items:
        h.update(f"src:{item.src}\0".encode())
        _hash_path(item.tree, item.parts, "", h)
    return h.hexdigest()


def _hash_path(tree: Tree, parts: list[str], rel: str, h: hashlib._Hash) -> None:
    st = tree.lstat(parts)
    if st is None:
        return
    mode = st.st_mode
    h.update(f"{rel}\0{stat.S_IFMT(mode)}\0{stat.S_IMODE(mode):o}\0".encode())
    if stat.S_ISLNK(mode):
        h.update(tree.readlink(parts).encode() + b"\0")
    elif stat.S_ISREG(mode):
        with tree.open(parts) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    elif stat.S_ISDIR(mode):
        for name in tree.listdir(parts):
            _hash_path(tree, parts + [name], f"{rel}/{name}", h)


def dest_dir_parts(image: LayeredTree, dest: str) -> list[str]:
    """Components of a destination directory, following the image's symlinks."""
    parts = clean(dest)
    done: list[str] = []
    for i, comp in enumerate(parts):
        resolved = image.resolve("/".join(done + [comp]))
        if resolved is None:
            return done + parts[i:]
        st = image.lstat(resolved)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise BuildError(f"cannot copy to non-directory: /{'/'.join(resolved)}")
        done = resolved
    return done


def write_parents(writer: LayerWriter, image: LayeredTree, parts: list[str],
                  owner: Owner, own_last: bool) -> None:
    for i in range(1, len(parts) + 1):
        sub = parts[:i]
        st = image.lstat(sub)
        if st is not None and stat.S_ISDIR(st.st_mode):
            writer.dir("/".join(sub), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                       st.st_mtime)
        elif i == len(parts) and own_last:
            writer.dir("/".join(sub), 0o755, owner.uid or 0, owner.gid or 0)
        else:
            writer.dir("/".join(sub))


def copy(writer: LayerWriter, image: LayeredTree, items: list[CopyItem], dest: str,
         owner: Owner, chmod: int | None, multiple: bool) -> None:
    """Write COPY's entries for `items` into `writer`."""
    dest_is_dir = dest.endswith("/") or multiple
    if multiple and not dest.endswith("/"):
        raise BuildError("When using COPY with more than one source file, the destination "
                         "must be a directory and end with a /")
    if not dest_is_dir:
        existing = image.resolve(dest)
        st = image.lstat(existing) if existing is not None else None
        if st is not None and stat.S_ISDIR(st.st_mode):
            dest_is_dir = True
    for item in items:
        st = item.tree.lstat(item.parts)
        if st is None:
            raise BuildError(f"{item.src}: not found")
        if stat.S_ISDIR(st.st_mode):
            target = dest_dir_parts(image, dest)
            write_parents(writer, image, target, owner, own_last=True)
            for name in item.tree.listdir(item.parts):
                copy_tree(writer, item.tree, item.parts + [name], target + [name], owner,
                           chmod)
        elif dest_is_dir:
            target = dest_dir_parts(image, dest)
            write_parents(writer, image, target, owner, own_last=True)
            copy_tree(writer, item.tree, item.parts, target + [item.parts[-1]], owner,
                       chmod)
        else:
            parts = clean(dest)
            if not parts:
                raise BuildError(f"cannot copy {item.src} onto /")
            parent = dest_dir_parts(image, "/".join(parts[:-1]))
            write_parents(writer, image, parent, owner, own_last=False)
            copy_tree(writer, item.tree, item.parts, parent + [parts[-1]], owner, chmod)


def copy_tree(writer: LayerWriter, tree: Tree, src: list[str], dst: list[str], owner: Owner,
               chmod: int | None) -> None:
    st = tree.lstat(src)
    if st is None:
        return
    ti = tarfile.TarInfo("/".join(dst))
    ti.uid = owner.uid if owner.uid is not None else 0
    ti.gid = owner.gid if owner.gid is not None else 0
    ti.mtime = int(st.st_mtime)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
        ti.mode = chmod if chmod is not None else mode
        writer.add(ti)
        for name in tree.listdir(src):
            copy_tree(writer, tree, src + [name], dst + [name], owner, chmod)
    elif stat.S_ISREG(st.st_mode):
        ti.mode = chmod if chmod is not None else mode
        ti.size = st.st_size
        with tree.open(src) as f:
            writer.add(ti, f)
    elif stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = tree.readlink(src)
        ti.mode = 0o777
        writer.add(ti)
    # sockets, fifos and devices of a context are not copied (as Docker's context tar)


def inline_file(writer: LayerWriter, image: LayeredTree, content: bytes, name: str,
                dest: str, owner: Owner, chmod: int | None) -> None:
    """COPY <<EOF: a file named `name` with `content`."""
    import io

    if dest.endswith("/"):
        parts = dest_dir_parts(image, dest) + [name]
    else:
        existing = image.resolve(dest)
        st = image.lstat(existing) if existing is not None else None
        if st is not None and stat.S_ISDIR(st.st_mode):
            parts = list(existing or []) + [name]
        else:
            parts = dest_dir_parts(image, posixpath.dirname(dest)) + clean(dest)[-1:]
    write_parents(writer, image, parts[:-1], owner, own_last=False)
    ti = tarfile.TarInfo("/".join(parts))
    ti.size = len(content)
    ti.mode = chmod if chmod is not None else 0o644
    ti.uid, ti.gid = owner.uid or 0, owner.gid or 0
    writer.add(ti, io.BytesIO(content))


def archive_reader(tree: Tree, parts: list[str]) -> IO[bytes] | None:
    """A decompressed stream of a local tar source for ADD, or None if not an archive."""
    st = tree.lstat(parts)
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    with tree.open(parts) as f:
        head = f.read(512)
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}.get(head[:2])
    if opener is not None:
        try:
            stream: IO[bytes] = opener(tree.open(parts))  # type: ignore[operator]
            inner = stream.read(512)
        except (OSError, EOFError, lzma.LZMAError):
            return None
        if len(inner) < 512 or inner[257:262] != b"ustar":
            return None
        return opener(tree.open(parts))  # type: ignore[operator, no-any-return]
    if len(head) == 512 and head[257:262] == b"ustar":
        return tree.open(parts)
    return None


def extract(writer: LayerWriter, image: LayeredTree, stream: IO[bytes], dest: str,
            owner: Owner) -> None:
    """ADD of a local archive: its members below the destination directory."""
    target = dest_dir_parts(image, dest)
    write_parents(writer, image, target, owner, own_last=True)
    prefix = "/".join(target)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for ti in tar:
                parts = clean(ti.name)
                if not parts:
                    continue
                ti.name = "/".join(([prefix] if prefix else []) + parts)
                if ti.islnk():
                    ti.linkname = "/".join(([prefix] if prefix else []) + clean(ti.linkname))
                if owner.uid is not None:
                    ti.uid, ti.gid = owner.uid, owner.gid or 0
                if ti.isreg():
                    writer.add(ti, tar.extractfile(ti))
                else:
                    writer.add(ti)
    except tarfile.TarError as e:
        raise BuildError(f"Error processing tar file: {e}") from None
