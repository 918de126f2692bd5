"""Docker reference parsing and normalisation (distribution/reference semantics)."""

from __future__ import annotations

import pytest

from engine.api import InvalidArgument
from engine.images import reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("ref", "canonical"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/busybox:1", "docker.io/library/busybox:1"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("localhost/app:v1", "localhost/app:v1"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:1.0"),
    ("registry.example.com/a/b/c:tag", "registry.example.com/a/b/c:tag"),
    ("Example.com/app", "Example.com/app:latest"),
    ("[::1]:5000/app", "[::1]:5000/app:latest"),
    ("my_app__x-y/app.v2", "docker.io/my_app__x-y/app.v2:latest"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}"),
    (f"busybox:1.36@{D}", f"docker.io/library/busybox:1.36@{D}"),
    (f"localhost:5000/app@{D}", f"localhost:5000/app@{D}"),
])
def test_normalize(ref: str, canonical: str) -> None:
    assert reference.normalize(ref) == canonical


@pytest.mark.parametrize(("canonical", "short"), [
    ("docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/user/app:1", "user/app:1"),
    ("docker.io/library/a/b:1", "library/a/b:1"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
    (f"docker.io/library/busybox@{D}", f"busybox@{D}"),
])
def test_familiar(canonical: str, short: str) -> None:
    assert reference.familiar(canonical) == short


@pytest.mark.parametrize(("ref", "why"), [
    ("Busybox", "must be lowercase"),
    ("user/App:1", "must be lowercase"),
    ("busybox:", "invalid tag"),
    (":tag", "invalid repository name"),
    ("a b", "whitespace"),
    ("", "empty"),
    ("-bad", "invalid repository name"),
    ("bad-/x", "invalid repository name"),
    ("busybox@sha256:abc", "invalid"),
    ("busybox:" + "t" * 129, "invalid tag"),
    ("busybox:.tag", "invalid tag"),
    ("a" * 64, "64-byte hexadecimal"),
    ("x/" + "a" * 260, "more than 255"),
    ("exa_mple.com:5000/app", "invalid"),
])
def test_invalid(ref: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        reference.parse(ref)


def test_parts() -> None:
    r = reference.parse("localhost:5000/team/app")
    assert (r.domain, r.path, r.tag, r.digest) == ("localhost:5000", "team/app", "latest", None)
    assert r.familiar_name == "localhost:5000/team/app"
    assert reference.parse("busybox", default_tag=False).tag is None


def test_ids() -> None:
    assert reference.is_image_id("sha256:" + "0" * 64)
    assert not reference.is_image_id("0" * 64)
    assert reference.looks_like_id_prefix("sha256:abc12")
    assert reference.looks_like_id_prefix("abc12")
    assert not reference.looks_like_id_prefix("busybox")
