"""The build context: a directory filtered by `.dockerignore` (or `<Dockerfile>.dockerignore`)
with Docker's pattern rules (moby/patternmatcher: `*`, `?`, `[...]`, `**`, `!` exceptions,
last match wins, a path is excluded when it or a parent matches), and the COPY source
lookup (wildcards, `..` refused) over it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.api import BuildError
from engine.build.fstree import DirTree, Tree, clean, escapes


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    exclusion: bool
    dirs: tuple[str, ...]


def _compile(pattern: str) -> re.Pattern[str]:
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
                if i + 1 < len(pattern) and pattern[i + 1] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise BuildError(f"invalid .dockerignore pattern {pattern!r}: syntax error")
            body = pattern[i + 1:end]
            if body.startswith("^"):
                body = "!" + body[1:]
            out += "[" + ("^" + body[1:] if body.startswith("!") else body).replace(
                "\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def parse_ignore(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/") if line else line
        if line in ("", "."):
            continue
        patterns.append(Pattern(line, _compile(line), exclusion, tuple(line.split("/"))))
    return patterns


class Ignore:
    """Matcher of .dockerignore patterns against context-relative paths."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns

    def excluded(self, relpath: str) -> bool:
        if not self.patterns:
            return False
        parents = relpath.split("/")[:-1]
        matched = False
        for p in self.patterns:
            hit = bool(p.regex.match(relpath))
            if not hit:
                for i in range(len(parents)):
                    if p.regex.match("/".join(parents[:i + 1])):
                        hit = True
                        break
            if hit:
                matched = not p.exclusion
        return matched


def glob_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match for one path."""
    return bool(_compile(pattern).match(name))


def has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


class BuildContext:
    """The context directory and its ignore rules."""

    def __init__(self, root: str | os.PathLike[str], dockerfile: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BuildError(f"unable to prepare context: path {str(root)!r} not found")
        self.ignore = Ignore(parse_ignore(self._ignore_text(dockerfile)))
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
