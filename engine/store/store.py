"""The engine's state on disk: paths under the data root, locks, atomic JSON, events.

Layout under the data root (default /var/lib/pycompose, or $PYCOMPOSE_ROOT):

    blobs/sha256/<hex>        content-addressed blobs (layers, configs, manifests)
    layers/<diff-id hex>/     unpacked layers (overlay lower dirs), each self-contained
    images/index.json         references -> image ids
    containers/<id>/          bundle: config.json, state.json, log, upper/, work/, hosts...
    networks/<id>.json        networks
    volumes/<name>/           named volumes (_data/ and meta.json)
    build-cache/              builder cache records
    registry/                 manifests as pulled/pushed, blob sources for cross-repo mounts
    tmp/                      scratch space (layer recompression during push)
    events.jsonl              the events journal
    locks/                    lock files

Runtime files (pid files, sockets) live under the run dir: $PYCOMPOSE_RUN, else
/run/pycompose for the default data root, else <root>/run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_ROOT = "/var/lib/pycompose"


class Store:
    """Paths and primitives shared by every part of the built-in engine."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        run = os.environ.get("PYCOMPOSE_RUN")
        if run:
            self.run_dir = Path(run)
        elif str(self.root) == DEFAULT_ROOT:
            self.run_dir = Path("/run/pycompose")
        else:
            self.run_dir = self.root / "run"

    # ---------------------------------------------------------------- paths

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def ensure(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def run_path(self, *parts: str) -> Path:
        p = self.run_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # ---------------------------------------------------------------- locks

    @contextlib.contextmanager
    def lock(self, name: str = "global", shared: bool = False) -> Iterator[None]:
        """An advisory file lock held across processes for the duration of the block."""
        locks = self.ensure("locks")
        fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- JSON

    @staticmethod
    def write_json(path: str | os.PathLike[str], data: Any, durable: bool = True) -> None:
        """Write `data` as JSON so that readers see either the old or the new file
        (`durable=False`: see write_atomic)."""
        write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode(),
                     durable=durable)

    @staticmethod
    def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
        try:
            with open(path, "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return default

    # ---------------------------------------------------------------- events

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def emit(self, type: str, action: str, id: str, **attributes: str) -> None:
        """Append one event to the journal (one line, written with O_APPEND)."""
        record = {"time": time.time(), "type": type, "action": action, "id": id,
                  "attributes": attributes}
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read_events(self, since: float | None = None, until: float | None = None,
                    follow: bool = False, poll: float = 0.02) -> Iterator[dict[str, Any]]:
        """Events from the journal; with `follow`, keep reading new ones until `until`."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.events_path.touch(exist_ok=True)
        with open(self.events_path, "rb") as f:
            if since is not None:
                f.seek(_journal_offset(f, since - JOURNAL_SKEW))
            buf = b""
            while True:
                chunk = f.readline()
                if chunk:
                    buf += chunk
                    if not buf.endswith(b"\n"):
                        continue
                    line, buf = buf, b""
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    t = ev.get("time", 0.0)
                    if since is not None and t < since:
                        continue
                    if until is not None and t > until:
                        return
                    yield ev
                    continue
                if not follow or (until is not None and time.time() > until):
                    return
                time.sleep(poll)


# Writers stamp an event before appending it, so the journal is ordered by time only up
# to the delay between the two; seeking by time stays this many seconds on the safe side.
JOURNAL_SKEW = 5.0


def _journal_offset(f: BinaryIO, since: float) -> int:
    """The offset of a line start in the journal `f` at or before the first event with
    time >= `since` (binary search over offsets; lines are time-ordered up to skew)."""
    lo, hi = 0, os.fstat(f.fileno()).st_size
    while hi - lo > 4096:
        mid = (lo + hi) // 2
        f.seek(mid)
        f.readline()  # skip to the start of the next whole line
        start = f.tell()
        line = f.readline()
        t = _event_time(line) if line.endswith(b"\n") else None
        if t is None or t >= since:
            hi = mid
        else:
            lo = start
    return lo


def _event_time(line: bytes) -> float | None:
    try:
        t = json.loads(line).get("time")
    except (ValueError, AttributeError):
        return None
    return float(t) if isinstance(t, int | float) else None


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 durable: bool = True) -> None:
    """Write bytes to `path` via a temporary file and rename, fsync'd.

    `durable=False` skips the fsync (5-10 ms each, serialised by the disk) for state that
    describes running processes, rewritten many times per container start, and void
    after a crash anyway (the containers are gone; readers check the boot id): the
    rename still makes each write atomic for concurrent readers."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
