"""Clears what an engine call killed half-way left in the containers directory.

`container_create` holds the flock `create-<id>` (see `Creating`) from before the bundle
directory exists until its `config.json` is written, so a bundle without `config.json`
whose lock is free was left by a creator that died: it is removed. A `.removing-<id>`
directory (a `_container_destroy` killed between its rename and its rmtree) is removed
once the `containers` lock is free. Only non-blocking locks are taken: a sweep never
waits, and never touches a bundle some live process is still writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from engine.store import Store

REMOVING_PREFIX = ".removing-"
ID_LENGTH = 64


def creating_lock(cid: str) -> str:
    return f"create-{cid}"


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
            with _try_lock(store, "containers") as free:
                if free:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(name[len(REMOVING_PREFIX):])
        elif len(name) == ID_LENGTH and not (entry / "config.json").exists():
            with _try_lock(store, creating_lock(name)) as free:
                if free and not (entry / "config.json").exists():
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(name)
            if free:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(_lock_path(store, creating_lock(name)))
    return removed
