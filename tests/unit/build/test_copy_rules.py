"""COPY's destination rules and the layer entries it writes, over a fake image (no root)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from engine.api import BuildError
from engine.build import copyops
from engine.build.fstree import DirTree, LayeredTree
from engine.build.layertar import LayerWriter


@pytest.fixture
def image(tmp_path: Path) -> LayeredTree:
    """Two layers: /tmp (1777), /srv/dir, /var/run -> /run; the top one replaces /srv/dir."""
    low, top = tmp_path / "l0", tmp_path / "l1"
    for d in ("tmp", "srv/dir", "run"):
        (low / d).mkdir(parents=True)
    os.chmod(low / "tmp", 0o1777)
    (low / "var").mkdir()
    os.symlink("/run", low / "var" / "run")
    (top / "srv").mkdir(parents=True)
    (top / "srv" / "file").write_text("a file")
    return LayeredTree([low, top])


@pytest.fixture
def context(tmp_path: Path) -> DirTree:
    ctx = tmp_path / "ctx"
    (ctx / "dir" / "sub").mkdir(parents=True)
    (ctx / "a.txt").write_text("a")
    (ctx / "dir" / "sub" / "b.txt").write_text("b")
    os.chmod(ctx / "a.txt", 0o640)
    return DirTree(ctx)


def entries(image: LayeredTree, context: DirTree, srcs: list[str], dest: str,
            owner: copyops.Owner | None = None, chmod: int | None = None
            ) -> dict[str, tarfile.TarInfo]:
    owner = owner or copyops.Owner()
    writer = LayerWriter()
    try:
        items = [copyops.CopyItem(context, context.resolve(s) or [], s) for s in srcs]
        copyops.copy(writer, image, items, dest, owner, chmod, multiple=len(srcs) > 1)
        with tarfile.open(fileobj=writer.finish()) as tar:
            return {ti.name: ti for ti in tar.getmembers()}
    finally:
        writer.close()


def test_file_to_new_path_and_to_existing_dir(image: LayeredTree, context: DirTree) -> None:
    assert "new/name.txt" in entries(image, context, ["a.txt"], "/new/name.txt")
    assert "srv/dir/a.txt" in entries(image, context, ["a.txt"], "/srv/dir")
    assert "tmp/a.txt" in entries(image, context, ["a.txt"], "/tmp/")


def test_existing_parents_keep_their_metadata(image: LayeredTree, context: DirTree) -> None:
    got = entries(image, context, ["a.txt"], "/tmp/x/")
    assert got["tmp"].mode == 0o1777 and got["tmp/x"].mode == 0o755
    assert got["tmp/x/a.txt"].mode == 0o640 and got["tmp/x/a.txt"].uid == 0


def test_directory_copies_its_contents(image: LayeredTree, context: DirTree) -> None:
    got = entries(image, context, ["dir"], "/opt", owner=copyops.Owner(1000, 1000),
                  chmod=0o700)
    assert {"opt", "opt/sub", "opt/sub/b.txt"} <= set(got)
    assert "opt/dir" not in got
    assert got["opt/sub/b.txt"].uid == 1000 and got["opt/sub/b.txt"].mode == 0o700


def test_destination_symlinks_are_followed_in_the_image(image: LayeredTree,
                                                        context: DirTree) -> None:
    assert "run/a.txt" in entries(image, context, ["a.txt"], "/var/run/")


def test_multiple_sources_need_a_directory(image: LayeredTree, context: DirTree) -> None:
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        entries(image, context, ["a.txt", "dir"], "/x")
    with pytest.raises(BuildError, match="cannot copy to non-directory"):
        entries(image, context, ["a.txt"], "/srv/file/x/")


def test_content_digest_ignores_mtime(context: DirTree) -> None:
    item = [copyops.CopyItem(context, ["a.txt"], "a.txt")]
    before = copyops.content_digest(item)
    os.utime(context.root / "a.txt", (1, 1))
    assert copyops.content_digest(item) == before
    (context.root / "a.txt").write_text("changed")
    assert copyops.content_digest(item) != before


def test_run_diff_keeps_xattrs_and_whiteout_free_stubs(tmp_path: Path) -> None:
    from engine.build.layertar import diff_upper

    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("")  # a mount-point stub: left out
    (upper / "bin").mkdir()
    tool = upper / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    try:
        os.setxattr(tool, "user.pyc-test", b"\xff\x01binary")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    writer = LayerWriter()
    try:
        diff_upper(upper, LayeredTree([lower]), writer)
        with tarfile.open(fileobj=writer.finish()) as tar:
            members = {ti.name: ti for ti in tar.getmembers()}
    finally:
        writer.close()
    assert set(members) == {"bin", "bin/tool"}
    value = members["bin/tool"].pax_headers["SCHILY.xattr.user.pyc-test"]
    assert value.encode("utf-8", "surrogateescape") == b"\xff\x01binary"
