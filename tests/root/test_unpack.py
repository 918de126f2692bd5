"""Crafted layer tarballs against the unpacker (security-notes.md §3.4, moby/containerd cases).

Every case untars into `tmp/dest` next to `tmp/victim/hello` and checks, as moby's
`testBreakout` does, that nothing outside `dest` changed.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.api import InvalidArgument
from engine.images.unpack import unpack_stream, unpack_to_new_dir

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _remove_tmp(tmp_path: Path) -> Iterator[None]:
    """Unpacked layers hold device nodes and setuid files: never leave them behind."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "",
          mode: int = 0o644, **attrs: Any) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.size = kind, link, mode, len(data)
    ti.mtime = attrs.pop("mtime", 1_700_000_000)
    for key, value in attrs.items():
        setattr(ti, key, value)
    return ti, data


def d(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.DIRTYPE, mode=mode)


def sym(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.SYMTYPE, link=target, mode=0o777)


def hard(name: str, target: str, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.LNKTYPE, link=target, mode=mode)


def build(entries: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def snapshot(path: Path) -> dict[str, tuple[int, int, float, bytes]]:
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out[str(p)] = (st.st_mode, st.st_size, st.st_mtime, data)
    return out


class Scene:
    """`dest` to untar into and `victim` beside it (moby's breakout oracle)."""

    def __init__(self, tmp: Path) -> None:
        self.dest = tmp / "dest"
        self.victim = tmp / "victim"
        self.dest.mkdir()
        self.victim.mkdir()
        self.hello = self.victim / "hello"
        self.hello.write_text(uuid.uuid4().hex)
        os.chmod(self.hello, 0o400)
        self.before = snapshot(self.victim)

    def untar(self, entries: list[tuple[tarfile.TarInfo, bytes]], ok: bool = True) -> None:
        data = build(entries)
        if ok:
            unpack_stream(io.BytesIO(data), self.dest)
        else:
            with pytest.raises(InvalidArgument):
                unpack_stream(io.BytesIO(data), self.dest)

    def check(self) -> None:
        assert snapshot(self.victim) == self.before
        secret = self.hello.read_bytes()
        for p in self.dest.rglob("*"):
            if p.is_file() and not p.is_symlink():
                assert p.read_bytes() != secret, f"{p} holds the victim's content"
            if not p.is_symlink():
                assert p.lstat().st_ino != self.hello.stat().st_ino


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    s = Scene(tmp_path)
    yield s
    s.check()


@pytest.mark.parametrize("name", ["../victim/x", "/../victim/x", "./../victim/x",
                                  "a/../../victim/x"])
def test_dotdot_names_are_scoped(scene: Scene, name: str) -> None:
    scene.untar([entry(name, data=b"pwned")])
    assert (scene.dest / "victim" / "x").read_bytes() == b"pwned"


def test_absolute_name_is_scoped(scene: Scene) -> None:
    scene.untar([entry("/abs/x", data=b"in")])
    assert (scene.dest / "abs" / "x").read_bytes() == b"in"


def test_absolute_symlink_parent_resolves_inside(scene: Scene) -> None:
    scene.untar([d("etc"), sym("localetc", "/etc"), entry("localetc/passwd", data=b"x")])
    assert (scene.dest / "etc" / "passwd").read_bytes() == b"x"


def test_relative_escape_symlink_is_scoped(scene: Scene) -> None:
    scene.untar([d("tmp"), sym("l", "../../../../../../tmp"), entry("l/x", data=b"x")])
    assert (scene.dest / "tmp" / "x").read_bytes() == b"x"


def test_symlink_chain_is_scoped(scene: Scene) -> None:
    scene.untar([sym("a", "/b"), sym("b", "../.."), entry("a/x", data=b"x")])
    assert (scene.dest / "x").read_bytes() == b"x"


@pytest.mark.parametrize("target", ["../../victim", "VICTIM_ABS"])
def test_loophole_symlink_never_reaches_victim(scene: Scene, target: str) -> None:
    link = str(scene.victim) if target == "VICTIM_ABS" else target
    scene.untar([d("dir"), sym("dir/loophole", link),
                 entry("dir/loophole/newdir/newfile", data=b"x")], ok=False)


@pytest.mark.parametrize("target", ["../victim/hello", "/../victim/hello", "/etc/passwd",
                                    "VICTIM_ABS"])
def test_hardlink_out_is_rejected(scene: Scene, target: str) -> None:
    link = str(scene.hello) if target == "VICTIM_ABS" else target
    nlink = os.stat("/etc/passwd").st_nlink
    scene.untar([hard("h", link)], ok=False)
    assert os.stat("/etc/passwd").st_nlink == nlink


def test_hardlink_to_directory_is_rejected(scene: Scene) -> None:
    scene.untar([d("dir"), hard("h", "dir")], ok=False)
    scene.untar([hard("h", "../victim"), entry("h/file", data=b"x")], ok=False)


def test_hardlink_to_symlink_links_the_symlink(scene: Scene) -> None:
    scene.untar([sym("s", "/etc/passwd"), hard("h", "s")])
    h, s = (scene.dest / "h").lstat(), (scene.dest / "s").lstat()
    assert stat.S_ISLNK(h.st_mode) and h.st_ino == s.st_ino


def test_hardlink_symlink_chmod_does_not_follow(scene: Scene) -> None:
    scene.untar([sym("s", str(scene.hello)), hard("h", "s", mode=0o777),
                 sym("s2", str(scene.hello))])
    assert stat.S_IMODE(scene.hello.stat().st_mode) == 0o400


def test_symlink_overrides_directory_then_write(scene: Scene) -> None:
    name = f"x-{uuid.uuid4().hex}"
    scene.untar([d("foo"), sym("foo", "/"), entry(f"foo/tmp/{name}", data=b"x")])
    assert (scene.dest / "tmp" / name).read_bytes() == b"x"
    assert not Path("/tmp", name).exists()


def test_existing_symlink_in_target_is_scoped(scene: Scene) -> None:
    os.symlink(str(scene.victim), scene.dest / "link")
    scene.untar([entry("link/x", data=b"x")], ok=False)
    os.symlink("/", scene.dest / "rootlink")
    scene.untar([entry("rootlink/y", data=b"y")])
    assert (scene.dest / "y").read_bytes() == b"y"


@pytest.mark.parametrize("name", ["..", "", "."])
def test_odd_symlink_names_are_ignored(scene: Scene, name: str) -> None:
    scene.untar([d("a"), d("a/sub"), sym(name, "/etc")])
    assert not (scene.dest / "a").is_symlink() and (scene.dest / "a" / "sub").is_dir()
    assert not scene.dest.is_symlink()


def test_symlink_parent_relative_is_scoped(scene: Scene) -> None:
    scene.untar([d("a"), d("a/sub"), sym("a/sub/..", "/etc"), sym("b/", "/etc")])
    assert os.readlink(scene.dest / "a") == "/etc"
    assert os.readlink(scene.dest / "b") == "/etc"


@pytest.mark.parametrize("name", [".wh..", ".wh...", "etc/.wh..", "etc/.wh...", ".wh."])
def test_invalid_whiteouts(scene: Scene, name: str) -> None:
    scene.untar([d("etc"), entry(name)], ok=False)


def test_whiteout_of_symlink_removes_only_the_link(scene: Scene) -> None:
    scene.untar([sym("link", str(scene.victim)), entry(".wh.link")])
    st = (scene.dest / "link").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_whiteout_through_symlink_stays_inside(scene: Scene) -> None:
    scene.untar([sym("link", str(scene.victim)), entry("link/.wh.hello")], ok=False)
    scene.untar([entry("dne/../.wh.etc")])
    assert stat.S_ISCHR((scene.dest / "etc").lstat().st_mode)


def test_whiteouts_and_opaque_dirs_in_overlay_form(scene: Scene) -> None:
    scene.untar([d("a"), entry("a/.wh.f1"), d("b"), entry("b/.wh..wh..opq"),
                 entry("b/y", data=b"y"), d(".wh.etc"), entry(".wh.etc/file", data=b"f"),
                 entry(".wh..wh.plnk")])
    st = (scene.dest / "a" / "f1").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(scene.dest / "b", "trusted.overlay.opaque") == b"y"
    assert not (scene.dest / "b" / ".wh..wh..opq").exists()
    assert (scene.dest / ".wh.etc" / "file").read_bytes() == b"f"
    assert not (scene.dest / ".wh..wh.plnk").exists()


def test_devices_fifo_and_ranges(scene: Scene) -> None:
    scene.untar([entry("mem", tarfile.CHRTYPE, devmajor=1, devminor=1, mode=0o640),
                 entry("sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
                 entry("fifo", tarfile.FIFOTYPE, mode=0o620)])
    mem = (scene.dest / "mem").lstat()
    assert stat.S_ISCHR(mem.st_mode) and mem.st_rdev == os.makedev(1, 1)
    assert stat.S_IMODE(mem.st_mode) == 0o640
    assert stat.S_ISBLK((scene.dest / "sda").lstat().st_mode)
    fifo = (scene.dest / "fifo").lstat()
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    scene.untar([entry("big", tarfile.CHRTYPE, devmajor=2**32, devminor=0)], ok=False)
    assert not (scene.dest / "big").exists()


def test_unknown_type_rejected_global_header_ignored(scene: Scene) -> None:
    scene.untar([entry("weird", b"Z", data=b"zz")], ok=False)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as tar:
        ti, data = entry("after-global", data=b"ok")
        tar.addfile(ti, io.BytesIO(data))
    unpack_stream(io.BytesIO(buf.getvalue()), scene.dest)
    assert (scene.dest / "after-global").read_bytes() == b"ok"


def test_setuid_owner_and_modes_kept(scene: Scene) -> None:
    scene.untar([entry("su", data=b"#!", mode=0o4755, uid=0, gid=0),
                 entry("sg", data=b"#!", mode=0o2755, uid=1000, gid=1000),
                 d("sticky", mode=0o1777), entry("big-mode", data=b"m", mode=0o177777)])
    su, sg = (scene.dest / "su").stat(), (scene.dest / "sg").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert stat.S_IMODE(sg.st_mode) == 0o2755 and (sg.st_uid, sg.st_gid) == (1000, 1000)
    assert stat.S_IMODE((scene.dest / "sticky").stat().st_mode) == 0o1777
    assert stat.S_IMODE((scene.dest / "big-mode").stat().st_mode) == 0o7777


def test_xattrs_filtered(scene: Scene) -> None:
    ti, data = entry("f", data=b"x")
    ti.pax_headers = {"SCHILY.xattr.user.keep": "yes",
                      "SCHILY.xattr.trusted.overlay.opaque": "y",
                      "SCHILY.xattr.security.selinux": "system_u:object_r:x"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(ti, io.BytesIO(data))
    unpack_stream(io.BytesIO(buf.getvalue()), scene.dest)
    names = os.listxattr(scene.dest / "f")
    assert os.getxattr(scene.dest / "f", "user.keep") == b"yes"
    assert "trusted.overlay.opaque" not in names


def test_bad_ids_and_times(scene: Scene) -> None:
    scene.untar([entry("u", data=b"x", uid=2**32 - 1)], ok=False)
    scene.untar([entry("old", data=b"x", mtime=-86400), entry("future", data=b"x",
                                                                mtime=4_102_444_800)])
    assert (scene.dest / "future").stat().st_mtime == 4_102_444_800


def test_symlink_loop_fails_cleanly(scene: Scene) -> None:
    scene.untar([sym("a", "b"), sym("b", "a"), entry("a/x", data=b"x")], ok=False)


def test_long_names_fail_cleanly(scene: Scene) -> None:
    scene.untar([entry("n" * 256, data=b"x")], ok=False)
    scene.untar([entry("/".join(["d" * 200] * 22), data=b"x")], ok=False)
    scene.untar([entry("n" * 255, data=b"ok")])


def test_nul_in_name_rejected(scene: Scene) -> None:
    ti, data = entry("ok", data=b"x")
    ti.pax_headers = {"path": "a\x00b"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(ti, io.BytesIO(data))
    with pytest.raises(InvalidArgument):
        unpack_stream(io.BytesIO(buf.getvalue()), scene.dest)


def test_duplicates_last_wins(scene: Scene) -> None:
    scene.untar([entry("x", data=b"file"), d("x"), entry("x/in", data=b"in"),
                 d("y"), entry("y/child", data=b"c"), entry("y", data=b"now a file"),
                 entry("..gitme", data=b"dots")])
    assert (scene.dest / "x" / "in").read_bytes() == b"in"
    assert (scene.dest / "y").read_bytes() == b"now a file"
    assert (scene.dest / "..gitme").read_bytes() == b"dots"


def _layer_dirs(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def test_gzip_bomb_stopped_and_partial_layer_removed(scene: Scene, tmp_path: Path) -> None:
    bomb = gzip.compress(build([entry("zeros", data=b"\0" * (32 << 20))]), 9)
    assert len(bomb) < (1 << 20)
    layers = tmp_path / "layers"
    with pytest.raises(InvalidArgument, match="limit"):
        unpack_to_new_dir(io.BytesIO(bomb), layers, max_bytes=8 << 20)
    assert _layer_dirs(layers) == []


def test_sparse_declared_size_counts(scene: Scene, tmp_path: Path) -> None:
    ti, _ = entry("declared", data=b"")
    ti.size = 64 << 20  # declared size larger than the budget; data never needed
    raw = ti.tobuf(tarfile.GNU_FORMAT)
    with pytest.raises(InvalidArgument):
        unpack_to_new_dir(io.BytesIO(raw + b"\0" * 1024), tmp_path / "l", max_bytes=1 << 20)
    assert _layer_dirs(tmp_path / "l") == []


@pytest.mark.parametrize("damage", ["truncate", "checksum", "garbage-gzip"])
def test_damaged_archives(tmp_path: Path, damage: str) -> None:
    data = build([entry("a", data=b"a" * 5000), entry("b", data=b"b")])
    if damage == "truncate":
        data = data[:1500]
    elif damage == "checksum":
        data = data[:148] + b"0000000\0" + data[156:]
    else:
        data = gzip.compress(data)[:-40]
    with pytest.raises(InvalidArgument):
        unpack_to_new_dir(io.BytesIO(data), tmp_path / "l")
    assert _layer_dirs(tmp_path / "l") == []


def test_trailing_garbage_and_missing_eof_blocks(tmp_path: Path) -> None:
    data = build([entry("a", data=b"a")])
    stripped = data[:1024]  # header + data, no end-of-archive blocks
    dest = tmp_path / "l"
    dest.mkdir()
    result = unpack_stream(io.BytesIO(stripped), dest)
    assert (dest / "a").read_bytes() == b"a"
    import hashlib

    assert result.diff_id == "sha256:" + hashlib.sha256(stripped).hexdigest()


def test_overlay_mount_honours_converted_whiteouts(tmp_path: Path) -> None:
    lower1, lower2 = tmp_path / "l1", tmp_path / "l2"
    lower1.mkdir()
    lower2.mkdir()
    unpack_stream(io.BytesIO(build([d("a"), entry("a/f1", data=b"1"), entry("a/f2", data=b"2"),
                                    d("b"), entry("b/x", data=b"x")])), lower1)
    unpack_stream(io.BytesIO(build([d("a"), entry("a/.wh.f1"), d("b"),
                                    entry("b/.wh..wh..opq"), entry("b/y", data=b"y")])), lower2)
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower2}:{lower1}", str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "a")) == ["f2"]
        assert sorted(os.listdir(merged / "b")) == ["y"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_many_entries_finish_quickly(tmp_path: Path) -> None:
    import time

    entries = [d("many")] + [entry(f"many/f{i}", data=b"") for i in range(2000)]
    dest = tmp_path / "l"
    dest.mkdir()
    t0 = time.monotonic()
    unpack_stream(io.BytesIO(build(entries)), dest)
    assert time.monotonic() - t0 < 10
    assert len(os.listdir(dest / "many")) == 2000




def test_free_space_checked_against_declared_sizes(tmp_path: Path) -> None:
    from engine.api import EngineRuntimeError

    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        ti, _ = entry("big", data=b"")
        ti.size = 8 << 20
        raw = ti.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024
        with pytest.raises(EngineRuntimeError, match="disk space"):
            unpack_to_new_dir(io.BytesIO(raw), small / "layers")
        assert _layer_dirs(small / "layers") == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
