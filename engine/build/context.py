"""The build context: a directory filtered by `.dockerignore` (or `<Dockerfile>.dockerignore`)
with Docker's pattern rules (moby/patternmatcher: `*`, `?`, `[...]`, `**`, `!` exceptions,
last match wins, a path is excluded when it or a parent matches), and the COPY source
lookup (wildcards, `..` refused) over it."""

from __future__ import annotations

import os
from pathlib import Path

from engine.api import BuildError
from engine.build.fstree import DirTree, Tree, clean, escapes
from engine.ignorefile import IgnorePatterns, PatternError, glob_match


def parse_ignore(text: str) -> IgnorePatterns:
    try:
        return IgnorePatterns.parse(text)
    except PatternError as exc:
        raise BuildError(str(exc).replace("ignore pattern", ".dockerignore pattern")) from None


def has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


class BuildContext:
    """The context directory and its ignore rules."""

    def __init__(self, root: str | os.PathLike[str], dockerfile: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BuildError(f"unable to prepare context: path {str(root)!r} not found")
        self.ignore = parse_ignore(self._ignore_text(dockerfile))
        self.tree = DirTree(self.root, self.ignore.excluded)

    def _ignore_text(self, dockerfile: str | None) -> str:
        candidates = []
        if dockerfile:
            candidates.append(Path(dockerfile + ".dockerignore"))
        candidates.append(self.root / ".dockerignore")
        for c in candidates:
            if c.is_file():
                return c.read_text(errors="replace")
        return ""


def find_sources(tree: Tree, src: str, what: str = "build context") -> list[list[str]]:
    """The paths (component lists, symlink-free) that a COPY source names in `tree`."""
    if not src.startswith("/") and escapes(src):
        raise BuildError(f"forbidden path outside the {what}: {src} ()")
    if not has_magic(src):
        parts = tree.resolve(src)
        if parts is None:
            raise BuildError(f'"{src}": not found: file not found in {what} or excluded by '
                             f".dockerignore: stat {src}: file does not exist")
        return [parts]
    pattern_parts = clean(src)
    found: list[list[str]] = []
    _glob(tree, [], pattern_parts, found)
    if not found:
        raise BuildError(f'lstat "{src}": no source files were specified or they are '
                         f"excluded by .dockerignore (in {what})")
    return found


def _glob(tree: Tree, base: list[str], pattern: list[str], out: list[list[str]]) -> None:
    if not pattern:
        out.append(base)
        return
    head, rest = pattern[0], pattern[1:]
    if not has_magic(head):
        cand = base + [head]
        if tree.lstat(cand) is not None:
            _glob(tree, cand, rest, out)
        return
    try:
        names = tree.listdir(base)
    except OSError:
        return
    for name in names:
        if glob_match(head, name):
            cand = base + [name]
            if rest:
                resolved = tree.resolve("/".join(cand))
                if resolved is None:
                    continue
                _glob(tree, resolved, rest, out)
            else:
                out.append(cand)
