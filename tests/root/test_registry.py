"""The registry client against Debian's docker-registry on 127.0.0.1: push, pull back (by
tag, digest and through an index), basic and bearer auth, clear errors, the CLI."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import NotFound, Progress, RegistryError
from engine.local import LocalEngine
from tests.conftest import unique
from tests.root.runtime_fixtures import cleanup_engine, run
from tests.support import registry as reg

pytestmark = pytest.mark.root

REPO = "test/busybox"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private Docker config dir; unpacked layers (device nodes) removed afterwards."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.delenv("PYCOMPOSE_PLATFORM", raising=False)
    monkeypatch.delenv("PYCOMPOSE_DAEMON_CONFIG", raising=False)
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def engine(engine_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEngine]:
    monkeypatch.setenv("PYCOMPOSE_CGROUP_PARENT", unique("pyrg"))
    monkeypatch.setenv("PYCOMPOSE_ROOT", str(engine_root))
    eng = LocalEngine(engine_root)
    try:
        yield eng
    finally:
        cleanup_engine(eng)


@pytest.fixture
def busybox(engine: LocalEngine, busybox_tar: Path) -> str:
    return engine.image_import(str(busybox_tar), "busybox:reg", ('CMD ["sh"]',)).id


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[reg.Registry]:
    with reg.run_registry(tmp_path / "registry") as r:
        yield r


def _statuses(events: list[Progress]) -> list[str]:
    return [p.status for p in events]


def _raw(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.status, dict(resp.headers), resp.read()


# ------------------------------------------------------------------ round trip


def test_push_remove_pull_gives_same_image_that_runs(engine: LocalEngine, busybox: str,
                                                     registry: reg.Registry) -> None:
    ref = f"{registry.host}/{REPO}:1"
    engine.image_tag("busybox:reg", ref)
    events: list[Progress] = []
    digest = engine.image_push(ref, events.append)
    assert digest.startswith("sha256:")
    assert "Pushed" in _statuses(events)
    assert any(p.status == "Pushing" and p.current == p.total > 0 for p in events)
    # The manifest is stable: a second push uploads nothing and gives the same digest.
    again: list[Progress] = []
    assert engine.image_push(ref, again.append) == digest
    assert "Layer already exists" in _statuses(again) and "Pushed" not in _statuses(again)
    diff_ids = engine.image_inspect(busybox).diff_ids

    engine.image_remove(ref)
    engine.image_remove("busybox:reg")
    assert engine.image_list() == []

    pulled: list[Progress] = []
    image = engine.image_pull(ref, pulled.append)
    assert image.id == busybox
    assert image.diff_ids == diff_ids
    assert f"{registry.host}/{REPO}:1" in image.repo_tags
    assert f"{registry.host}/{REPO}@{digest}" in image.repo_digests
    assert _statuses(pulled).index("Download complete") < _statuses(pulled).index(
        "Pull complete")
    assert f"Digest: {digest}" in _statuses(pulled)
    assert any(p.status == "Downloading" and p.current == p.total > 0 for p in pulled)

    code, out, _ = run(engine, "echo pulled-and-running", image=ref)
    assert (code, out) == (0, "pulled-and-running\n")


def test_pull_by_digest_and_unknown_tag(engine: LocalEngine, busybox: str,
                                        registry: reg.Registry) -> None:
    ref = f"{registry.host}/{REPO}:1"
    engine.image_tag("busybox:reg", ref)
    digest = engine.image_push(ref)
    engine.image_remove(ref)
    engine.image_remove("busybox:reg")

    image = engine.image_pull(f"{registry.host}/{REPO}@{digest}")
    assert image.id == busybox
    assert image.repo_tags == ()  # a pull by digest adds no tag
    assert engine.image_inspect(f"{registry.host}/{REPO}@{digest}").id == busybox

    with pytest.raises(RegistryError, match="manifest unknown") as exc:
        engine.image_pull(f"{registry.host}/{REPO}:nope")
    assert f"{registry.host}/{REPO}:nope" in str(exc.value)
    missing = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="manifest unknown"):
        engine.image_pull(f"{registry.host}/{REPO}@{missing}")
    with pytest.raises(NotFound, match="An image does not exist locally with the tag: "
                       f"{registry.host}/{REPO}:other"):
        engine.image_push(f"{registry.host}/{REPO}:other")


def test_tampered_blob_is_refused_and_nothing_stays(engine: LocalEngine, busybox: str,
                                                    registry: reg.Registry) -> None:
    ref = f"{registry.host}/{REPO}:1"
    engine.image_tag("busybox:reg", ref)
    engine.image_push(ref)
    blob = engine._image_layer_blobs(busybox)[0]["digest"].removeprefix("sha256:")
    engine.image_remove(ref)
    engine.image_remove("busybox:reg")
    data = registry.storage / "docker/registry/v2/blobs/sha256" / blob[:2] / blob / "data"
    raw = bytearray(data.read_bytes())
    raw[600] ^= 0xFF  # inside the first file's content: still a valid tar
    data.write_bytes(bytes(raw))

    with pytest.raises(RegistryError, match="failed verification"):
        engine.image_pull(ref)
    assert engine.image_list() == []
    layers = engine.store.path("layers")
    assert not layers.exists() or not [p for p in layers.iterdir()]


def test_chunked_upload_and_cross_repository_mount(engine: LocalEngine, busybox: str,
                                                   registry: reg.Registry,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCOMPOSE_PUSH_CHUNK_SIZE", str(256 << 10))
    first, second = f"{registry.host}/test/one:1", f"{registry.host}/test/two:1"
    engine.image_tag("busybox:reg", first)
    engine.image_tag("busybox:reg", second)
    events: list[Progress] = []
    digest = engine.image_push(first, events.append)
    pushing = [p.current for p in events if p.status == "Pushing"]
    assert len(pushing) > 2 and pushing == sorted(pushing)  # several PATCH chunks

    mounted: list[Progress] = []
    assert engine.image_push(second, mounted.append) == digest
    assert "Mounted from test/one" in _statuses(mounted)
    assert "Pushing" not in _statuses(mounted)

    for ref in (first, second, "busybox:reg"):
        engine.image_remove(ref)
    assert engine.image_pull(second).id == busybox


def _layer_tar(path: Path, files: dict[str, bytes], compress: bool = False) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue(), mtime=0) if compress else buf.getvalue())
    return path


def test_multi_layer_image_round_trip(engine: LocalEngine, busybox: str,
                                      registry: reg.Registry, tmp_path: Path) -> None:
    config = engine._image_config(busybox)
    diff_ids = list(config["rootfs"]["diff_ids"])
    for i, compress in enumerate((False, True)):
        tar = _layer_tar(tmp_path / f"layer{i}.tar", {f"etc/layer{i}": f"{i}\n".encode()},
                         compress)
        with open(tar, "rb") as f:
            diff_ids.append(engine._image_store_layer(f)[0])
    config["rootfs"]["diff_ids"] = diff_ids
    config["history"] = [{"created_by": f"layer {i}"} for i in range(len(diff_ids))]
    ref = f"{registry.host}/test/layers:3"
    image = engine._image_register(config, [ref])
    digest = engine.image_push(ref)
    engine.image_remove(ref)

    events: list[Progress] = []
    pulled = engine.image_pull(ref, events.append)
    assert pulled.id == image.id and list(pulled.diff_ids) == diff_ids
    assert _statuses(events).count("Already exists") == 1  # busybox's layer is still here
    assert _statuses(events).count("Pull complete") == 2
    assert f"{registry.host}/test/layers@{digest}" in pulled.repo_digests
    assert [lay["compression"] for lay in engine._image_layer_blobs(pulled.id)] == [
        "", "", "gzip"]


def _pull_in_child(root: Path, ref: str) -> str:
    return LocalEngine(root).image_pull(ref).id


def test_concurrent_pulls_of_one_image(engine: LocalEngine, busybox: str,
                                       registry: reg.Registry, engine_root: Path) -> None:
    ref = f"{registry.host}/{REPO}:race"
    engine.image_tag("busybox:reg", ref)
    engine.image_push(ref)
    engine.image_remove(ref)
    engine.image_remove("busybox:reg")
    with multiprocessing.get_context("fork").Pool(3) as pool:
        ids = pool.starmap(_pull_in_child, [(engine_root, ref)] * 3)
    assert ids == [busybox] * 3
    assert len(list(engine.store.path("layers").iterdir())) == 1
    assert engine.image_inspect(ref).id == busybox


# ------------------------------------------------------------------ manifest lists


def test_oci_index_resolves_to_host_platform(engine: LocalEngine, busybox: str,
                                             busybox_tar: Path, registry: reg.Registry,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    amd = f"{registry.host}/{REPO}:amd"
    arm = f"{registry.host}/{REPO}:arm"
    engine.image_tag("busybox:reg", amd)
    other = engine.image_import(str(busybox_tar), arm, ('CMD ["echo", "arm"]',)).id
    amd_digest = engine.image_push(amd)
    arm_digest = engine.image_push(arm)
    sizes = {}
    for d in (amd_digest, arm_digest):
        _, _, body = _raw("GET", f"http://{registry.host}/v2/{REPO}/manifests/{d}",
                          headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        sizes[d] = len(body)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": arm_digest, "size": sizes[arm_digest],
                  "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": amd_digest, "size": sizes[amd_digest],
                  "platform": {"os": "linux", "architecture": "amd64"}}]}
    body = json.dumps(index).encode()
    status, headers, _ = _raw("PUT", f"http://{registry.host}/v2/{REPO}/manifests/multi", body,
                              {"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert status == 201
    index_digest = headers["Docker-Content-Digest"]
    for ref in (amd, arm, "busybox:reg"):
        engine.image_remove(ref)

    image = engine.image_pull(f"{registry.host}/{REPO}:multi")
    assert image.id == busybox and image.architecture == "amd64"
    assert f"{registry.host}/{REPO}@{index_digest}" in image.repo_digests

    assert engine.image_pull(f"{registry.host}/{REPO}:multi", platform="linux/arm64").id \
        == other
    engine.image_remove(other)
    monkeypatch.setenv("PYCOMPOSE_PLATFORM", "linux/arm64")
    assert engine.image_pull(f"{registry.host}/{REPO}:multi").id == other
    monkeypatch.setenv("PYCOMPOSE_PLATFORM", "linux/s390x")
    with pytest.raises(RegistryError, match="no matching manifest for linux/s390x"):
        engine.image_pull(f"{registry.host}/{REPO}:multi")


def test_docker_schema2_list_pull_and_verbatim_repush(engine: LocalEngine, busybox_tar: Path,
                                                      registry: reg.Registry,
                                                      tmp_path: Path) -> None:
    gz = tmp_path / "busybox.tar.gz"
    gz.write_bytes(gzip.compress(busybox_tar.read_bytes(), mtime=0))
    image_id = engine.image_import(str(gz), f"{registry.host}/test/gz:1").id
    engine.image_push(f"{registry.host}/test/gz:1")
    base = f"http://{registry.host}/v2/test/gz/manifests"
    _, _, body = _raw("GET", f"{base}/1",
                      headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    oci = json.loads(body)
    assert oci["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    schema2 = {"schemaVersion": 2,
               "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": {**oci["config"],
                          "mediaType": "application/vnd.docker.container.image.v1+json"},
               "layers": [{**lay, "mediaType":
                           "application/vnd.docker.image.rootfs.diff.tar.gzip"}
                          for lay in oci["layers"]]}
    s2_body = json.dumps(schema2, indent=3).encode()
    _, headers, _ = _raw("PUT", f"{base}/s2", s2_body, {"Content-Type": schema2["mediaType"]})
    s2_digest = headers["Docker-Content-Digest"]
    listing = {"schemaVersion": 2,
               "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
               "manifests": [{"mediaType": schema2["mediaType"], "digest": s2_digest,
                              "size": len(s2_body),
                              "platform": {"architecture": "amd64", "os": "linux"}}]}
    _, headers, _ = _raw("PUT", f"{base}/list", json.dumps(listing).encode(),
                         {"Content-Type": listing["mediaType"]})
    list_digest = headers["Docker-Content-Digest"]
    engine.image_remove(f"{registry.host}/test/gz:1")

    image = engine.image_pull(f"{registry.host}/test/gz:list")
    assert image.id == image_id
    assert f"{registry.host}/test/gz@{list_digest}" in image.repo_digests
    # Pushed elsewhere, the image keeps the manifest it was pulled with (same digest).
    engine.image_tag(image.id, f"{registry.host}/test/copy:1")
    assert engine.image_push(f"{registry.host}/test/copy:1") == s2_digest
    up: list[Progress] = []
    engine.image_pull(f"{registry.host}/test/gz:list", up.append)
    assert f"Status: Image is up to date for {registry.host}/test/gz:list" in _statuses(up)
    assert "Already exists" in _statuses(up)


def test_bzip2_layer_is_pushed_as_stable_gzip(engine: LocalEngine, busybox_tar: Path,
                                              registry: reg.Registry, tmp_path: Path) -> None:
    bz = tmp_path / "busybox.tar.bz2"
    bz.write_bytes(bz2.compress(busybox_tar.read_bytes(), 1))
    ref = f"{registry.host}/test/bz:1"
    image_id = engine.image_import(str(bz), ref).id
    digest = engine.image_push(ref)
    assert engine.image_push(ref) == digest
    engine.image_remove(ref)
    image = engine.image_pull(ref)
    assert image.id == image_id
    assert engine._image_layer_blobs(image.id)[0]["compression"] == "gzip"


def test_docker_hub_mirror_serves_docker_io_names(engine: LocalEngine, busybox: str,
                                                  registry: reg.Registry,
                                                  engine_root: Path) -> None:
    engine.image_tag("busybox:reg", f"{registry.host}/library/busybox:mirrored")
    engine.image_push(f"{registry.host}/library/busybox:mirrored")
    engine.image_remove(f"{registry.host}/library/busybox:mirrored")
    engine.image_remove("busybox:reg")
    (engine_root / "daemon.json").write_text(json.dumps(
        {"registry-mirrors": [f"http://{registry.host}"]}))
    image = engine.image_pull("busybox:mirrored")
    assert image.id == busybox
    assert "busybox:mirrored" in image.repo_tags


def test_tls_registry_on_loopback(engine: LocalEngine, busybox: str, tmp_path: Path) -> None:
    """Loopback registries are insecure as in Docker: HTTPS is tried first (unverified)."""
    with reg.run_registry(tmp_path / "registry", tls=reg.self_signed(tmp_path)) as r:
        ref = f"{r.host}/{REPO}:tls"
        engine.image_tag("busybox:reg", ref)
        engine.image_push(ref)
        engine.image_remove(ref)
        assert engine.image_pull(ref).id == busybox
        with pytest.raises(urllib.error.URLError):  # it really speaks only HTTPS
            urllib.request.urlopen(f"http://{r.host}/v2/", timeout=5)


def test_https_verification_and_certs_d(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified HTTPS refuses an unknown CA; a `certs.d/<host>/ca.crt` makes it trusted."""
    from engine.images import registry_http

    cert, key = reg.self_signed(tmp_path)
    certs_d = tmp_path / "certs.d"
    monkeypatch.setenv("PYCOMPOSE_CERTS_D", str(certs_d))
    with reg.run_registry(tmp_path / "registry", tls=(cert, key)) as r:
        with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED|verify failed"):
            registry_http.request("GET", f"https://{r.host}/v2/", verify=True)
        (certs_d / r.host).mkdir(parents=True)
        shutil.copy(cert, certs_d / r.host / "ca.crt")
        resp = registry_http.request("GET", f"https://{r.host}/v2/", verify=True)
        resp.body()
        assert resp.status == 200


