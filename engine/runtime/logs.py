"""Container logs in Docker's json-file format: a writer with rotation, and a reader.

The writer (used by the monitor) turns each stream's bytes into JSON lines
`{"log": "...\\n", "stream": "stdout|stderr", "time": RFC 3339 nano}`; a trailing partial
line is written when the stream ends. With `max-size` the file is rotated: the current
file becomes `.1`, `.1` becomes `.2` ... up to `max-file` files in all (`max-file` 1
truncates). The reader yields `LogLine`s with tail/since/until, and with `follow` keeps
reading across rotations and container restarts while `alive()` says the writer lives.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

from engine.api import InvalidArgument, LogLine

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2,
          "g": 1024**3, "gb": 1024**3}


def parse_size(text: str) -> int:
    """`10m`, `1k`, `512` (Docker's max-size) -> bytes."""
    s = text.strip().lower()
    num = s.rstrip("bkmg")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        raise InvalidArgument(f"invalid log max-size {text!r}")
    if unit not in _UNITS or value < 0:
        raise InvalidArgument(f"invalid log max-size {text!r}")
    return int(value * _UNITS[unit])


def timestamp(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def parse_timestamp(text: str) -> float:
    """RFC 3339 (UTC, `Z`, any fraction) -> seconds since the epoch."""
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(base[:19], "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float("0." + frac) if frac else 0.0)


class LogWriter:
    """Appends JSON lines to `path`, rotating by size."""

    def __init__(self, path: Path, max_size: int | None = None, max_file: int = 1) -> None:
        self.path = path
        self.max_size = max_size if max_size and max_size > 0 else None
        self.max_file = max(1, max_file)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115
        self._size = self._file.tell()

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        self._partial[stream] = rest
        for line in lines:
            self._emit(stream, line + b"\n")
        if len(rest) >= 16 * 1024:  # Docker splits very long lines into 16K messages
            self._partial[stream] = b""
            self._emit(stream, rest)

    def flush(self, stream: str) -> None:
        """The stream ended: write what is left of its last line."""
        rest = self._partial.get(stream, b"")
        self._partial[stream] = b""
        if rest:
            self._emit(stream, rest)

    def _emit(self, stream: str, data: bytes) -> None:
        record = json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                             "time": timestamp()}).encode() + b"\n"
        if self.max_size is not None and self._size and \
                self._size + len(record) > self.max_size:
            self._rotate()
        self._file.write(record)
        self._file.flush()
        self._size += len(record)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_file > 1:
            for n in range(self.max_file - 1, 0, -1):
                src = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{n}"))
            self._file = open(self.path, "ab")  # noqa: SIM115
        else:
            self._file = open(self.path, "wb")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        for stream in list(self._partial):
            self.flush(stream)
        self._file.close()


class NullWriter(LogWriter):
    """The `none` log driver: output is read and dropped."""

    def __init__(self) -> None:
        pass

    def write(self, stream: str, data: bytes) -> None:
        pass

    def flush(self, stream: str) -> None:
        pass

    def close(self) -> None:
        pass


def _files_oldest_first(path: Path) -> list[Path]:
    rotated = []
    n = 1
    while True:
        p = path.with_name(f"{path.name}.{n}")
        if not p.exists():
            break
        rotated.append(p)
        n += 1
    return list(reversed(rotated)) + ([path] if path.exists() else [])


def _parse(line: bytes) -> tuple[LogLine, float] | None:
    try:
        rec: dict[str, Any] = json.loads(line)
        entry = LogLine(time=rec["time"], stream=cast(Any, rec["stream"]), text=rec["log"])
        return entry, parse_timestamp(rec["time"])
    except (ValueError, KeyError, TypeError):
        return None


def read_logs(path: Path, follow: bool = False, tail: int | None = None,
              since: float | None = None, until: float | None = None,
              alive: Callable[[], bool] = lambda: False,
              poll: float = 0.05) -> Iterator[LogLine]:
    """The container's log lines, oldest first (see the module docstring)."""

    def wanted(t: float) -> bool:
        return (since is None or t >= since) and (until is None or t <= until)

    if tail is not None and tail >= 0 and since is None:
        # read from the end: `logs --tail 10` of a long-lived container stays instant
        lines, current, offset = _last_lines(path, tail, wanted)
        yield from lines
        if follow:
            yield from _follow(path, current, offset, until, alive, poll, wanted)
        return
    backlog: deque[LogLine] | list[LogLine] = deque(maxlen=tail) if tail is not None \
        and tail >= 0 else []
    current = None
    offset = 0
    for p in _files_oldest_first(path):
        try:
            with open(p, "rb") as f:
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break
                    parsed = _parse(raw)
                    if parsed and wanted(parsed[1]):
                        backlog.append(parsed[0])
                if p == path:
                    current = os.fstat(f.fileno()).st_ino
                    offset = f.tell()
        except FileNotFoundError:
            continue
    yield from backlog
    if not follow:
        return
    yield from _follow(path, current, offset, until, alive, poll, wanted)


def _last_lines(path: Path, need: int, wanted: Callable[[float], bool]
                ) -> tuple[list[LogLine], int | None, int]:
    """The last `need` wanted lines over the rotated files (oldest first), and the
    current file's inode and the end of its last complete line (where following starts)."""
    collected: list[LogLine] = []
    current: int | None = None
    offset = 0
    for p in reversed(_files_oldest_first(path)):
        if need - len(collected) <= 0 and current is not None:
            break
        try:
            lines, inode, end = _tail_of_file(p, need - len(collected), wanted)
        except FileNotFoundError:
            continue
        if p == path:
            current, offset = inode, end
        collected = lines + collected
    return collected, current, offset


def _tail_of_file(p: Path, need: int, wanted: Callable[[float], bool]
                  ) -> tuple[list[LogLine], int, int]:
    """Up to `need` last wanted lines of one file, read through a growing window."""
    with open(p, "rb") as f:
        st = os.fstat(f.fileno())
        window = max(65536, need * 512)
        while True:
            start = max(0, st.st_size - window)
            f.seek(start)
            parts = f.read(st.st_size - start).split(b"\n")
            end = st.st_size - len(parts[-1])  # just after the last complete line
            complete = parts[:-1] if start == 0 else parts[1:-1]
            found = []
            for raw in complete:
                parsed = _parse(raw)
                if parsed and wanted(parsed[1]):
                    found.append(parsed[0])
            if len(found) >= need or start == 0:
                return (found[max(0, len(found) - need):] if need else []), st.st_ino, end
            window *= 4


def _follow(path: Path, inode: int | None, offset: int, until: float | None,
            alive: Callable[[], bool], poll: float,
            wanted: Callable[[float], bool]) -> Iterator[LogLine]:
    f: IO[bytes] | None = None
    try:
        while True:
            if f is None:
                try:
                    f = open(path, "rb")  # noqa: SIM115
                except FileNotFoundError:
                    f = None
                if f is not None:
                    st = os.fstat(f.fileno())
                    if st.st_ino == inode and st.st_size >= offset:
                        f.seek(offset)
                    inode = st.st_ino
            got = False
            if f is not None:
                while True:
                    pos = f.tell()
                    raw = f.readline()
                    if not raw:
                        break
                    if not raw.endswith(b"\n"):
                        f.seek(pos)
                        break
                    got = True
                    parsed = _parse(raw)
                    if parsed and wanted(parsed[1]):
                        yield parsed[0]
                    if until is not None and parsed and parsed[1] > until:
                        return
                try:
                    st = os.stat(path)
                    if st.st_ino != inode or st.st_size < f.tell():
                        # rotated or truncated: finish the old file, then read the new one
                        if st.st_ino != inode:
                            for raw in f.read().splitlines(keepends=True):
                                parsed = _parse(raw)
                                if parsed and raw.endswith(b"\n") and wanted(parsed[1]):
                                    yield parsed[0]
                        f.close()
                        f, offset, inode = None, 0, None
                        continue
                except FileNotFoundError:
                    pass
            if got:
                continue
            if until is not None and time.time() > until:
                return
            if not alive():
                # one last look: the writer may have written just before it ended
                if f is not None:
                    rest = f.read()
                    for raw in rest.splitlines(keepends=True):
                        parsed = _parse(raw)
                        if parsed and raw.endswith(b"\n") and wanted(parsed[1]):
                            yield parsed[0]
                return
            time.sleep(poll)
    finally:
        if f is not None:
            f.close()
