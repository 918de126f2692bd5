"""Image archives: load and save `docker save` tarballs and OCI image layouts.

Reads the legacy Docker layout (`manifest.json`, `repositories`, `<v1id>/layer.tar`,
`<id>.json`), Docker 25+'s combined layout and plain OCI layouts (`oci-layout`,
`index.json`, `blobs/sha256/`, nested indexes, gzip layers). Writes the legacy Docker
layout (`format="docker"`) or an OCI layout (`format="oci"`). Nothing in an archive is
extracted to disk except through the layer unpacker; every digest is checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.api import Image, InvalidArgument, NotFound
from engine.images import reference
from engine.images.blobs import CHUNK, HashingReader
from engine.images.layers import ceiling
from engine.images.unpack import GuardedTarInfo, clean_name, decompressed

if TYPE_CHECKING:
    from engine.images.service import ImageService

MAX_JSON = 16 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"


# ------------------------------------------------------------------ reading


class _Archive:
    """Members of an outer archive by cleaned name; symlinks inside it are followed."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members = {"/".join(clean_name(m.name)): m for m in tar.getmembers()}

    def _member(self, name: str, depth: int = 0) -> tarfile.TarInfo:
        key = "/".join(clean_name(name))
        member = self.members.get(key)
        if member is None or depth > 16:
            raise InvalidArgument(f"invalid archive: {name!r} not found")
        if member.issym():
            parent = key.rpartition("/")[0]
            target = member.linkname if member.linkname.startswith("/") else \
                f"{parent}/{member.linkname}"
            return self._member(target, depth + 1)
        if member.islnk():
            return self._member(member.linkname, depth + 1)
        if not member.isreg():
            raise InvalidArgument(f"invalid archive: {name!r} is not a file")
        return member

    def has(self, name: str) -> bool:
        return "/".join(clean_name(name)) in self.members

    def open(self, name: str) -> IO[bytes]:
        stream = self.tar.extractfile(self._member(name))
        if stream is None:
            raise InvalidArgument(f"invalid archive: cannot read {name!r}")
        return stream

    def read(self, name: str) -> bytes:
        member = self._member(name)
        if member.size > MAX_JSON:
            raise InvalidArgument(f"invalid archive: {name!r} is too large")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise InvalidArgument(f"invalid archive: {name!r}: {exc}") from None

    def blob(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or not reference.HEX64_RE.match(hexpart):
            raise InvalidArgument(f"invalid archive: unsupported digest {digest!r}")
        return f"blobs/sha256/{hexpart}"


@contextlib.contextmanager
def _seekable(engine: ImageService, archive: str | IO[bytes]) -> Iterator[IO[bytes]]:
    """The archive as a seekable, uncompressed file (spooled under the data root if needed)."""
    if isinstance(archive, str):
        try:
            f: IO[bytes] = open(archive, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InvalidArgument(f"cannot read {archive}: {exc.strerror}") from None
    else:
        f = archive
    try:
        plain = decompressed(f)
        if plain is f and f.seekable():
            yield f
            return
        spool_dir = engine.store.ensure("tmp")
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            shutil.copyfileobj(HashingReader(plain, limit=ceiling()), spool, CHUNK)
            spool.seek(0)
            yield spool
    finally:
        if isinstance(archive, str):
            f.close()


def load_archive(engine: ImageService, archive: str | IO[bytes]) -> list[Image]:
    """`docker load`: every image of a Docker or OCI archive; returns them in order."""
    with _seekable(engine, archive) as f:
        try:
            tar = tarfile.open(fileobj=f, mode="r:", tarinfo=GuardedTarInfo)  # noqa: SIM115
        except tarfile.TarError as exc:
            raise InvalidArgument(f"invalid archive: {exc}") from None
        with tar:
            arc = _Archive(tar)
            if arc.has("manifest.json"):
                loaded = _load_docker(engine, arc)
            elif arc.has("index.json"):
                loaded = _load_oci(engine, arc)
            else:
                raise InvalidArgument("invalid archive: neither manifest.json nor index.json "
                                      "found (not a docker save or OCI layout)")
    for image in loaded:
        engine.store.emit("image", "load", image.id)
    return loaded


def _verify(data: bytes, digest: str, what: str) -> None:
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise InvalidArgument(f"invalid archive: {what} digest mismatch: expected {digest}, "
                              f"got {actual}")


def _store_layers(engine: ImageService, arc: _Archive, config: dict[str, Any],
                  sources: list[tuple[str, str | None]]) -> None:
    """Unpack each layer (member name, expected blob digest) unless already stored."""
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(sources):
        raise InvalidArgument(f"invalid archive: {len(sources)} layers for "
                              f"{len(diff_ids)} diff_ids")
    known = engine._image_index.read()["layers"]
    for diff_id, (name, blob) in zip(diff_ids, sources, strict=True):
        if diff_id in known and engine._image_layers.exists(diff_id):
            continue
        with arc.open(name) as stream:
            engine._image_store_layer(stream, expected_blob=blob, expected_diff_id=diff_id)


def _as_loaded(image: Image, tags: list[str]) -> Image:
    """The image record with only the tags this archive gave it."""
    return dataclasses.replace(image, repo_tags=tuple(reference.familiar(t) for t in tags))


def _load_docker(engine: ImageService, arc: _Archive) -> list[Image]:
    manifest = arc.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    loaded = []
    for entry in manifest:
        config_name = entry.get("Config", "")
        raw = arc.read(config_name)
        stem = Path(config_name).name.removesuffix(".json")
        if reference.HEX64_RE.match(stem):
            _verify(raw, "sha256:" + stem, "config")
        config = json.loads(raw)
        layers = entry.get("Layers") or []
        _store_layers(engine, arc, config, [(name, None) for name in layers])
        tags = list(entry.get("RepoTags") or [])
        loaded.append(_as_loaded(engine._image_register(raw, tags), tags))
    return loaded


def _pick_manifests(arc: _Archive, descriptors: list[dict[str, Any]],
                    name: str | None, depth: int = 0) -> list[tuple[dict[str, Any], str | None]]:
    """(manifest descriptor, image name) pairs, descending into indexes (linux/amd64)."""
    picked: list[tuple[dict[str, Any], str | None]] = []
    for desc in descriptors:
        annotations = desc.get("annotations") or {}
        own = annotations.get(NAME_ANNOTATION) or name
        ref_name = annotations.get(REF_ANNOTATION)
        if own is None and ref_name:
            with contextlib.suppress(InvalidArgument):
                if "/" in ref_name or ":" in ref_name:
                    own = str(reference.parse(ref_name))
        media = desc.get("mediaType", "")
        if media in (OCI_INDEX, DOCKER_LIST):
            if depth > 4:
                raise InvalidArgument("invalid archive: indexes nested too deep")
            raw = arc.read(arc.blob(desc["digest"]))
            _verify(raw, desc["digest"], "index")
            children = json.loads(raw).get("manifests") or []
            amd64 = [c for c in children
                     if (c.get("platform") or {}).get("architecture", "amd64") == "amd64"
                     and (c.get("platform") or {}).get("os", "linux") == "linux"]
            picked += _pick_manifests(arc, amd64[:1] or children[:1], own, depth + 1)
        else:
            picked.append((desc, own))
    return picked


def _load_oci(engine: ImageService, arc: _Archive) -> list[Image]:
    index = arc.json("index.json")
    loaded = []
    for desc, name in _pick_manifests(arc, index.get("manifests") or [], None):
        raw_manifest = arc.read(arc.blob(desc["digest"]))
        _verify(raw_manifest, desc["digest"], "manifest")
        manifest = json.loads(raw_manifest)
        config_desc = manifest.get("config") or {}
        raw = arc.read(arc.blob(config_desc.get("digest", "")))
        _verify(raw, config_desc["digest"], "config")
        config = json.loads(raw)
        sources: list[tuple[str, str | None]] = [
            (arc.blob(layer["digest"]), layer["digest"]) for layer in manifest.get("layers", [])]
        _store_layers(engine, arc, config, sources)
        tags = [name] if name else []
        loaded.append(_as_loaded(engine._image_register(raw, tags), tags))
    return loaded


# ------------------------------------------------------------------ writing


class _Writer:
    """Adds deterministic members to an output tar stream, each name once."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.names: set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = size, 0o644, 0
        return ti

    def dirs(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.names:
                self.names.add(d)
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
                self.tar.addfile(ti)

    def add_bytes(self, name: str, data: bytes) -> None:
        if name not in self.names:
            self.dirs(name)
            self.names.add(name)
            self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def add_stream(self, name: str, size: int, stream: IO[bytes]) -> None:
        if name not in self.names:
            self.dirs(name)
            self.names.add(name)
            self.tar.addfile(self._info(name, size), stream)


def _targets(engine: ImageService, refs: list[str]) -> list[tuple[str, str | None]]:
    """(image id, canonical tag or None) for each requested reference."""
    if not refs:
        raise InvalidArgument("at least one image is required")
    data = engine._image_index.read()
    out = []
    for ref in refs:
        image_id = engine._image_find(data, ref)
        tag = None
        with contextlib.suppress(InvalidArgument):
            canonical = str(reference.parse(ref))
            if data["refs"].get(canonical) == image_id:
                tag = canonical
        out.append((image_id, tag))
    return out


@contextlib.contextmanager
def _layer_stream(engine: ImageService, record: dict[str, Any]) -> Iterator[IO[bytes]]:
    """The uncompressed tar stream of a stored layer."""
    with engine._image_blobs.open(record["blob"]) as raw:
        yield decompressed(raw)


def _layer_records(engine: ImageService, image_id: str) -> list[tuple[str, dict[str, Any]]]:
    layers = engine._image_index.read()["layers"]
    out = []
    for diff_id in engine._image_diff_ids(image_id):
        if diff_id not in layers:
            raise NotFound(f"layer {diff_id} of image {image_id} is missing")
        out.append((diff_id, layers[diff_id]))
    return out


def _save_docker(engine: ImageService, w: _Writer,
                 targets: list[tuple[str, str | None]]) -> None:
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    by_image: dict[str, dict[str, Any]] = {}
    for image_id, tag in targets:
        config_raw = engine._image_blobs.read(image_id)
        hexid = image_id.removeprefix("sha256:")
        w.add_bytes(f"{hexid}.json", config_raw)
        parent = ""
        layer_names = []
        for diff_id, record in _layer_records(engine, image_id):
            v1id = hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
            w.add_bytes(f"{v1id}/VERSION", b"1.0")
            w.add_bytes(f"{v1id}/json", json.dumps({"id": v1id, "parent": parent or None,
                                                "os": "linux"}).encode())
            with _layer_stream(engine, record) as stream:
                w.add_stream(f"{v1id}/layer.tar", record["tar_size"], stream)
            layer_names.append(f"{v1id}/layer.tar")
            parent = v1id
        entry = by_image.get(image_id)
        if entry is None:
            entry = {"Config": f"{hexid}.json", "RepoTags": None, "Layers": layer_names}
            by_image[image_id] = entry
            manifest.append(entry)
        if tag:
            parsed = reference.parse(tag)
            entry["RepoTags"] = [*(entry["RepoTags"] or []), parsed.familiar()]
            repositories.setdefault(parsed.familiar_name, {})[parsed.tag or "latest"] = parent
    w.add_bytes("manifest.json", json.dumps(manifest).encode())
    if repositories:
        w.add_bytes("repositories", json.dumps(repositories).encode())


def _save_oci(engine: ImageService, w: _Writer, targets: list[tuple[str, str | None]]) -> None:
    descriptors = []
    for image_id, tag in targets:
        config_raw = engine._image_blobs.read(image_id)
        w.add_bytes(f"blobs/sha256/{image_id.removeprefix('sha256:')}", config_raw)
        layers = []
        for layer, (diff_id, record) in zip(engine._image_layer_blobs(image_id),
                                            _layer_records(engine, image_id), strict=True):
            if layer["compression"] in ("", "gzip"):
                with engine._image_blobs.open(layer["digest"]) as f:
                    w.add_stream(f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}",
                                 layer["size"], f)
                layers.append({"mediaType": layer["media_type"], "digest": layer["digest"],
                               "size": layer["size"]})
            else:  # bzip2/xz: OCI wants plain or gzip; write the plain tar
                with _layer_stream(engine, record) as stream:
                    w.add_stream(f"blobs/sha256/{diff_id.removeprefix('sha256:')}",
                                 record["tar_size"], stream)
                layers.append({"mediaType": OCI_LAYER, "digest": diff_id,
                               "size": record["tar_size"]})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": image_id, "size": len(config_raw)},
            "layers": layers}, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        w.add_bytes(f"blobs/sha256/{digest.removeprefix('sha256:')}", manifest)
        desc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest,
                                "size": len(manifest)}
        if tag:
            parsed = reference.parse(tag)
            desc["annotations"] = {NAME_ANNOTATION: str(parsed),
                                   REF_ANNOTATION: parsed.tag or "latest"}
        descriptors.append(desc)
    w.add_bytes("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    w.add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                      "manifests": descriptors}).encode())


def save_archive(engine: ImageService, refs: list[str], out: str | IO[bytes],
                 format: str = "docker") -> None:
    """`docker save`: write the images named by `refs` as one tar archive."""
    if format not in ("docker", "oci"):
        raise InvalidArgument(f"unknown archive format {format!r} (docker or oci)")
    targets = _targets(engine, refs)
    save = _save_docker if format == "docker" else _save_oci
    if not isinstance(out, str):
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            save(engine, _Writer(tar), targets)
    else:
        dest = Path(out)
        if dest.is_dir() or not dest.parent.is_dir():
            raise InvalidArgument(f"cannot write {out}: not a file in an existing directory")
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    save(engine, _Writer(tar), targets)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    for image_id, _ in targets:
        engine.store.emit("image", "save", image_id)
