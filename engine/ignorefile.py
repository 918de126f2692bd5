"""`.dockerignore` patterns as Docker reads them (moby/patternmatcher): `*`, `?`, `[...]`,
`**`, `!` exceptions, last match wins, and a path matches when it or a parent does.

Pure and dependency-free: the builder filters build contexts with it, and `compose`
(through `engine.api`) filters `develop.watch` paths with the same rules.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


class PatternError(ValueError):
    """A pattern that cannot be compiled (an unclosed `[`)."""


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
                raise PatternError(f"invalid ignore pattern {pattern!r}: syntax error")
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


class IgnorePatterns:
    """Decides whether a root-relative path (`a/b/c`) is excluded."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns

    @classmethod
    def parse(cls, text: str) -> IgnorePatterns:
        return cls(parse_patterns(text.splitlines()))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, relpath: str) -> bool:
        if not self.patterns:
            return False
        parts = relpath.split("/")
        candidates = ["/".join(parts[:i + 1]) for i in range(len(parts))]
        matched = False
        for p in self.patterns:
            if any(p.regex.match(c) for c in candidates):
                matched = not p.exception
        return matched


def glob_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match for one path."""
    return bool(compile_pattern(pattern).match(name))
