"""Resolve a container's `user: name|uid[:group|gid]` from the image's /etc/passwd and
/etc/group, parsed as text (never `pwd`/`grp` in a chroot: that runs the image's NSS code
as host root). Files are opened with openat2(RESOLVE_IN_ROOT) so that a symlinked
/etc/passwd in an image cannot make us read a host file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.api import InvalidArgument


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def parse_passwd(text: str) -> list[PasswdEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or line.startswith("#"):
            continue
        try:
            uid, gid = int(parts[2]), int(parts[3])
        except ValueError:
            continue
        home = parts[5] if len(parts) > 5 else "/"
        entries.append(PasswdEntry(parts[0], uid, gid, home or "/"))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 3 or line.startswith("#"):
            continue
        try:
            gid = int(parts[2])
        except ValueError:
            continue
        members = tuple(m for m in (parts[3].split(",") if len(parts) > 3 else []) if m)
        entries.append(GroupEntry(parts[0], gid, members))
    return entries


def read_image_file(layer_dirs: Sequence[Path], relpath: str) -> str:
    """A file's text as the merged rootfs would show it (top layer wins; a whiteout or a
    missing file gives ""). Symlinks resolve inside each layer."""
    from engine.runtime.syscalls import open_in_root

    for layer in reversed(list(layer_dirs)):
        try:
            root_fd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fd = open_in_root(root_fd, relpath)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            return ""
        finally:
            os.close(root_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return ""  # a whiteout (char 0:0) or something odd: treat as absent
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read(4 * 1024 * 1024).decode("utf-8", "replace")
        finally:
            os.close(fd)
    return ""


def resolve(user: str | None, group_add: Sequence[str], passwd_text: str,
            group_text: str) -> ResolvedUser:
    """Docker's rules: default root; a numeric uid absent from passwd runs with gid 0;
    unknown names are errors; supplementary groups come from /etc/group membership."""
    passwd = parse_passwd(passwd_text)
    groups = parse_group(group_text)
    spec = (user or "").strip()
    name_part, _, group_part = spec.partition(":")
    uid, gid, home, username = 0, 0, "/", ""
    if name_part:
        entry = _find_user(passwd, name_part)
        if entry is not None:
            uid, gid, home, username = entry.uid, entry.gid, entry.home, entry.name
        elif name_part.isdigit():
            uid = int(name_part)
        else:
            raise InvalidArgument(
                f"unable to find user {name_part}: no matching entries in passwd file")
    else:
        entry = _find_user(passwd, "0")
        if entry is not None:
            gid, home, username = entry.gid, entry.home, entry.name
    if group_part:
        gid = _group_id(groups, group_part)
    extra: list[int] = []
    if username and not group_part:
        extra = [g.gid for g in groups if username in g.members]
    extra += [_group_id(groups, g) for g in group_add]
    supplementary = tuple(dict.fromkeys(g for g in extra))
    return ResolvedUser(uid=uid, gid=gid, groups=supplementary, home=home)


def _find_user(passwd: list[PasswdEntry], ref: str) -> PasswdEntry | None:
    for e in passwd:
        if e.name == ref:
            return e
    if ref.isdigit():
        for e in passwd:
            if e.uid == int(ref):
                return e
    return None


def _group_id(groups: list[GroupEntry], ref: str) -> int:
    for g in groups:
        if g.name == ref:
            return g.gid
    if ref.isdigit():
        return int(ref)
    raise InvalidArgument(f"unable to find group {ref}: no matching entries in group file")


def resolve_in_layers(user: str | None, group_add: Sequence[str],
                      layer_dirs: Sequence[Path]) -> ResolvedUser:
    return resolve(user, group_add, read_image_file(layer_dirs, "etc/passwd"),
                   read_image_file(layer_dirs, "etc/group"))
