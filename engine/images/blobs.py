"""Content-addressed blobs: `blobs/sha256/<hex>`, written once, verified by their digest."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from engine.api import InvalidArgument, NotFound

CHUNK = 1 << 20


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef"
                                                     for c in hexpart):
        raise InvalidArgument(f"unsupported or malformed digest: {digest!r}")
    return hexpart


class HashingReader:
    """Wraps a binary stream: hashes and counts every byte read, and caps the total."""

    def __init__(self, stream: IO[bytes], limit: int | None = None) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.count = 0
        self.limit = limit

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise InvalidArgument(f"archive exceeds the size limit of {self.limit} bytes")
        return data

    def drain(self) -> None:
        """Read to the end so the digest covers the whole stream (tar padding included)."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class BlobStore:
    """Blobs under `<root>/blobs/sha256/`."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        return self.dir / _hex(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> IO[bytes]:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        digest = digest_bytes(data)
        if expected is not None and expected != digest:
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        if not self.exists(digest):
            self._commit(digest, lambda f: f.write(data))
        return digest

    def put_stream(self, stream: IO[bytes], expected: str | None = None,
                   limit: int | None = None) -> tuple[str, int, bool]:
        """Copy a stream into the store; returns (digest, size, whether it was already
        there). Verifies `expected`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".incoming-")
        try:
            reader = HashingReader(stream, limit)
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = reader.digest
            if expected is not None and expected != digest:
                raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
            existed = self.exists(digest)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path(digest))
            return digest, reader.count, existed
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _commit(self, digest: str, write: Callable[[IO[bytes]], object]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path(digest))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def all(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return ["sha256:" + p.name for p in self.dir.iterdir() if not p.name.startswith(".")]
