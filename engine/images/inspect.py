"""The `docker image inspect` shape of an image record."""

from __future__ import annotations

from typing import Any

from engine.api import Image
from engine.images.importer import empty_container_config


def image_inspect(image: Image) -> dict[str, Any]:
    """What `docker image inspect` prints for one image (API 1.45+ fields)."""
    config = {**empty_container_config(), **image.config}
    last = image.history[-1] if image.history else {}
    return {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": "",
        "Comment": last.get("comment", ""),
        "Created": image.created,
        "DockerVersion": "",
        "Author": last.get("author", ""),
        "Config": config,
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "GraphDriver": {"Data": None, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }
