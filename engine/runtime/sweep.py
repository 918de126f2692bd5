"""Clears what an engine call killed half-way left in the containers directory.

`container_create` holds the flock `create-<id>` (see `Creating`) from before the bundle
directory exists until its `config.json` is written, so a bundle without `config.json`
whose lock is free was left by a creator that died: it is removed. A `.removing-<id>`
directory (a `_container_destroy` killed between its rename and its rmtree) is removed
once the `containers` lock is free. Only non-blocking locks are taken: a sweep never
waits, and never touches a bundle some live process is still writing.

Also the claim a starting monitor holds (`claim_start`/`wait_starting`), so a second
start of a container whose first starter was killed mid-launch waits for that monitor
instead of launching another one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from engine.runtime import bundle
from engine.store import Store

REMOVING_PREFIX = ".removing-"
ID_LENGTH = 64


def creating_lock(cid: str) -> str:
    return f"create-{cid}"


def starting_lock(cid: str) -> str:
    return f"container-start-{cid}"


def claim_start(store: Store, cid: str) -> int:
    """In a new monitor: the fd of its held `container-start-<id>` lock, to close once its
    first state transition is written (a killed `start` caller leaves the monitor going
    on, and the state still says `created` until then)."""
    fd = os.open(_lock_path(store, starting_lock(cid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def wait_starting(store: Store, cid: str, timeout: float = 60.0) -> None:
    """Wait until no monitor of the container is half-way through starting it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _try_lock(store, starting_lock(cid)) as free:
            if free:
                return
        time.sleep(0.01)


def _lock_path(store: Store, name: str) -> Path:
    return store.ensure("locks") / f"{name}.lock"


class Creating:
    """The creator's claim on a new bundle: held until `release()` or the process dies."""

    def __init__(self, store: Store, cid: str) -> None:
        self.path = _lock_path(store, creating_lock(cid))
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1


@contextlib.contextmanager
def _try_lock(store: Store, name: str) -> Iterator[bool]:
    """True inside the block if the lock was free (and is now held), else False."""
    fd = os.open(_lock_path(store, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def sweep_incomplete(store: Store) -> list[str]:
    """Remove abandoned half-created and half-removed bundles; the ids removed."""
    try:
        entries = list(store.path("containers").iterdir())
    except FileNotFoundError:
        return []
    removed: list[str] = []
    for entry in entries:
        name = entry.name
        if name.startswith(REMOVING_PREFIX):
            cid = name[len(REMOVING_PREFIX):]
            with _try_lock(store, "containers") as free:
                if free:
                    shutil.rmtree(entry, ignore_errors=True)
                    _unlink_locks(store, cid)
                    removed.append(cid)
            if free:  # what the killed remove had still to say
                store.emit("container", "destroy", cid, name="")
        elif len(name) == ID_LENGTH and not (entry / "config.json").exists():
            with _try_lock(store, creating_lock(name)) as free:
                if free and not (entry / "config.json").exists():
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(name)
            if free:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(_lock_path(store, creating_lock(name)))
    return removed


def _unlink_locks(store: Store, cid: str) -> None:
    """The lock files `_container_destroy` would have removed after its rmtree."""
    for name in (bundle.lock_name(cid), f"container-op-{cid}", starting_lock(cid)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_lock_path(store, name))
