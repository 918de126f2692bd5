"""The build cache: one record per step, keyed by a chain digest of the parent step's key
and the step's inputs (for COPY/ADD the content and modes of what is copied, never
mtimes; for RUN the command, its build-arg environment and mounts). A record holds the
stage state after the step; it is reused only while all of its layers are still stored.

Records: `<data root>/build-cache/steps/<key>.json`. Cache mounts (`RUN
--mount=type=cache`): `<data root>/build-cache/mounts/<id digest>/`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.store import Store


def chain(parent: str, *inputs: Any) -> str:
    """The key of a step: its parent's key and its inputs."""
    h = hashlib.sha256(parent.encode())
    h.update(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


class BuildCache:
    def __init__(self, store: Store, layer_exists: Callable[[str], bool]) -> None:
        self.store = store
        self.layer_exists = layer_exists

    def _path(self, key: str) -> Path:
        return self.store.path("build-cache", "steps", key + ".json")

    def get(self, key: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.store.read_json(self._path(key))
        if record is None:
            return None
        if not all(self.layer_exists(d) for d in record.get("diff_ids", [])):
            return None
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.store.write_json(self._path(key), record)

    def mount_dir(self, ident: str) -> Path:
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return self.store.ensure("build-cache", "mounts", digest)
