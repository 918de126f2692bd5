"""The `com.docker.compose.*` labels that link a project to engine resources, and the
config hash that tells whether a container still matches its service.

The hash is Compose's (`pkg/compose/hash.go`): sha256 of the service's JSON with the
fields that must not force a recreate blanked (`build`, `pull_policy`, `scale`,
`deploy.replicas`, `depends_on`, `profiles`). The canonical tree keeps the key order of
the reference's `config --format json`, which is Go's struct order, so serialising it
as Go's `json.Marshal` does gives the same digest as `docker compose config --hash`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

PREFIX = "com.docker.compose."
PROJECT = PREFIX + "project"
SERVICE = PREFIX + "service"
CONTAINER_NUMBER = PREFIX + "container-number"
CONFIG_HASH = PREFIX + "config-hash"
ONEOFF = PREFIX + "oneoff"
SLUG = PREFIX + "slug"
DEPENDS_ON = PREFIX + "depends_on"
IMAGE = PREFIX + "image"
VERSION = PREFIX + "version"
NETWORK = PREFIX + "network"
VOLUME = PREFIX + "volume"
WORKING_DIR = PREFIX + "project.working_dir"
CONFIG_FILES = PREFIX + "project.config_files"
ENVIRONMENT_FILE = PREFIX + "project.environment_file"
REPLACE = PREFIX + "replace"

# Left out of the hash: changing them must not recreate a running container.
HASH_BLANKED = ("build", "pull_policy", "scale", "depends_on", "profiles")

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_value(value: Any) -> Any:
    """Floats that are whole numbers print as integers in Go (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _go_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_go_value(v) for v in value]
    return value


def go_json(value: Any) -> str:
    """`value` serialised as Go's encoding/json would: compact, HTML characters escaped."""
    text = json.dumps(_go_value(value), separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def service_hash(service: Mapping[str, Any]) -> str:
    """The config-hash of one canonical service (a dict in `config --format json` shape)."""
    config = {k: v for k, v in service.items() if k not in HASH_BLANKED}
    deploy = config.get("deploy")
    if isinstance(deploy, Mapping) and "replicas" in deploy:
        config["deploy"] = {k: v for k, v in deploy.items() if k != "replicas"}
    return hashlib.sha256(go_json(config).encode()).hexdigest()


def depends_on_label(service: Mapping[str, Any]) -> str:
    """`db:service_healthy:true,cache:service_started:false` (service:condition:restart)."""
    deps = service.get("depends_on") or {}
    return ",".join(f"{name}:{dep.get('condition', 'service_started')}:"
                    f"{str(bool(dep.get('restart', False))).lower()}"
                    for name, dep in deps.items())


def project_filter(project: str, **more: str | None) -> dict[str, str | None]:
    """A label filter for engine list calls: the project plus optional other labels."""
    labels: dict[str, str | None] = {PROJECT: project}
    for key, value in more.items():
        labels[PREFIX + key.replace("_", "-")] = value
    return labels
