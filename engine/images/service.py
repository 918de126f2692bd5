"""The engine service for the image store: list, inspect, import, load, save, tag, rm, prune.

Mixin `ImageService` of `engine.local.LocalEngine`. State: config and layer blobs in
`blobs/sha256/`, unpacked layers in `layers/<diff_id hex>/`, and the index of references,
images and layers in `images/index.json` (see `index.py`). Hooks for the other parts:
`_image_resolve`, `_image_layer_dirs`, `_image_config`, `_image_store_layer`,
`_image_register`, `_image_layer_blobs` (for push and save).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import IO, Any

from engine.api import Conflict, EngineRuntimeError, Image, InvalidArgument, NotFound
from engine.images import reference
from engine.images.blobs import BlobStore
from engine.images.importer import import_config, now_rfc3339
from engine.images.index import ImageIndex
from engine.images.layers import LayerStore
from engine.store import Store


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class ImageService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    # ------------------------------------------------------------ parts

    @property
    def _image_index(self) -> ImageIndex:
        return ImageIndex(self.store)

    @property
    def _image_blobs(self) -> BlobStore:
        return BlobStore(self.store.root)

    @property
    def _image_layers(self) -> LayerStore:
        return LayerStore(self.store, self._image_blobs)

    # ------------------------------------------------------------ hooks

    def _image_resolve(self, ref: str) -> Image:
        """The image named by a reference, a full id or a unique id prefix."""
        data = self._image_index.read()
        return self._image_record(self._image_find(data, ref), data)

    def _image_layer_dirs(self, image_id: str) -> list[Path]:
        """Unpacked layer directories, bottom -> top."""
        config = self._image_config(image_id)
        layers = self._image_layers
        dirs = []
        for diff_id in config.get("rootfs", {}).get("diff_ids", []):
            path = layers.path(diff_id)
            if not path.is_dir():
                raise NotFound(f"layer {diff_id} of image {image_id} is missing")
            dirs.append(path)
        return dirs

    def _image_config(self, image_id: str) -> dict[str, Any]:
        """The whole OCI image config JSON of an image."""
        try:
            config: dict[str, Any] = json.loads(self._image_blobs.read(image_id))
        except (NotFound, InvalidArgument):
            raise NotFound(f"No such image: {image_id}") from None
        return config

    def _image_layer_blobs(self, image_id: str) -> list[dict[str, Any]]:
        """Each layer's stored blob, bottom -> top: diff_id, digest, size and OCI media type
        (plain tar or tar+gzip as received; bzip2/xz blobs report `compression`)."""
        layers = self._image_index.read()["layers"]
        out = []
        for diff_id in self._image_diff_ids(image_id):
            record = layers.get(diff_id)
            if record is None:
                raise NotFound(f"layer {diff_id} of image {image_id} is missing")
            with self._image_blobs.open(record["blob"]) as f:
                magic = f.read(6)
            compression = ("gzip" if magic.startswith(b"\x1f\x8b") else
                           "bzip2" if magic.startswith(b"BZh") else
                           "xz" if magic.startswith(b"\xfd7zXZ") else "")
            media = "application/vnd.oci.image.layer.v1.tar" + (
                "+gzip" if compression == "gzip" else "")
            out.append({"diff_id": diff_id, "digest": record["blob"],
                        "size": self._image_blobs.size(record["blob"]), "media_type": media,
                        "compression": compression, "tar_size": record.get("tar_size", 0)})
        return out

    def _image_store_layer(self, tar_stream: IO[bytes], compressed: bool = False,
                           expected_blob: str | None = None,
                           expected_diff_id: str | None = None) -> tuple[str, Path]:
        """Store one layer blob and unpack it; returns (diff_id, unpacked directory).

        Compression is detected from the stream; `compressed` is accepted for callers
        that know it.
        """
        record = self._image_layers.put(tar_stream, expected_blob, expected_diff_id)
        diff_id = record.pop("diff_id")
        with self._image_index.transaction() as data:
            if not (self._image_layers.exists(diff_id) and self._image_blobs.exists(
                    record["blob"])):
                raise EngineRuntimeError(f"layer {diff_id} was removed while it was being "
                                         "stored; retry")
            old = data["layers"].get(diff_id)
            if old is None or not self._image_blobs.exists(old.get("blob", "")):
                data["layers"][diff_id] = record
            elif old.get("blob") != record["blob"]:
                self._image_blobs.delete(record["blob"])  # keep the blob we know
        return diff_id, self._image_layers.path(diff_id)

    def _image_register(self, config: dict[str, Any] | bytes, tags: Any = (),
                        repo_digests: tuple[str, ...] = ()) -> Image:
        """Record an image from its config (dict, or the exact bytes to keep an id)."""
        raw = config if isinstance(config, bytes) else json.dumps(
            config, separators=(",", ":")).encode()
        parsed = json.loads(raw)
        diff_ids = parsed.get("rootfs", {}).get("diff_ids", [])
        refs = [str(reference.parse(t)) for t in ([tags] if isinstance(tags, str) else tags)]
        for r in refs:
            if reference.parse(r).digest:
                raise InvalidArgument(f"refusing to create a tag with a digest reference: {r}")
        with self._image_index.transaction() as data:
            for diff_id in diff_ids:
                if diff_id not in data["layers"] or not self._image_layers.exists(diff_id):
                    raise NotFound(f"layer {diff_id} is not in the store")
            image_id = self._image_blobs.put_bytes(raw)
            entry = data["images"].setdefault(image_id, {"added": now_rfc3339(),
                                                         "repo_digests": []})
            for d in repo_digests:
                if d not in entry["repo_digests"]:
                    entry["repo_digests"].append(d)
            for r in refs:
                data["refs"][r] = image_id
        for r in refs:
            self.store.emit("image", "tag", image_id, name=reference.familiar(r))
        return self._image_record(image_id, self._image_index.read())

    # ------------------------------------------------------------ lookups

    def _image_find(self, data: dict[str, Any], ref: str) -> str:
        images: dict[str, Any] = data["images"]
        hexpart = ref.removeprefix("sha256:")
        if reference.HEX64_RE.match(hexpart):
            if "sha256:" + hexpart in images:
                return "sha256:" + hexpart
            raise NotFound(f"No such image: {ref}")
        parsed: reference.Reference | None = None
        with contextlib.suppress(InvalidArgument):
            parsed = reference.parse(ref)
        if parsed is not None:
            found = data["refs"].get(str(parsed))
            if found in images:
                return str(found)
            if parsed.digest:
                for image_id, entry in images.items():
                    if str(parsed) in entry.get("repo_digests", []) or any(
                            d.endswith("@" + parsed.digest) and d.split("@")[0] == parsed.name
                            for d in entry.get("repo_digests", [])):
                        return str(image_id)
        if reference.looks_like_id_prefix(ref):
            matches = [i for i in images if i.removeprefix("sha256:").startswith(hexpart)]
            if len(matches) == 1:
                return str(matches[0])
            if len(matches) > 1:
                raise InvalidArgument(f"image id prefix {ref!r} is ambiguous "
                                      f"({len(matches)} images)")
        if parsed is None and not reference.looks_like_id_prefix(ref):
            reference.parse(ref)  # re-raise the reference's own error
        raise NotFound(f"No such image: {ref}")

    def _image_record(self, image_id: str, data: dict[str, Any]) -> Image:
        config = self._image_config(image_id)
        entry = data["images"].get(image_id, {})
        refs = sorted(r for r, i in data["refs"].items() if i == image_id)
        tags = tuple(reference.familiar(r) for r in refs if "@" not in r)
        digests = [reference.familiar(d) for d in entry.get("repo_digests", [])]
        digests += [reference.familiar(r) for r in refs if "@" in r]
        diff_ids = tuple(config.get("rootfs", {}).get("diff_ids", []))
        size = sum(data["layers"].get(d, {}).get("size", 0) for d in diff_ids)
        return Image(id=image_id, repo_tags=tags, repo_digests=tuple(dict.fromkeys(digests)),
                     created=config.get("created", ""), size=size,
                     config=config.get("config") or {},
                     architecture=config.get("architecture", "amd64"),
                     os=config.get("os", "linux"), diff_ids=diff_ids,
                     history=tuple(config.get("history") or ()))

    def _image_users(self, image_id: str) -> list[str]:
        """Containers using an image (none while the runtime part is missing)."""
        using = getattr(self, "_containers_using_image", None)
        return list(using(image_id)) if using is not None else []

    def _image_user_running(self, container_id: str) -> bool:
        record = getattr(self, "_container_record", None)
        if record is None:
            return False
        try:
            return bool(record(container_id).state.running)
        except Exception:  # a container vanishing meanwhile is not running
            return False

    # ------------------------------------------------------------ Engine protocol

    def image_list(self) -> list[Image]:
        data = self._image_index.read()
        images = [self._image_record(i, data) for i in data["images"]]
        return sorted(images, key=lambda im: im.created, reverse=True)

    def image_inspect(self, ref: str) -> Image:
        return self._image_resolve(ref)

    def image_import(self, tarball: str | IO[bytes], ref: str | None = None,
                     changes: tuple[str, ...] = (), message: str = "") -> Image:
        """`docker import`: one layer from a rootfs tarball (plain, gzip, bzip2, xz)."""
        tags = [str(reference.parse(ref))] if ref else []
        import_config("sha256:" + "0" * 64, changes)  # validate the changes before the work
        if isinstance(tarball, str):
            try:
                f: IO[bytes] = open(tarball, "rb")  # noqa: SIM115
            except OSError as exc:
                raise InvalidArgument(f"cannot read {tarball}: {exc.strerror}") from None
            with f:
                diff_id, _ = self._image_store_layer(f)
        else:
            diff_id, _ = self._image_store_layer(tarball)
        image = self._image_register(import_config(diff_id, changes, message=message), tags)
        self.store.emit("image", "import", image.id)
        return image

    def image_load(self, archive: str | IO[bytes]) -> list[Image]:
        from engine.images.archive import load_archive

        return load_archive(self, archive)

    def image_save(self, refs: list[str], out: str | IO[bytes], format: str = "docker") -> None:
        from engine.images.archive import save_archive

        save_archive(self, refs, out, format)

    def image_tag(self, ref: str, new_ref: str) -> None:
        parsed = reference.parse(new_ref)
        if parsed.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {new_ref}")
        with self._image_index.transaction() as data:
            image_id = self._image_find(data, ref)
            data["refs"][str(parsed)] = image_id
        self.store.emit("image", "tag", image_id, name=parsed.familiar())

    def image_remove(self, ref: str, force: bool = False) -> list[str]:
        """Docker's rmi: returns the lines `Untagged: ...` and `Deleted: ...`."""
        with self._image_index.transaction() as data:
            image_id = self._image_find(data, ref)
            lines, layers = self._image_remove_locked(data, image_id, ref, force)
            # Retired under the lock, so a concurrent import never sees half a layer.
            trash = [self._image_layers.retire(d, blob) for d, blob in layers or []]
            if layers is not None:
                self._image_blobs.delete(image_id)
        for path in trash:
            self._image_layers.purge(path)
        for line in lines:
            if line.startswith("Untagged: "):
                self.store.emit("image", "untag", image_id, name=line.removeprefix("Untagged: "))
        if layers is not None:
            self.store.emit("image", "delete", image_id)
        return lines

    def _image_remove_locked(self, data: dict[str, Any], image_id: str, ref: str,
                             force: bool) -> tuple[list[str], list[Any] | None]:
        """Docker's delete rules; returns the lines and the layers to drop (None: keep)."""
        refs = [r for r, i in data["refs"].items() if i == image_id]
        users = self._image_users(image_id)
        running = [c for c in users if self._image_user_running(c)]
        short = short_id(image_id)
        named: str | None = None
        if not (_is_hex(ref) and image_id.removeprefix("sha256:").startswith(
                ref.removeprefix("sha256:"))):
            with contextlib.suppress(InvalidArgument):
                named = str(reference.parse(ref))
            if named not in refs:
                named = None  # found through a repo digest: remove as if by id
        lines: list[str] = []
        if named is not None:
            if not force and len(refs) == 1 and users:
                raise Conflict(f'conflict: unable to remove repository reference "{ref}" '
                               f"(must force) - container {users[0][:12]} is using its "
                               f"referenced image {short}")
            data["refs"].pop(named)
            lines.append(f"Untagged: {reference.familiar(named)}")
            if len(refs) > 1:
                return lines, None
        else:
            if running:
                raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image "
                               f"is being used by running container {running[0][:12]}")
            if len(refs) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {short} (must be forced) - image "
                               "is referenced in multiple repositories")
            if users and not force:
                raise Conflict(f"conflict: unable to delete {short} (must be forced) - image "
                               f"is being used by stopped container {users[0][:12]}")
            for r in refs:
                data["refs"].pop(r)
                lines.append(f"Untagged: {reference.familiar(r)}")
        if users:
            return lines, None  # still used by a container: keep the content, untagged
        data["images"].pop(image_id, None)
        still_used = {d for i in data["images"] for d in self._image_diff_ids(i)}
        layers = [(d, data["layers"].pop(d).get("blob")) for d in self._image_diff_ids(image_id)
                  if d not in still_used and d in data["layers"]]
        lines.append(f"Deleted: {image_id}")
        return lines, layers

    def _image_diff_ids(self, image_id: str) -> list[str]:
        try:
            return list(self._image_config(image_id).get("rootfs", {}).get("diff_ids", []))
        except NotFound:
            return []

    def image_prune(self, all: bool = False) -> list[str]:
        """Remove dangling images (all unused images with `all`); returns deleted ids."""
        return [line.removeprefix("Deleted: ") for line in self._image_prune_report(all)[0]
                if line.startswith("Deleted: ")]

    def _image_prune_report(self, all: bool = False) -> tuple[list[str], int]:
        """(`untagged: ...`/`deleted: ...` lines as `Untagged: `/`Deleted: `, bytes freed)."""
        data = self._image_index.read()
        lines: list[str] = []
        freed = 0
        for image_id in list(data["images"]):
            refs = [r for r, i in data["refs"].items() if i == image_id]
            if (refs and not all) or self._image_users(image_id):
                continue
            try:
                size = self._image_record(image_id, data).size
                removed = self.image_remove(image_id, force=bool(refs))
            except (NotFound, Conflict):
                continue
            lines += removed
            freed += size
        if lines:
            self.store.emit("image", "prune", "", reclaimed=str(freed))
        return lines, freed

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        """Docker's history records, newest first."""
        image = self._image_resolve(ref)
        data = self._image_index.read()
        sizes = [data["layers"].get(d, {}).get("size", 0) for d in image.diff_ids]
        rows = []
        history = list(image.history) or [{"created": image.created}]
        layer = 0
        for h in history:
            size = 0
            if not h.get("empty_layer"):
                size = sizes[layer] if layer < len(sizes) else 0
                layer += 1
            rows.append({"Id": "<missing>", "Created": _epoch(h.get("created", "")),
                         "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                         "Comment": h.get("comment", "")})
        rows.reverse()
        rows[0]["Id"] = image.id
        rows[0]["Tags"] = list(image.repo_tags) or None
        return rows


def _is_hex(text: str) -> bool:
    return reference.looks_like_id_prefix(text)


def _epoch(created: str) -> int:
    from datetime import datetime

    if not created:
        return 0
    text = created.replace("Z", "+00:00")
    if "." in text:  # Python 3.11 accepts at most 6 fractional digits
        head, _, tail = text.partition(".")
        frac = "".join(c for c in tail if c.isdigit())
        rest = tail[len(frac):]
        text = f"{head}.{frac[:6]}{rest}"
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0
