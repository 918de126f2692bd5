"""Volume, network and container names are checked as Docker does: a trailing newline
(which Python's `$` would let through) is refused before anything is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import ContainerSpec, InvalidArgument, NetworkSpec, VolumeSpec
from engine.local import LocalEngine


@pytest.mark.parametrize("name", ["data\n", "a\n", "../x", ".hidden"])
def test_volume_name_is_refused(tmp_path: Path, name: str) -> None:
    engine = LocalEngine(tmp_path / "root")
    with pytest.raises(InvalidArgument, match="invalid characters"):
        engine.volume_create(VolumeSpec(name=name))
    assert not (tmp_path / "root" / "volumes").exists() or \
        list((tmp_path / "root" / "volumes").iterdir()) == []


def test_network_name_with_newline_is_refused(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "root")
    with pytest.raises(InvalidArgument):
        engine.network_create(NetworkSpec(name="front\n"))


def test_container_name_with_newline_is_refused(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "root")
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        engine.container_create(ContainerSpec(image="busybox", name="web\n"))
