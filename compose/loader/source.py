"""Where each value of a loaded tree came from: marks, key paths and located errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from compose.errors import LoadError

Path = tuple[str | int, ...]
E = TypeVar("E", bound=LoadError)


@dataclass(frozen=True)
class Mark:
    """A position in a file; line and column are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SourceMap:
    """Key path -> Mark of the value (and of its mapping key), kept beside a plain tree."""

    def __init__(self) -> None:
        self._values: dict[Path, Mark] = {}
        self._keys: dict[Path, Mark] = {}

    def set(self, path: Path, mark: Mark, key_mark: Mark | None = None) -> None:
        self._values[tuple(path)] = mark
        if key_mark is not None:
            self._keys[tuple(path)] = key_mark

    def tables(self) -> tuple[dict[Path, Mark], dict[Path, Mark]]:
        """The value and key tables themselves, for the YAML builder's hot loop (keys must
        be tuples)."""
        return self._values, self._keys

    def get(self, path: Path) -> Mark | None:
        return self._values.get(tuple(path))

    def key(self, path: Path) -> Mark | None:
        return self._keys.get(tuple(path))

    def locate(self, path: Path) -> Mark | None:
        """The mark of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while True:
            mark = self._values.get(path)
            if mark is not None:
                return mark
            if not path:
                return None
            path = path[:-1]

    def update(self, other: SourceMap) -> None:
        self._values.update(other._values)
        self._keys.update(other._keys)

    def rebase(self, old: Path, new: Path) -> SourceMap:
        """A copy of the entries under `old`, moved under `new` (for extends/include)."""
        moved = SourceMap()
        n = len(old)
        for table, target in ((self._values, moved._values), (self._keys, moved._keys)):
            for path, mark in table.items():
                if path[:n] == tuple(old):
                    target[tuple(new) + path[n:]] = mark
        return moved

    def paths(self) -> Iterator[Path]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, path: object) -> bool:
        return path in self._values


def format_path(path: Iterable[str | int]) -> str:
    """("services", "web", "ports", 1) -> "services.web.ports[1]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def error_at(cls: type[E], message: str, path: Iterable[str | int],
             source: SourceMap | None) -> E:
    """An error of class `cls` located at the value of `path` (or its nearest ancestor)."""
    path = tuple(path)
    mark = source.locate(path) if source is not None else None
    return cls(message, file=mark.file if mark else None, line=mark.line if mark else None,
               column=mark.column if mark else None, path=format_path(path) or None)
