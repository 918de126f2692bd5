"""The engine service for image building: mixin `BuildService` of LocalEngine.

`image_build(spec, progress)` reads the Dockerfile (file, or `dockerfile_inline`), loads
the context with its .dockerignore, runs the executor (executor.py) and registers the
target stage's image through the image store hooks `_image_store_layer` (called per
layer by the executor) and `_image_register`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine.api import BuildError, BuildSpec, Image, Progress, ProgressFn
from engine.store import Store


class BuildService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    def image_build(self, spec: BuildSpec, progress: ProgressFn | None = None) -> Image:
        from engine.build.context import BuildContext
        from engine.build.dockerfile import parse
        from engine.build.executor import Executor

        report = progress or (lambda p: None)
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
        report(Progress(id="exporting to image", status="DONE",
                        text=f"writing image {image.id}"))
        return image


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
