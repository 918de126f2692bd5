"""Read-only views of a file tree that COPY reads from: a directory (the build context,
filtered by .dockerignore) and the merged view of an image's layer directories (overlay
whiteouts and opaque directories honoured). Symlinks are resolved inside the tree's
root, as if the root were `/`, so no path or link can reach the host."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from engine.api import BuildError
from engine.images.unpack import (
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    clean_path,
    opaque_xattr,
    openat2,
)

MAX_LINKS = 40


def open_in_root(root: Path, parts: list[str]) -> IO[bytes]:
    """The regular file at `parts` under `root`, opened with no way out of `root`."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = openat2(root_fd, "/".join(parts), os.O_RDONLY | os.O_NOFOLLOW,
                     resolve=RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    finally:
        os.close(root_fd)
    return os.fdopen(fd, "rb")


clean = clean_path  # the components of a path under the tree's root


def escapes(path: str) -> bool:
    """True if a relative `path` climbs above its root (`../x`, `a/../../x`)."""
    depth = 0
    for comp in path.split("/"):
        if comp == "..":
            depth -= 1
            if depth < 0:
                return True
        elif comp not in ("", "."):
            depth += 1
    return False


class Tree:
    """The interface COPY uses. Paths are lists of components, free of symlinks except
    possibly the last (see resolve)."""

    def lstat(self, parts: list[str]) -> os.stat_result | None:
        raise NotImplementedError

    def listdir(self, parts: list[str]) -> list[str]:
        raise NotImplementedError

    def readlink(self, parts: list[str]) -> str:
        raise NotImplementedError

    def open(self, parts: list[str]) -> IO[bytes]:
        raise NotImplementedError

    def resolve(self, path: str, follow_last: bool = True) -> list[str] | None:
        """The symlink-free components naming `path` in this tree, or None if absent."""
        todo = clean(path)
        done: list[str] = []
        links = 0
        while todo:
            comp = todo.pop(0)
            cand = done + [comp]
            st = self.lstat(cand)
            if st is None:
                return None
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                links += 1
                if links > MAX_LINKS:
                    return None
                target = self.readlink(cand)
                base = [] if target.startswith("/") else done
                todo = clean("/".join(base + [target])) + todo
                done = []
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                return None
            done = cand
        return done


class DirTree(Tree):
    """A host directory; `excluded(relpath)` hides paths (the .dockerignore rules)."""

    def __init__(self, root: str | os.PathLike[str],
                 excluded: Callable[[str], bool] | None = None) -> None:
        self.root = Path(root)
        self.excluded = excluded or (lambda _: False)

    def lstat(self, parts: list[str]) -> os.stat_result | None:
        if parts and self.excluded("/".join(parts)):
            return None
        try:
            return os.lstat(self.root.joinpath(*parts))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, parts: list[str]) -> list[str]:
        names = sorted(os.listdir(self.root.joinpath(*parts)))
        return [n for n in names if not self.excluded("/".join(parts + [n]))]

    def readlink(self, parts: list[str]) -> str:
        return os.readlink(self.root.joinpath(*parts))

    def open(self, parts: list[str]) -> IO[bytes]:
        return open_in_root(self.root, parts)


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, opaque_xattr(), follow_symlinks=False) == b"y"
    except OSError:
        return False


class LayeredTree(Tree):
    """The merged view of layer directories (bottom -> top), as overlayfs shows them."""

    def __init__(self, layer_dirs: list[Path]) -> None:
        self.top_first = list(reversed(layer_dirs))

    def _layers(self, parts: list[str]) -> list[Path]:
        """Layers contributing to `parts`, top first (the first one holds its entry)."""
        layers = self.top_first
        keep: list[Path] = []
        for depth in range(len(parts)):
            sub = parts[:depth + 1]
            keep = []
            for layer in layers:
                p = layer.joinpath(*sub)
                try:
                    st = os.lstat(p)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if is_whiteout(st):
                    break
                keep.append(layer)
                if not stat.S_ISDIR(st.st_mode) or is_opaque(p):
                    break
            if not keep:
                return []
            layers = keep
        return keep if parts else self.top_first

    def lstat(self, parts: list[str]) -> os.stat_result | None:
        layers = self._layers(parts)
        if not layers:
            return None
        try:
            return os.lstat(layers[0].joinpath(*parts))
        except FileNotFoundError:
            return None

    def listdir(self, parts: list[str]) -> list[str]:
        seen: set[str] = set()
        hidden: set[str] = set()
        for layer in self._layers(parts):
            d = layer.joinpath(*parts)
            try:
                names = os.listdir(d)
            except (NotADirectoryError, FileNotFoundError):
                break
            for name in names:
                if name in seen or name in hidden:
                    continue
                if is_whiteout(os.lstat(d / name)):
                    hidden.add(name)
                else:
                    seen.add(name)
            if is_opaque(d):
                break
        return sorted(seen)

    def readlink(self, parts: list[str]) -> str:
        return os.readlink(self._layers(parts)[0].joinpath(*parts))

    def open(self, parts: list[str]) -> IO[bytes]:
        return open_in_root(self._layers(parts)[0], parts)


def not_found(src: str) -> BuildError:
    return BuildError(f"failed to compute cache key: \"{src}\": not found "
                      "(file not found in build context or excluded by .dockerignore)")
