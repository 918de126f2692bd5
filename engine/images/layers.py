"""Layers: the blob as received plus its unpacked directory `layers/<diff_id hex>/`.

Unpacked layers are in overlay form (whiteouts converted), so a layer's directory does
not depend on the layers below it: it is keyed by diff_id and shared between images.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.api import InvalidArgument
from engine.images.blobs import BlobStore
from engine.store import Store

if TYPE_CHECKING:  # the unpacker (tarfile, compressors, ctypes) loads when a layer comes in
    from engine.images.unpack import Unpacked

# Decompression-bomb bounds: the uncompressed stream may be at most ratio x the blob
# ($PYCOMPOSE_MAX_LAYER_RATIO, but at least FLOOR) and never more than the ceiling
# ($PYCOMPOSE_MAX_LAYER_BYTES).
DEFAULT_RATIO = 64
FLOOR = 256 << 20
DEFAULT_CEILING = 64 << 30


def ceiling() -> int:
    return int(os.environ.get("PYCOMPOSE_MAX_LAYER_BYTES", DEFAULT_CEILING))


def ratio() -> int:
    return int(os.environ.get("PYCOMPOSE_MAX_LAYER_RATIO", DEFAULT_RATIO))


def hexpart(digest: str) -> str:
    return digest.removeprefix("sha256:")


class LayerStore:
    """Stores layer blobs and unpacks them under `layers/`."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs
        self.dir = store.path("layers")

    def path(self, diff_id: str) -> Path:
        return self.dir / hexpart(diff_id)

    def exists(self, diff_id: str) -> bool:
        return self.path(diff_id).is_dir()

    def put(self, stream: IO[bytes], expected_blob: str | None = None,
            expected_diff_id: str | None = None) -> dict[str, Any]:
        """Store and unpack one layer; returns its index record (diff_id, blob, sizes).

        On any error nothing of the layer stays behind (blob, partial directory).
        """
        limit = ceiling()
        blob, blob_size, existed = self.blobs.put_stream(stream, expected=expected_blob,
                                                         limit=limit)
        try:
            with self.blobs.open(blob) as f:
                unpacked = self._unpack(f, min(limit, max(FLOOR, ratio() * blob_size)),
                                        expected_diff_id)
        except BaseException:
            if not existed:
                self.blobs.delete(blob)
            raise
        return {"diff_id": unpacked.diff_id, "blob": blob, "blob_size": blob_size,
                "size": unpacked.size, "tar_size": unpacked.tar_bytes,
                "compressed": blob != unpacked.diff_id}

    def _unpack(self, f: IO[bytes], max_bytes: int, expected_diff_id: str | None) -> Unpacked:
        from engine.images.unpack import unpack_to_new_dir

        # Layers may hold device nodes and setuid files: only root may traverse to them.
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        unpacked, tmp = unpack_to_new_dir(f, self.dir, max_bytes)
        try:
            if expected_diff_id is not None and unpacked.diff_id != expected_diff_id:
                raise InvalidArgument(f"layer diff_id mismatch: expected {expected_diff_id}, "
                                      f"got {unpacked.diff_id}")
            final = self.path(unpacked.diff_id)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # otherwise an identical layer won the race
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return unpacked

    def retire(self, diff_id: str, blob: str | None) -> Path | None:
        """Take a layer out of the store (call under the images lock; fast): its directory
        moves to a trash path that `purge` removes later, its blob is deleted."""
        path = self.path(diff_id)
        trash = self.dir / f".trash-{hexpart(diff_id)[:16]}-{uuid.uuid4().hex[:16]}"
        moved: Path | None = None
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, trash)
            moved = trash
        if blob:
            self.blobs.delete(blob)
        return moved

    @staticmethod
    def purge(trash: Path | None) -> None:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
