""".dockerignore rules applied to host paths under a root, for `develop.watch`.

The pattern rules themselves are the engine's (`engine.api.IgnorePatterns`), so the
builder and `watch` can never disagree on what a `.dockerignore` excludes.
"""

from __future__ import annotations

import os

from compose.errors import ConfigError
from engine.api import IgnorePatternError, IgnorePatterns


class PathMatcher:
    """Matches absolute host paths against patterns relative to `root`."""

    def __init__(self, root: str, patterns: IgnorePatterns | None = None) -> None:
        self.root = os.path.normpath(root)
        self.patterns = patterns or IgnorePatterns([])

    @classmethod
    def of(cls, root: str, lines: list[str] | tuple[str, ...]) -> PathMatcher:
        try:
            return cls(root, IgnorePatterns.parse("\n".join(lines)))
        except IgnorePatternError as exc:
            raise ConfigError(str(exc)) from None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        rel = os.path.relpath(os.path.normpath(path), self.root)
        if rel in (".", "..") or rel.startswith("../"):
            return False
        return self.patterns.excluded(rel)


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
