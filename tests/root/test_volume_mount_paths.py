"""A `type=tmpfs` volume under a data root whose path has a space: /proc/self/mountinfo
escapes it (`\\040`), and removal must still see the mount, unmount it and succeed."""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

import pytest

from engine.api import VolumeSpec
from engine.local import LocalEngine
from engine.volumes import is_mountpoint

pytestmark = pytest.mark.root
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def test_tmpfs_volume_under_a_root_with_a_space_is_removed_cleanly(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "data root")
    engine.volume_create(VolumeSpec(name="scratch", driver_opts=(("type", "tmpfs"),
                                                                  ("device", "tmpfs"))))
    data = tmp_path / "data root" / "volumes" / "scratch" / "_data"
    try:
        meta = engine._volume_meta("scratch")
        assert engine._volume_data_path(meta) == data
        (data / "kept.txt").write_text("x")
        assert is_mountpoint(data)
        engine.volume_remove("scratch")
        assert not data.exists()
    finally:
        with contextlib.suppress(OSError):
            if os.path.isdir(data):
                _libc.umount2(str(data).encode(), 2)
