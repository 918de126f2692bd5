"""`docker diff`: changes of a container's filesystem, read from its overlay upper directory.

An entry of the upper dir is D when it is a whiteout (char device 0:0), C when the same
path exists in an image layer, A otherwise. Paths the runtime itself creates as mount
points (/etc/hosts, /etc/hostname, /etc/resolv.conf) are left out, as Docker keeps them
in its hidden init layer; a directory that changed only because of them is left out too.
Layer lookups never follow symlinks (openat2 RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence

from engine.runtime import ops_syscalls as sc

RUNTIME_FILES = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/.dockerenv"})


def _in_layers(layer_fds: Sequence[int], rel: str) -> bool:
    for fd in layer_fds:
        try:
            found = sc.openat2(fd, rel, os.O_PATH | os.O_NOFOLLOW,
                               resolve=sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_BENEATH)
        except OSError:
            continue
        os.close(found)
        return True
    return False


def changes(upper: str, lowerdirs: Sequence[str]) -> list[tuple[str, str]]:
    """[(kind, path)] sorted by path; kind is "A", "C" or "D"."""
    layer_fds: list[int] = []
    try:
        for d in reversed(lowerdirs):
            with contextlib.suppress(OSError):
                layer_fds.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        found: dict[str, str] = {}
        only_runtime_children: dict[str, bool] = {}
        for dirpath, dirnames, filenames in os.walk(upper, followlinks=False):
            rel_dir = os.path.relpath(dirpath, upper)
            for name in sorted(dirnames + filenames):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                path = "/" + rel
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    kind = "D"
                else:
                    kind = "C" if _in_layers(layer_fds, rel) else "A"
                if path in RUNTIME_FILES:
                    only_runtime_children.setdefault(os.path.dirname(path), True)
                    continue
                parent = os.path.dirname(path)
                while parent != "/":
                    only_runtime_children[parent] = False
                    parent = os.path.dirname(parent)
                found[path] = kind
        for path, only in only_runtime_children.items():
            if only and found.get(path) == "C":
                del found[path]
        return sorted(((k, p) for p, k in found.items()), key=lambda kp: kp[1])
    finally:
        for fd in layer_fds:
            os.close(fd)
