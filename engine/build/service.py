"""The engine service for image building: mixin `BuildService` of LocalEngine.

`image_build(spec, progress)` reads the Dockerfile (file, or `dockerfile_inline`), loads
the context with its .dockerignore, runs the executor (executor.py) and registers the
target stage's image through the image store hooks `_image_store_layer` (called per
layer by the executor) and `_image_register`. `_build_cache_prune` (for `system prune`,
`builder prune`) forgets the cache and removes the layers no image uses.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from engine.api import BuildError, BuildSpec, Image, Progress, ProgressFn
from engine.images import reference
from engine.store import Store


class BuildService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    def image_build(self, spec: BuildSpec, progress: ProgressFn | None = None) -> Image:
        with self.store.lock("build", shared=True):  # _build_cache_prune waits for us
            return self._image_build(spec, progress or (lambda p: None))

    def _image_build(self, spec: BuildSpec, report: ProgressFn) -> Image:
        from engine.build.context import BuildContext
        from engine.build.dockerfile import parse
        from engine.build.executor import Executor

        text, name, path = _dockerfile_text(spec)
        report(Progress(id="[internal] load build definition from " + name, status="DONE"))
        dockerfile = parse(text, name)
        context = BuildContext(spec.context, path)
        report(Progress(id="[internal] load .dockerignore", status="DONE"))
        executor = Executor(self, spec, dockerfile, context, report)
        state = executor.run()
        config = dict(state.config)
        if spec.labels:
            config["Labels"] = {**(config.get("Labels") or {}), **dict(spec.labels)}
        created = state.history[-1]["created"] if state.history else "1970-01-01T00:00:00Z"
        image_config: dict[str, Any] = {
            "architecture": "amd64", "os": "linux", "config": config, "created": created,
            "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
            "history": state.history,
        }
        if state.author:
            image_config["author"] = state.author
        report(Progress(id="exporting to image", status="START"))
        raw = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
        image: Image = self._image_register(raw, spec.tags)  # type: ignore[attr-defined]
        names = "".join(f"\nnaming to {reference.parse(t)}" for t in spec.tags)
        report(Progress(id="exporting to image", status="DONE",
                        text=f"writing image {image.id}{names}"))
        return image

    def _build_cache_prune(self) -> int:
        """`docker builder prune -a`: drop every cache record and cache mount, and remove
        the layers no image uses (a build's intermediate layers). Returns bytes freed."""
        index = self._image_index  # type: ignore[attr-defined]
        layers = self._image_layers  # type: ignore[attr-defined]
        freed = 0
        with self.store.lock("build"):
            shutil.rmtree(self.store.path("build-cache"), ignore_errors=True)
            with index.transaction() as data:
                used = {d for i in data["images"]
                        for d in self._image_diff_ids(i)}  # type: ignore[attr-defined]
                trash = []
                for diff_id in [d for d in data["layers"] if d not in used]:
                    record = data["layers"].pop(diff_id)
                    freed += int(record.get("size") or 0)
                    trash.append(layers.retire(diff_id, record.get("blob")))
            for path in trash:
                layers.purge(path)
        return freed


def _dockerfile_text(spec: BuildSpec) -> tuple[str, str, str | None]:
    """(text, name for messages, path for `<Dockerfile>.dockerignore`)."""
    if spec.dockerfile_inline is not None:
        return spec.dockerfile_inline, "Dockerfile", None
    path = spec.dockerfile
    if path == "-":
        raise BuildError("reading a Dockerfile from stdin is not supported here")
    full = Path(path) if os.path.isabs(path) else Path(spec.context) / path
    try:
        return full.read_text(), os.path.basename(path) or "Dockerfile", str(full)
    except FileNotFoundError:
        raise BuildError(f"failed to read dockerfile: open {full}: no such file or "
                         "directory") from None
    except OSError as e:
        raise BuildError(f"failed to read dockerfile {full}: {e.strerror}") from None