# ------------------------------------------------------------------ auth


def test_basic_auth_login_push_pull_and_wrong_password(engine: LocalEngine, busybox: str,
                                                       tmp_path: Path) -> None:
    htpasswd = reg.htpasswd_file(tmp_path / "htpasswd", "alice", "s3cret")
    with reg.run_registry(tmp_path / "registry", reg.htpasswd_auth(htpasswd)) as r:
        ref = f"{r.host}/{REPO}:1"
        engine.image_tag("busybox:reg", ref)
        with pytest.raises(RegistryError, match="unauthorized: authentication required") as e:
            engine.image_push(ref)
        assert r.host in str(e.value)
        with pytest.raises(RegistryError, match="unauthorized: authentication required") as e:
            engine.registry_login(r.host, "alice", "wrong")
        assert r.host in str(e.value)
        assert not (tmp_path / "docker-config" / "config.json").exists()

        path = Path(engine.registry_login(r.host, "alice", "s3cret"))
        stored = json.loads(path.read_text())["auths"][r.host]["auth"]
        assert base64.b64decode(stored) == b"alice:s3cret"
        assert path.stat().st_mode & 0o077 == 0
        digest = engine.image_push(ref)
        engine.image_remove(ref)
        engine.image_remove("busybox:reg")
        image = engine.image_pull(ref)
        assert image.id == busybox
        assert f"{r.host}/{REPO}@{digest}" in image.repo_digests

        # A stale password in config.json gives the same clear error.
        path.write_text(json.dumps({"auths": {r.host: {"username": "alice",
                                                       "password": "old"}}}))
        with pytest.raises(RegistryError, match="unauthorized: authentication required"):
            engine.image_pull(ref)
        assert engine.registry_logout(r.host) is True
        assert engine.registry_logout(r.host) is False


