"""The image index: references -> image ids, images -> layers, layers -> blobs.

One JSON document (`images/index.json`) changed only inside `transaction()`, which holds
the cross-process `images` lock and writes atomically, so concurrent imports and tags
never lose each other's updates. Readers take no lock: writes are atomic renames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from engine.store import Store

LOCK = "images"


def _empty() -> dict[str, Any]:
    return {"refs": {}, "images": {}, "layers": {}}


class ImageIndex:
    """Reads and transactional updates of `images/index.json`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.path("images", "index.json")

    def read(self) -> dict[str, Any]:
        data = self.store.read_json(self.path, None) or _empty()
        for key, value in _empty().items():
            data.setdefault(key, value)
        return data

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """The index for update under the images lock; written back if the block succeeds."""
        with self.store.lock(LOCK):
            data = self.read()
            yield data
            self.store.write_json(self.path, data)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self.store.lock(LOCK):
            yield
