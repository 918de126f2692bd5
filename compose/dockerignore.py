""".dockerignore-style path patterns (`*`, `?`, `[...]`, `**`, `!` exceptions, last match
wins, a path matches when it or one of its parents does), anchored at a root directory.

The builder has its own matcher in engine internals, which `compose` may not import; this
is the small copy `compose.watch` uses for `develop.watch` `ignore`/`include` rules and
the build context's `.dockerignore`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from compose.errors import ConfigError


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    exception: bool  # a `!pattern` line: re-includes what earlier lines excluded


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match syntax plus `**` (any number of path components)."""
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
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
                raise ConfigError(f"invalid ignore pattern {pattern!r}: syntax error")
            body = pattern[i + 1:end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out += "[" + body.replace("\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def parse_patterns(lines: list[str] | tuple[str, ...]) -> list[Pattern]:
    """Patterns from .dockerignore lines (comments and blanks skipped)."""
    patterns = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/") if line else line
        if line in ("", "."):
            continue
        patterns.append(Pattern(line, compile_pattern(line), exception))
    return patterns


class PathMatcher:
    """Matches absolute host paths against patterns relative to `root`."""

    def __init__(self, root: str, patterns: list[Pattern]) -> None:
        self.root = os.path.normpath(root)
        self.patterns = patterns

    @classmethod
    def of(cls, root: str, lines: list[str] | tuple[str, ...]) -> PathMatcher:
        return cls(root, parse_patterns(lines))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        if not self.patterns:
            return False
        rel = os.path.relpath(os.path.normpath(path), self.root)
        if rel == ".." or rel.startswith("../"):
            return False
        if rel == ".":
            return False
        candidates = _self_and_parents(rel)
        matched = False
        for p in self.patterns:
            if any(p.regex.match(c) for c in candidates):
                matched = not p.exception
        return matched


def _self_and_parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def read_dockerignore(context: str, dockerfile: str | None = None) -> list[str]:
    """The lines of `<Dockerfile>.dockerignore` next to the Dockerfile, else of the
    context's `.dockerignore`; no file means no lines."""
    candidates = []
    if dockerfile:
        candidates.append(os.path.join(context, dockerfile) + ".dockerignore")
    candidates.append(os.path.join(context, ".dockerignore"))
    for name in candidates:
        try:
            with open(name, encoding="utf-8") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read {name}: {exc.strerror}") from None
    return []