def test_bearer_token_flow(engine: LocalEngine, busybox: str, tmp_path: Path) -> None:
    issuer = reg.TokenIssuer(tmp_path)
    with reg.run_token_server(issuer, "bob", "hunter2") as tokens, \
            reg.run_registry(tmp_path / "registry", reg.token_auth(tokens.url, issuer)) as r:
        ref = f"{r.host}/{REPO}:1"
        engine.image_tag("busybox:reg", ref)
        with pytest.raises(RegistryError, match="unauthorized"):
            engine.image_push(ref)  # an anonymous token grants no push
        with pytest.raises(RegistryError, match="incorrect username or password") as e:
            engine.registry_login(r.host, "bob", "wrong")
        assert r.host in str(e.value)

        engine.registry_login(r.host, "bob", "hunter2")
        digest = engine.image_push(ref)
        engine.image_remove(ref)
        engine.image_remove("busybox:reg")
        assert engine.image_pull(f"{r.host}/{REPO}@{digest}").id == busybox

        granted = [q for q in tokens.requests if q["authorized"]]
        assert {"scopes": [f"repository:{REPO}:pull,push"], "authorized": True,
                "service": reg.SERVICE} in granted
        assert {"scopes": [f"repository:{REPO}:pull"], "authorized": True,
                "service": reg.SERVICE} in granted


