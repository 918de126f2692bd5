"""Layer unpacking pieces that need no root: name scoping, header bombs, compression."""

from __future__ import annotations

import gzip
import io
import lzma
import resource
import tarfile

import pytest

from engine.api import InvalidArgument
from engine.images.blobs import HashingReader
from engine.images.unpack import MAX_SPECIAL_HEADER, GuardedTarInfo, clean_name, decompressed


@pytest.mark.parametrize(("name", "parts"), [
    ("a/b/c", ["a", "b", "c"]),
    ("./a//b/", ["a", "b"]),
    ("../victim/x", ["victim", "x"]),
    ("/../victim/x", ["victim", "x"]),
    ("/abs/x", ["abs", "x"]),
    ("./../x", ["x"]),
    ("a/../../x", ["x"]),
    ("a/sub/..", ["a"]),
    ("..", []),
    ("", []),
    ("..gitme", ["..gitme"]),
])
def test_clean_name_scopes_into_root(name: str, parts: list[str]) -> None:
    assert clean_name(name) == parts


def test_clean_name_rejects_nul() -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        clean_name("a\x00b")


def _tar(build: object, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        build(tar)  # type: ignore[operator]
    return buf.getvalue()


def _list(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", tarinfo=GuardedTarInfo) as tar:
        return [m.name for m in tar]


@pytest.mark.parametrize("kind", ["pax", "gnu-longname", "gnu-longlink"])
def test_special_headers_over_1mib_are_refused_before_buffering(kind: str) -> None:
    big = "x" * (MAX_SPECIAL_HEADER + 1)

    def build(tar: tarfile.TarFile) -> None:
        ti = tarfile.TarInfo("f")
        if kind == "pax":
            ti.pax_headers = {"comment": big}
        elif kind == "gnu-longname":
            ti.name = big
        else:
            ti.type, ti.linkname = tarfile.SYMTYPE, big
        tar.addfile(ti, io.BytesIO(b""))

    data = _tar(build, tarfile.PAX_FORMAT if kind == "pax" else tarfile.GNU_FORMAT)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InvalidArgument, match="special header"):
        _list(data)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 8 * 1024


def test_small_special_headers_pass() -> None:
    def build(tar: tarfile.TarFile) -> None:
        ti = tarfile.TarInfo("d/" + "n" * 300)
        ti.pax_headers = {"comment": "ok"}
        tar.addfile(ti, io.BytesIO(b""))

    assert _list(_tar(build)) == ["d/" + "n" * 300]
    assert _list(_tar(build, tarfile.GNU_FORMAT)) == ["d/" + "n" * 300]


@pytest.mark.parametrize("compress", [None, gzip.compress, lzma.compress])
def test_decompressed_detects_the_format(compress: object) -> None:
    payload = b"hello tar" * 100
    data = compress(payload) if compress else payload  # type: ignore[operator]
    assert decompressed(io.BytesIO(data)).read() == payload


def test_zstd_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgument, match="zstd"):
        decompressed(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 16))


def test_hashing_reader_caps_the_stream() -> None:
    bomb = gzip.compress(b"\0" * (4 << 20))
    reader = HashingReader(decompressed(io.BytesIO(bomb)), limit=1 << 20)
    with pytest.raises(InvalidArgument, match="size limit"):
        reader.drain()
