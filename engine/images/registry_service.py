"""The engine service for registries: `image_pull`, `image_push`, login and logout.

Mixin `RegistryService` of `engine.local.LocalEngine`. Pull resolves a tag or digest to
one manifest (an index or manifest list is resolved to the host's platform), verifies
every blob's digest while streaming it into the image store (`_image_store_layer`,
`_image_register`). Push uploads what the registry lacks (HEAD check, cross-repository
mount, upload) and puts a manifest whose bytes depend only on the image, so a pull of
it gives the same image id. State of its own under `registry/`: the manifests an image
was pulled with (pushed again verbatim) and which repositories hold which blobs (for
cross-repository mounts).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api import (
    EngineError,
    Image,
    InvalidArgument,
    NotFound,
    Progress,
    ProgressFn,
    RegistryError,
)
from engine.images import reference
from engine.store import Store

# The registry client (http.client, ssl) loads only when a registry is used: every
# command builds a LocalEngine, few of them talk to a registry.
if TYPE_CHECKING:
    from engine.images.registry import RegistryClient
    from engine.images.registry_config import RegistryConfig

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MAX_CONFIG = 8 << 20
PARALLEL_DOWNLOADS = 3
DOWNLOAD_ATTEMPTS = 3
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def retry_delay() -> float:
    """Seconds before the first retry of a broken layer download (then 2x, ...)."""
    return float(os.environ.get("PYCOMPOSE_PULL_RETRY_DELAY", "1"))


def host_platform(wanted: str | None = None) -> tuple[str, str]:
    """(os, architecture) in OCI terms: `wanted` (`os/arch[/variant]`), else
    $PYCOMPOSE_PLATFORM, else the host's."""
    wanted = wanted or os.environ.get("PYCOMPOSE_PLATFORM", "")
    if wanted:
        os_name, _, arch = wanted.partition("/")
        return os_name, arch.split("/")[0]
    return "linux", _ARCH.get(platform.machine(), platform.machine())


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class _Transient(RegistryError):
    """A layer transfer broke off midway: worth another attempt."""


class _VerifyingReader:
    """Reads a blob response: reports progress, refuses more bytes than announced."""

    def __init__(self, resp: Any, size: int, on_bytes: Any, on_end: Any = None) -> None:
        self._resp = resp
        self._size = size
        self._on_bytes = on_bytes
        self._on_end = on_end
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._resp.read(n if n and n > 0 else 1 << 20)
        self.count += len(data)
        if self._size and self.count > self._size:
            raise InvalidArgument(f"blob is larger than its descriptor's {self._size} bytes")
        if not data and self._size and self.count != self._size:
            raise RegistryError(f"blob ended after {self.count} of {self._size} bytes")
        if data and self._on_bytes:
            self._on_bytes(self.count)
        if not data and self._on_end:
            self._on_end()
            self._on_end = None
        return data


