"""TarWriter.add with `..` in the path: it is clamped at the root (as for the container's
own processes), so `/..` archives the root itself, never the directory above it."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from engine.runtime.ops_archive import TarWriter


@pytest.mark.parametrize("path", ["/..", "..", "/../..", "/etc/../.."])
def test_dotdot_at_the_root_stays_inside(tmp_path: Path, path: str) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("ctr\n")
    (tmp_path / "host-secret.txt").write_text("secret\n")
    out = io.BytesIO()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        writer = TarWriter(out)
        writer.add(root_fd, path, "root")
        writer.close()
    finally:
        os.close(root_fd)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = sorted(tar.getnames())
    assert names == ["root", "root/etc", "root/etc/hostname"]
