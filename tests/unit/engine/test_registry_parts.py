"""The registry client's pure parts: challenges, credentials file, endpoints, platform
choice, error texts and the CLI's progress lines (no network, no root)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from compose.cli.commands._registry import _canonical, progress_printer
from engine.api import InvalidArgument, Progress, RegistryError
from engine.images import registry_auth
from engine.images.registry import error_text
from engine.images.registry_config import RegistryConfig
from engine.images.registry_service import RegistryService, _server_domain


def test_bearer_challenge_is_parsed() -> None:
    c = registry_auth.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}
    basic = registry_auth.parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"
    assert registry_auth.parse_challenge("") is None


def test_credentials_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({
        "auths": {"https://index.docker.io/v1/": {
            "auth": base64.b64encode(b"hub:pw:with:colons").decode()}},
        "credsStore": "", "psFormat": "kept"}))
    assert registry_auth.load_credentials("docker.io") == registry_auth.Credentials(
        "hub", "pw:with:colons")
    assert registry_auth.load_credentials("localhost:5000") is None

    registry_auth.save_credentials("localhost:5000", registry_auth.Credentials("u", "p"))
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["psFormat"] == "kept"  # other settings survive
    assert base64.b64decode(data["auths"]["localhost:5000"]["auth"]) == b"u:p"
    assert registry_auth.load_credentials("http://localhost:5000/v2/") == \
        registry_auth.Credentials("u", "p")
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o600

    assert registry_auth.remove_credentials("docker.io") is True
    assert registry_auth.remove_credentials("docker.io") is False
    assert registry_auth.load_credentials("docker.io") is None

    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match="config.json"):
        registry_auth.load_credentials("docker.io")


def test_endpoints_insecure_and_mirrors(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYCOMPOSE_DAEMON_CONFIG", raising=False)
    (tmp_path / "daemon.json").write_text(json.dumps({
        "insecure-registries": ["reg.lan:5000", "10.1.0.0/16"],
        "registry-mirrors": ["https://mirror.example/"]}))
    config = RegistryConfig.load(tmp_path)
    assert config.is_insecure("localhost:5000") and config.is_insecure("127.0.0.1:5000")
    assert config.is_insecure("[::1]:5000")
    assert config.is_insecure("reg.lan:5000") and config.is_insecure("10.1.2.3:443")
    assert not config.is_insecure("reg.lan:6000") and not config.is_insecure("ghcr.io")

    hub = config.endpoints("docker.io")
    assert [(e.host, e.schemes, e.mirror) for e in hub] == [
        ("mirror.example", ("https",), True), ("registry-1.docker.io", ("https",), False)]
    assert all(e.verify for e in hub)
    (lan,) = config.endpoints("reg.lan:5000")
    assert lan.schemes == ("https", "http") and not lan.verify
    (ghcr,) = config.endpoints("ghcr.io")
    assert ghcr.schemes == ("https",) and ghcr.verify

    (tmp_path / "daemon.json").write_text('{"insecure-registries": "reg.lan"}')
    with pytest.raises(InvalidArgument, match="must be a list"):
        RegistryConfig.load(tmp_path)


def test_platform_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    index = {"manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    monkeypatch.setenv("PYCOMPOSE_PLATFORM", "linux/amd64")
    assert RegistryService._registry_pick_platform(index, "r") == "sha256:" + "b" * 64
    monkeypatch.setenv("PYCOMPOSE_PLATFORM", "linux/arm64/v8")
    assert RegistryService._registry_pick_platform(index, "r") == "sha256:" + "a" * 64
    monkeypatch.setenv("PYCOMPOSE_PLATFORM", "windows/amd64")
    with pytest.raises(RegistryError, match="offered: linux/amd64, linux/arm64"):
        RegistryService._registry_pick_platform(index, "r")


def test_error_texts_and_names() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
    assert error_text(body) == "manifest unknown: manifest unknown"
    assert error_text(b"<html>") == ""
    assert _server_domain("https://index.docker.io/v1/") == "docker.io"
    assert _server_domain("localhost:5000") == "localhost:5000"
    assert _canonical("busybox") == "docker.io/library/busybox:latest"
    assert _canonical("127.0.0.1:5000/a/b") == "127.0.0.1:5000/a/b:latest"
    assert _canonical("me/app@sha256:" + "c" * 64) == "docker.io/me/app@sha256:" + "c" * 64


def test_progress_lines_without_a_terminal() -> None:
    out = io.StringIO()
    show = progress_printer(out)
    for p in (Progress("1", "Pulling from test/busybox"),
              Progress("abc", "Pulling fs layer"),
              Progress("abc", "Downloading", 10, 20), Progress("abc", "Downloading", 20, 20),
              Progress("abc", "Pull complete", 20, 20), Progress("", "Digest: sha256:x")):
        show(p)
    assert out.getvalue().splitlines() == ["1: Pulling from test/busybox",
                                           "abc: Pulling fs layer", "abc: Pull complete",
                                           "Digest: sha256:x"]
    quiet = io.StringIO()
    progress_printer(quiet, quiet=True)(Progress("abc", "Pull complete"))
    assert quiet.getvalue() == ""
