"""Resolving `user:` from an image's /etc/passwd and /etc/group, as text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.api import InvalidArgument
from engine.runtime.user import read_image_file, resolve, resolve_in_layers

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nwww:x:33:app,web\nextra:x:50:app\n"


def test_defaults_to_root_with_home() -> None:
    u = resolve(None, (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (0, 0, "/root")


def test_name_and_supplementary_groups_from_membership() -> None:
    u = resolve("app", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (1000, 1000, "/home/app")
    assert u.groups == (33, 50)


def test_uid_only_and_unknown_uid() -> None:
    assert resolve("33", (), PASSWD, GROUP).gid == 33
    u = resolve("4242", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (4242, 0, "/")


def test_explicit_group_by_name_or_id_and_group_add() -> None:
    u = resolve("app:www", ("extra", "77"), PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 33)
    assert u.groups == (50, 77)
    assert resolve("1000:5", (), PASSWD, GROUP).gid == 5


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        resolve("nobody", (), PASSWD, GROUP)
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        resolve("app:nogroup", (), PASSWD, GROUP)


def test_top_layer_wins_and_whiteouts_hide(tmp_path: Path) -> None:
    low, high = tmp_path / "l0", tmp_path / "l1"
    for d in (low, high):
        (d / "etc").mkdir(parents=True)
    (low / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (low / "etc/group").write_text("root:x:0:\n")
    (high / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:7:7::/srv:/bin/sh\n")
    assert resolve_in_layers("svc", (), [low, high]).uid == 7
    os.unlink(high / "etc/passwd")
    if os.geteuid() == 0:
        os.mknod(high / "etc/passwd", 0o600 | 0o020000, os.makedev(0, 0))  # whiteout
        assert read_image_file([low, high], "etc/passwd") == ""
    else:
        assert "svc" not in read_image_file([low, high], "etc/passwd")


def test_symlinks_cannot_reach_host_files(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    secret = tmp_path / "host-secret"
    secret.write_text("evil:x:0:0::/:/bin/sh\n")
    os.symlink(str(secret), layer / "etc/passwd")  # absolute: resolves inside the layer
    assert read_image_file([layer], "etc/passwd") == ""
    os.unlink(layer / "etc/passwd")
    os.symlink("../../host-secret", layer / "etc/passwd")
    assert read_image_file([layer], "etc/passwd") == ""