class RegistryService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    # ------------------------------------------------------------------ state

    def _registry_config(self) -> RegistryConfig:
        from engine.images.registry_config import RegistryConfig

        return RegistryConfig.load(self.store.root)

    def _registry_blob_sources(self) -> dict[str, list[str]]:
        data = self.store.read_json(self.store.path("registry", "blob-sources.json"), {})
        return data if isinstance(data, dict) else {}

    def _registry_note_blobs(self, repo_name: str, digests: list[str]) -> None:
        """Remember that a repository (`domain/path`) holds these blobs."""
        path = self.store.path("registry", "blob-sources.json")
        with self.store.lock("registry"):
            data = self._registry_blob_sources()
            for d in digests:
                repos = data.setdefault(d, [])
                if repo_name in repos:
                    repos.remove(repo_name)
                repos.insert(0, repo_name)
                del repos[8:]
            self.store.write_json(path, data)

    def _registry_manifest_path(self, image_id: str) -> Path:
        return self.store.path("registry", "manifests", image_id.removeprefix("sha256:"))

    def _registry_save_manifest(self, image_id: str, body: bytes, media_type: str) -> None:
        self.store.write_json(self._registry_manifest_path(image_id),
                              {"media_type": media_type,
                               "manifest": body.decode("utf-8", "surrogateescape")})

    def _registry_saved_manifest(self, image_id: str) -> tuple[bytes, str] | None:
        try:
            data = self.store.read_json(self._registry_manifest_path(image_id))
            return (data["manifest"].encode("utf-8", "surrogateescape"),
                    str(data["media_type"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # unreadable: a canonical manifest is pushed instead

    # ------------------------------------------------------------------ pull

    def image_pull(self, ref: str, progress: ProgressFn | None = None,
                   platform: str | None = None) -> Image:
        """Pull `ref`; an index resolves to `platform` (`os/arch`, default the host's)."""
        from engine.images.registry import RegistryClient

        parsed = reference.parse(ref)
        if platform is not None and "/" not in platform:
            raise InvalidArgument(f"invalid platform {platform!r}: expected os/arch")
        report = progress or (lambda p: None)
        config = self._registry_config()
        endpoints = config.endpoints(parsed.domain)
        for i, endpoint in enumerate(endpoints):
            client = RegistryClient(parsed.domain, parsed.path, "pull", config,
                                    endpoint=endpoint)
            try:
                return self._registry_pull(client, parsed, report, platform)
            except RegistryError:
                if not endpoint.mirror or i == len(endpoints) - 1:
                    raise
        raise RegistryError(f"{parsed.domain}: no endpoint to pull from")

    def _registry_pull(self, client: RegistryClient, parsed: reference.Reference,
                       report: ProgressFn, platform: str | None = None) -> Image:
        from engine.images.registry import INDEX_TYPES

        wanted = parsed.digest or parsed.tag or "latest"
        body, media, digest = client.get_manifest(wanted)
        report(Progress(id=parsed.tag or parsed.digest or "",
                        status=f"Pulling from {parsed.path}"))
        top_digest = digest
        if media in INDEX_TYPES:
            chosen = self._registry_pick_platform(json.loads(body), client.name, platform)
            body, media, digest = client.get_manifest(chosen)
            if media in INDEX_TYPES:
                raise RegistryError(f"{client.name}: nested image indexes are not supported")
        manifest = json.loads(body)
        if manifest.get("schemaVersion") != 2 or "config" not in manifest:
            raise RegistryError(f"{client.name}: unsupported manifest (schema 1 or unknown)")
        config_digest = manifest["config"]["digest"]
        config_bytes = self._registry_fetch_config(client, config_digest,
                                                   manifest["config"].get("size", 0))
        image_config = json.loads(config_bytes)
        diff_ids = image_config.get("rootfs", {}).get("diff_ids", [])
        layers = manifest.get("layers", [])
        if len(diff_ids) != len(layers):
            raise RegistryError(f"{client.name}: manifest has {len(layers)} layers, config "
                                f"{len(diff_ids)} diff_ids")
        self._registry_pull_layers(client, list(zip(layers, diff_ids, strict=True)), report)
        tags = [str(parsed)] if parsed.tag and not parsed.digest else []
        repo_digest = f"{parsed.name}@{top_digest}"
        up_to_date = self._registry_is_current(str(parsed), config_digest)
        register = self._image_register  # type: ignore[attr-defined]
        image: Image = register(config_bytes, tags, repo_digests=(repo_digest,))
        self._registry_save_manifest(image.id, body, media)
        self._registry_note_blobs(client.name, [config_digest] + [lay["digest"]
                                                                  for lay in layers])
        report(Progress(id="", status=f"Digest: {top_digest}"))
        state = "Image is up to date for" if up_to_date else "Downloaded newer image for"
        report(Progress(id="", status=f"Status: {state} {parsed.familiar()}"))
        self.store.emit("image", "pull", parsed.familiar(), name=parsed.familiar_name)
        return image

    def _registry_is_current(self, ref: str, image_id: str) -> bool:
        """Whether `ref` already names this image locally (Docker's "up to date")."""
        try:
            return bool(self._image_resolve(ref).id == image_id)  # type: ignore[attr-defined]
        except EngineError:
            return False

    @staticmethod
    def _registry_pick_platform(index: dict[str, Any], name: str,
                                platform: str | None = None) -> str:
        want_os, want_arch = host_platform(platform)
        candidates = []
        for entry in index.get("manifests") or []:
            plat = entry.get("platform") or {}
            if plat.get("os") == want_os and plat.get("architecture") == want_arch:
                candidates.append(entry)
        if not candidates:
            offered = sorted({f"{(e.get('platform') or {}).get('os')}/"
                              f"{(e.get('platform') or {}).get('architecture')}"
                              for e in index.get("manifests") or []})
            raise RegistryError(f"{name}: no matching manifest for {want_os}/{want_arch} in "
                                f"the manifest list entries (offered: {', '.join(offered)})")
        digest = candidates[0].get("digest", "")
        if not reference.is_image_id(digest):
            raise RegistryError(f"{name}: index entry has an invalid digest {digest!r}")
        return str(digest)

    def _registry_fetch_config(self, client: RegistryClient, digest: str, size: int) -> bytes:
        from engine.images.blobs import digest_bytes

        if not reference.is_image_id(digest):
            raise RegistryError(f"{client.name}: unsupported config digest {digest!r}")
        resp = client.get_blob(digest)
        data = resp.body(MAX_CONFIG)
        if digest_bytes(data) != digest or (size and len(data) != size):
            raise RegistryError(f"{client.name}: config blob {digest} failed verification")
        return data

    def _registry_layer_present(self, diff_id: str) -> bool:
        layers = self._image_index.read()["layers"]  # type: ignore[attr-defined]
        return diff_id in layers and self._image_layers.exists(diff_id)  # type: ignore[attr-defined]

    def _registry_pull_layers(self, client: RegistryClient,
                              layers: list[tuple[dict[str, Any], str]],
                              report: ProgressFn) -> None:
        """Fetch the layers, a few at a time as Docker does; the first error wins."""
        from concurrent.futures import ThreadPoolExecutor

        if len(layers) <= 1:
            for layer, diff_id in layers:
                self._registry_pull_layer(client, layer, diff_id, report)
            return
        with ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS) as pool:
            futures = [pool.submit(self._registry_pull_layer, client, layer, diff_id, report)
                       for layer, diff_id in layers]
            for future in futures:
                future.result()

    def _registry_pull_layer(self, client: RegistryClient, layer: dict[str, Any], diff_id: str,
                             report: ProgressFn) -> None:
        digest, size = layer.get("digest", ""), int(layer.get("size", 0))
        short = _short(digest)
        if not reference.is_image_id(digest) or not reference.is_image_id(diff_id):
            raise RegistryError(f"{client.name}: unsupported layer digest {digest!r}")
        if "zstd" in layer.get("mediaType", ""):
            raise RegistryError(f"{client.name}: layer {short} is zstd-compressed, which this "
                                "engine cannot unpack")
        if self._registry_layer_present(diff_id):
            report(Progress(id=short, status="Already exists"))
            return
        report(Progress(id=short, status="Pulling fs layer"))
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                self._registry_fetch_layer(client, digest, size, diff_id, report)
                break
            except _Transient as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise RegistryError(str(exc)) from None
                delay = retry_delay() * attempt
                report(Progress(id=short, status=f"Retrying in {delay:g} seconds"))
                time.sleep(delay)
        report(Progress(id=short, status="Pull complete", current=size, total=size))

    def _registry_fetch_layer(self, client: RegistryClient, digest: str, size: int,
                              diff_id: str, report: ProgressFn) -> None:
        """One download of a layer into the store; a broken transfer is `_Transient`."""
        short = _short(digest)
        resp = client.get_blob(digest)
        reader = _VerifyingReader(resp, size, lambda n: report(
            Progress(id=short, status="Downloading", current=n, total=size)),
            lambda: report(Progress(id=short, status="Download complete", current=size,
                                    total=size)))
        try:
            self._image_store_layer(reader, expected_blob=digest,  # type: ignore[attr-defined]
                                    expected_diff_id=diff_id)
        except InvalidArgument as exc:
            raise RegistryError(f"{client.name}: layer {short} failed verification: "
                                f"{exc}") from None
        except RegistryError as exc:
            if reader.count == 0 and not isinstance(exc, _Transient):
                raise  # refused before any byte: retrying will not help
            raise _Transient(f"{client.name}: layer {short}: {exc}") from None
        finally:
            resp.close()

    # ------------------------------------------------------------------ push

    def image_push(self, ref: str, progress: ProgressFn | None = None) -> str:
        """Push a local image under `ref`; returns the manifest digest."""
        from engine.images.registry import RegistryClient

        parsed = reference.parse(ref)
        if parsed.digest:
            raise InvalidArgument(f"cannot push a digest reference: {ref}")
        report = progress or (lambda p: None)
        try:
            image = self._image_resolve(str(parsed))  # type: ignore[attr-defined]
        except NotFound:
            raise NotFound("An image does not exist locally with the tag: "
                           f"{parsed.familiar()}") from None
        config_bytes = self._image_blobs.read(image.id)  # type: ignore[attr-defined]
        layers = self._image_layer_blobs(image.id)  # type: ignore[attr-defined]
        sources = self._registry_blob_sources()
        mount_from = {lay["digest"]: self._registry_mount_source(sources, lay["digest"],
                                                                 parsed)
                      for lay in layers}
        extra = tuple(sorted({f"repository:{r}:pull" for r in mount_from.values() if r}))
        client = RegistryClient(parsed.domain, parsed.path, "pull,push",
                                self._registry_config(), extra_scopes=extra)
        report(Progress(id="", status=f"The push refers to repository [{parsed.name}]"))
        with tempfile.TemporaryDirectory(dir=self.store.ensure("tmp")) as tmp:
            pushed = [self._registry_push_layer(client, lay, mount_from[lay["digest"]],
                                                Path(tmp), report) for lay in layers]
        self._registry_push_blob(client, config_bytes, image.id)
        body, media = self._registry_manifest_for(image.id, config_bytes, pushed)
        from engine.images.blobs import digest_bytes

        digest = digest_bytes(body)
        answered = client.put_manifest(parsed.tag or "latest", body, media)
        if answered and answered != digest:
            raise RegistryError(f"{client.name}: registry stored the manifest as {answered}, "
                                f"expected {digest}")
        self._image_register(config_bytes, (), repo_digests=(  # type: ignore[attr-defined]
            f"{parsed.name}@{digest}",))
        self._registry_note_blobs(client.name, [image.id] + [p["digest"] for p in pushed])
        report(Progress(id="", status=f"{parsed.tag}: digest: {digest} size: {len(body)}"))
        self.store.emit("image", "push", parsed.familiar(), name=parsed.familiar_name)
        return digest

    @staticmethod
    def _registry_mount_source(sources: dict[str, list[str]], digest: str,
                               target: reference.Reference) -> str | None:
        for repo in sources.get(digest, []):
            domain, _, path = repo.partition("/")
            if domain == target.domain and path != target.path:
                return path
        return None

    def _registry_push_blob(self, client: RegistryClient, data: bytes, digest: str) -> None:
        import io

        if not client.blob_exists(digest):
            client.upload_blob(io.BytesIO(data), digest, len(data))

    def _registry_push_layer(self, client: RegistryClient, layer: dict[str, Any],
                             mount_from: str | None, tmp: Path,
                             report: ProgressFn) -> dict[str, Any]:
        """Push one layer blob; returns its manifest descriptor."""
        digest, size, media = layer["digest"], layer["size"], layer["media_type"]
        path = self._image_blobs.path(digest)  # type: ignore[attr-defined]
        if layer.get("compression") not in ("", "gzip", None):
            path, digest, size = _gzip_layer(path, tmp)
            media = "application/vnd.oci.image.layer.v1.tar+gzip"
        short = _short(digest)
        report(Progress(id=short, status="Preparing"))
        if client.blob_exists(digest):
            report(Progress(id=short, status="Layer already exists"))
        elif mount_from and client.mount_blob(digest, mount_from):
            report(Progress(id=short, status=f"Mounted from {mount_from}"))
        else:
            with open(path, "rb") as f:
                client.upload_blob(f, digest, size, lambda n: report(
                    Progress(id=short, status="Pushing", current=n, total=size)))
            report(Progress(id=short, status="Pushed", current=size, total=size))
        return {"mediaType": media, "digest": digest, "size": size}

    def _registry_manifest_for(self, image_id: str, config_bytes: bytes,
                               layers: list[dict[str, Any]]) -> tuple[bytes, str]:
        """The manifest to push: the one the image was pulled with if it still describes
        exactly these blobs, else a canonical OCI manifest (stable bytes)."""
        from engine.images.blobs import digest_bytes
        from engine.images.registry import OCI_MANIFEST

        saved = self._registry_saved_manifest(image_id)
        if saved is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                old = json.loads(saved[0])
                if old["config"]["digest"] == image_id and [
                        lay["digest"] for lay in old["layers"]] == [
                        lay["digest"] for lay in layers]:
                    return saved
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_bytes(config_bytes),
                       "size": len(config_bytes)},
            "layers": layers,
        }
        return json.dumps(manifest, indent=2).encode(), OCI_MANIFEST

    # ------------------------------------------------------------------ login / logout

    def registry_login(self, server: str, username: str, password: str) -> str:
        """Check credentials against a registry and store them; returns the file path."""
        from engine.images import registry_auth
        from engine.images.registry import RegistryClient

        if not username or not password:
            raise InvalidArgument("username and password are required to log in")
        domain = _server_domain(server)
        creds = registry_auth.Credentials(username, password)
        config = self._registry_config()
        client = RegistryClient(domain, "", "pull", config, creds=creds,
                                endpoint=config.endpoints(domain)[-1])  # never a mirror
        client.login()
        return str(registry_auth.save_credentials(domain, creds))

    def registry_logout(self, server: str) -> bool:
        """Forget the stored credentials of a registry; False if there were none."""
        from engine.images import registry_auth

        return registry_auth.remove_credentials(_server_domain(server))


def _server_domain(server: str) -> str:
    """`docker.io`, `https://index.docker.io/v1/`, `localhost:5000` -> registry domain."""
    text = server.strip() or reference.DEFAULT_DOMAIN
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    if not text:
        raise InvalidArgument(f"invalid registry address {server!r}")
    if text in (reference.LEGACY_DOMAIN, "registry-1.docker.io"):
        return reference.DEFAULT_DOMAIN
    return text


def _gzip_layer(path: Path, tmp: Path) -> tuple[Path, str, int]:
    """Recompress a bzip2/xz layer blob as gzip (deterministic: no name, mtime 0)."""
    import bz2
    import hashlib
    import lzma

    with open(path, "rb") as f:
        magic = f.read(3)
    opener: Any = bz2.open if magic == b"BZh" else lzma.open
    out = tmp / path.name
    with (opener(path, "rb") as src, open(out, "wb") as raw,
          gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz):
        shutil.copyfileobj(src, gz, 1 << 20)
    h = hashlib.sha256()
    with open(out, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return out, "sha256:" + h.hexdigest(), out.stat().st_size

