"""`docker cp` semantics between two directory trees, each addressed by a root fd.

The source is written as a tar stream by one thread and unpacked by the caller's thread
(`ops_archive`), so both sides resolve paths inside their own root. The rules follow
`docker cp`: a trailing `/.` copies a directory's contents; an existing directory
destination receives the source under its own name; a missing destination becomes the
source under the new name (its parent must exist); a directory cannot overwrite a file.
"""

from __future__ import annotations

import os
import stat
import threading
from typing import IO

from engine.api import InvalidArgument, NotFound
from engine.runtime.ops_archive import TarWriter, extract, lstat_in_root, open_in_root


def _split(path: str) -> tuple[str, str]:
    parts = [p for p in path.split("/") if p]
    return "/" + "/".join(parts[:-1]), (parts[-1] if parts else "")


def plan_copy(src_root: int, src_path: str, dst_root: int, dst_path: str,
              src_label: str = "container", follow: bool = False) -> tuple[str, str, bool]:
    """(directory to extract into, top-level name in the archive, contents-only)."""
    contents_only = src_path.endswith("/.") or src_path == "."
    st = lstat_in_root(src_root, src_path, follow=follow)
    if st is None:
        where = "in container" if src_label == "container" else "on the host"
        raise NotFound(f"Could not find the file {src_path} {where}")
    src_dir = stat.S_ISDIR(st.st_mode)
    if contents_only and not src_dir:
        raise InvalidArgument(f"source {src_path} is not a directory")
    if src_path.endswith("/") and not src_dir and not contents_only:
        raise InvalidArgument(f"source {src_path} is not a directory")
    _, src_name = _split(src_path.rstrip("/.") if contents_only else src_path)
    dst = lstat_in_root(dst_root, dst_path, follow=True)
    if dst is not None and stat.S_ISDIR(dst.st_mode):
        if contents_only:
            return dst_path, "", True
        return dst_path, src_name or "root", False
    parent, dst_name = _split(dst_path)
    if dst is not None:
        if src_dir:
            raise InvalidArgument(f"cannot copy a directory onto the file {dst_path}")
        return parent, dst_name, False
    if dst_path.endswith("/") and not src_dir:
        raise NotFound(f"destination directory {dst_path} does not exist")
    pst = lstat_in_root(dst_root, parent, follow=True)
    if pst is None or not stat.S_ISDIR(pst.st_mode):
        raise NotFound(f"destination parent directory {parent} does not exist")
    if not dst_name:
        raise InvalidArgument(f"invalid destination {dst_path!r}")
    return parent, dst_name, False


def write_tar(root_fd: int, path: str, out: IO[bytes], arcname: str,
              contents_only: bool = False, follow: bool = False) -> None:
    """Write `path` (inside the root) as a tar stream named `arcname`."""
    writer = TarWriter(out)
    try:
        if contents_only:
            dfd = open_in_root(root_fd, path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                writer.add_contents(dfd, arcname)
            finally:
                os.close(dfd)
        else:
            writer.add(root_fd, path, arcname, follow=follow)
    finally:
        writer.close()


def copy_tree(src_root: int, src_path: str, dst_root: int, dst_path: str, *,
              owner: tuple[int, int] | None, src_label: str = "container",
              follow: bool = False) -> int:
    """Copy with docker cp's rules; returns the number of entries written."""
    into, name, contents_only = plan_copy(src_root, src_path, dst_root, dst_path, src_label,
                                          follow)
    r, w = os.pipe2(os.O_CLOEXEC)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(w, "wb", buffering=1 << 16) as out:
                write_tar(src_root, src_path.rstrip("/") if not contents_only
                          else src_path[:-2] or "/", out, name, contents_only, follow)
        except BrokenPipeError:
            pass
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=produce, name="cp-tar", daemon=True)
    thread.start()
    try:
        # The archive is unpacked relative to the destination directory itself, so no
        # link it carries can reach beyond it.
        into_fd = open_in_root(dst_root, into, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.fdopen(r, "rb", buffering=1 << 16) as stream:
                r = -1
                count = extract(stream, into_fd, "/", owner=owner)
        finally:
            os.close(into_fd)
    finally:
        if r >= 0:
            os.close(r)
        thread.join()
    if failure:
        raise failure[0]
    return count