def test_blob_redirect_to_other_host_drops_credentials() -> None:
    """Registries redirect blob downloads to storage hosts (a CDN): the client follows,
    and never sends the registry's credentials there."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from engine.images.registry import RegistryClient
    from engine.images.registry_auth import Credentials, save_credentials

    blob = b"layer-bytes"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    seen: dict[str, str | None] = {}

    class Storage(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen["storage"] = self.headers.get("Authorization")
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

    storage = ThreadingHTTPServer(("127.0.0.1", 0), Storage)

    class Registry(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.headers.get("Authorization") != Credentials("u", "p").basic():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            seen["registry"] = self.headers.get("Authorization")
            self.send_response(307 if "/blobs/" in self.path else 200)
            self.send_header("Location", f"http://127.0.0.1:{storage.server_address[1]}/x")
            self.send_header("Content-Length", "0")
            self.end_headers()

    registry = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threads = [threading.Thread(target=srv.serve_forever, daemon=True)
               for srv in (storage, registry)]
    for t in threads:
        t.start()
    try:
        host = f"127.0.0.1:{registry.server_address[1]}"
        save_credentials(host, Credentials("u", "p"))
        resp = RegistryClient(host, "test/blob").get_blob(digest)
        assert resp.body() == blob
        assert seen["registry"] == Credentials("u", "p").basic()
        assert seen["storage"] is None
    finally:
        for srv in (storage, registry):
            srv.shutdown()
            srv.server_close()


def test_broken_layer_download_is_retried(engine: LocalEngine, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A transfer that breaks off midway is retried; the half blob leaves nothing."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from engine.images.registry import RegistryClient

    monkeypatch.setenv("PYCOMPOSE_PULL_RETRY_DELAY", "0.05")
    tar = _layer_tar(tmp_path / "layer.tar", {"etc/flaky": b"x" * 50000}).read_bytes()
    digest = "sha256:" + hashlib.sha256(tar).hexdigest()
    served: list[int] = []

    class Flaky(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            blob = "/blobs/" in self.path
            self.send_response(200)
            self.send_header("Content-Length", str(len(tar) if blob else 0))
            self.end_headers()
            served.append(1)
            if blob and len(served) <= 2:  # after /v2/: the first blob transfer breaks
                self.wfile.write(tar[:20000])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if blob:
                self.wfile.write(tar)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = RegistryClient(f"127.0.0.1:{server.server_address[1]}", "test/flaky")
        events: list[Progress] = []
        layer = {"digest": digest, "size": len(tar),
                 "mediaType": "application/vnd.oci.image.layer.v1.tar"}
        engine._registry_pull_layer(client, layer, digest, events.append)
        assert "Retrying in 0.05 seconds" in _statuses(events)
        assert _statuses(events)[-1] == "Pull complete"
        assert engine._registry_layer_present(digest)
        assert not [p for p in engine.store.path("blobs", "sha256").iterdir()
                    if p.name.startswith(".")]
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ unreachable


def test_unreachable_registry_fails_fast(engine: LocalEngine) -> None:
    port = reg.free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(RegistryError, match=f"cannot reach 127.0.0.1:{port}"):
        engine.image_pull(f"127.0.0.1:{port}/{REPO}:1")
    assert time.monotonic() - start < 5


def test_silent_registry_times_out(engine: LocalEngine,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCOMPOSE_REGISTRY_CONNECT_TIMEOUT", "1.5")
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(RegistryError, match="did not answer in time"):
            engine.image_pull(f"127.0.0.1:{port}/{REPO}:1")
        assert time.monotonic() - start < 5


# ------------------------------------------------------------------ CLI


def _cli(engine_root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYCOMPOSE_ROOT": str(engine_root)}
    return subprocess.run([sys.executable, "-m", "compose.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])


def test_cli_login_push_pull_logout(engine: LocalEngine, busybox: str, engine_root: Path,
                                    tmp_path: Path) -> None:
    htpasswd = reg.htpasswd_file(tmp_path / "htpasswd", "carol", "pa55")
    with reg.run_registry(tmp_path / "registry", reg.htpasswd_auth(htpasswd)) as r:
        ref = f"{r.host}/{REPO}:cli"
        engine.image_tag("busybox:reg", ref)

        bad = _cli(engine_root, "login", "-u", "carol", "--password-stdin", r.host,
                   stdin="nope\n")
        assert bad.returncode == 1
        assert "unauthorized: authentication required" in bad.stderr
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

        ok = _cli(engine_root, "login", "-u", "carol", "--password-stdin", r.host,
                  stdin="pa55\n")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "Login Succeeded"

        pushed = _cli(engine_root, "image", "push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert f"The push refers to repository [{r.host}/{REPO}]" in pushed.stdout
        assert ": Pushed" in pushed.stdout and "cli: digest: sha256:" in pushed.stdout

        engine.image_remove(ref)
        engine.image_remove("busybox:reg")
        pulled = _cli(engine_root, "image", "pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        assert ": Pull complete" in pulled.stdout
        assert pulled.stdout.strip().splitlines()[-1] == ref
        assert engine.image_inspect(ref).id == busybox

        missing = _cli(engine_root, "image", "pull", f"{r.host}/{REPO}:nope")
        assert missing.returncode == 1 and "manifest unknown" in missing.stderr

        out = _cli(engine_root, "logout", r.host)
        assert out.stdout.strip() == f"Removing login credentials for {r.host}"
        denied = _cli(engine_root, "image", "pull", ref)
        assert denied.returncode == 1
        assert f"{r.host}: unauthorized: authentication required" in denied.stderr


def test_compose_push_and_pull_services(engine: LocalEngine, busybox: str, engine_root: Path,
                                        registry: reg.Registry, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    app, base = f"{registry.host}/test/app:1", f"{registry.host}/test/base:1"
    (project / "compose.yaml").write_text(
        "services:\n"
        f"  app:\n    build: .\n    image: {app}\n"
        f"  base:\n    image: {base}\n"
        "  local:\n    build: .\n")
    (project / "Dockerfile").write_text("FROM scratch\n")
    engine.image_tag("busybox:reg", app)
    engine.image_tag("busybox:reg", base)
    engine.image_push(base)
    compose = ("-f", str(project / "compose.yaml"), "--progress", "plain")

    pushed = _cli(engine_root, *compose, "push")
    assert pushed.returncode == 0, pushed.stderr
    assert " app  Pushed" in pushed.stderr
    assert " base  Skipped" in pushed.stderr and " local  Skipped" in pushed.stderr

    for ref in (app, base, "busybox:reg"):
        engine.image_remove(ref)
    pulled = _cli(engine_root, *compose, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert " app  Pulled" in pulled.stderr and " base  Pulled" in pulled.stderr
    assert " local  Skipped - No image to be pulled" in pulled.stderr
    assert engine.image_inspect(app).id == engine.image_inspect(base).id == busybox

    again = _cli(engine_root, *compose, "pull", "--policy", "missing", "base")
    assert " base  Skipped - Image is already present locally" in again.stderr

    (project / "compose.yaml").write_text(
        f"services:\n  gone:\n    image: {registry.host}/test/missing:1\n")
    failed = _cli(engine_root, *compose, "pull")
    assert failed.returncode == 1 and "manifest unknown" in failed.stderr
    ignored = _cli(engine_root, *compose, "pull", "--ignore-pull-failures")
    assert ignored.returncode == 0 and "manifest unknown" in ignored.stderr
