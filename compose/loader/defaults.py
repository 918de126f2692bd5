"""Defaults the reference adds, and its normalisation of the merged tree.

`set_defaults` is compose-go's `SetDefaultValues` (port mode/protocol, secret
targets, device counts, build context); `normalize` is its
`Normalize` (implicit default network, build dockerfile, variables passed through
from the environment, implicit depends_on from links / network_mode / volumes_from,
and resource names).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from compose.loader.treepath import TreePath, find_rule, pattern


def _build_context(value: Any) -> Any:
    if isinstance(value, dict):
        value.setdefault("context", ".")
    return value


def _secret_mount(value: Any) -> Any:
    if isinstance(value, dict) and "target" not in value:
        value["target"] = f"/run/secrets/{value.get('source')}"
    return value


def _port(value: Any) -> Any:
    if isinstance(value, dict):
        value.setdefault("protocol", "tcp")
        value.setdefault("mode", "ingress")
    return value


def _device_request(value: Any) -> Any:
    if isinstance(value, dict) and "count" not in value and "device_ids" not in value:
        value["count"] = "all"
    return value


DEFAULTS: dict[tuple[str, ...], Callable[[Any], Any]] = {
    pattern("services.*.build"): _build_context,
    pattern("services.*.secrets.*"): _secret_mount,
    pattern("services.*.ports.*"): _port,
    pattern("services.*.deploy.resources.reservations.devices.*"): _device_request,
    pattern("services.*.gpus.*"): _device_request,
}


def set_defaults(value: Any, path: TreePath = ()) -> Any:
    rule = find_rule(path, DEFAULTS)
    if rule is not None:
        value = rule(value)
    if isinstance(value, dict):
        for key in list(value):
            value[key] = set_defaults(value[key], (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = set_defaults(item, (*path, "[]"))
    return value


# --- normalize -----------------------------------------------------------------------

_NAMESPACES = ("network_mode", "ipc", "pid", "uts", "cgroup")


def _resolve(value: Any, env: Mapping[str, str], keep_empty: bool) -> Any:
    """Fill `KEY` / `KEY: null` entries from the environment (compose-go `resolve`)."""
    if isinstance(value, list):
        out: list[Any] = []
        for entry in value:
            if isinstance(entry, str) and "=" not in entry:
                if entry in env:
                    out.append(f"{entry}={env[entry]}")
                elif keep_empty:
                    out.append(entry)
            else:
                out.append(entry)
        return out
    if isinstance(value, dict):
        resolved: dict[str, Any] = {}
        for key, val in value.items():
            if val is not None:
                resolved[key] = val
            elif key in env:
                resolved[key] = env[key]
            elif keep_empty:
                resolved[key] = None
        return resolved
    return value


def _normalize_networks(tree: dict[str, Any]) -> None:
    networks = tree.get("networks") or {}
    uses_default = False
    for service in (tree.get("services") or {}).values():
        if not isinstance(service, dict) or "provider" in service or "network_mode" in service:
            continue
        nets = service.get("networks")
        if not nets:
            service["networks"] = {"default": None}
            uses_default = True
        elif "default" in nets:
            uses_default = True
    if uses_default and "default" not in networks:
        networks["default"] = {}
    if networks:
        tree["networks"] = networks


def _implicit_dependency(depends_on: dict[str, Any], name: str, restart: bool) -> None:
    if name not in depends_on:
        depends_on[name] = {"condition": "service_started", "restart": restart,
                            "required": True}


def _normalize_service(service: dict[str, Any], env: Mapping[str, str]) -> None:
    if service.get("pull_policy") == "if_not_present":
        service["pull_policy"] = "missing"
    build = service.get("build")
    if isinstance(build, dict):
        if build.get("context") is None:
            build["context"] = "."
        if build.get("dockerfile") is None and build.get("dockerfile_inline") is None:
            build["dockerfile"] = "Dockerfile"
        if "args" in build:
            build["args"] = _resolve(build["args"], env, False)
    if "environment" in service:
        service["environment"] = _resolve(service["environment"], env, True)
    depends_on = service.get("depends_on")
    if not isinstance(depends_on, dict):
        depends_on = {}
    for link in service.get("links") or []:
        parts = str(link).split(":")
        _implicit_dependency(depends_on, parts[0] if len(parts) == 2 else str(link), True)
    for namespace in _NAMESPACES:
        ref = service.get(namespace)
        if isinstance(ref, str) and ref.startswith("service:"):
            _implicit_dependency(depends_on, ref[len("service:"):], True)
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict) and isinstance(vol.get("target"), str):
            vol["target"] = posixpath.normpath(vol["target"]) if vol["target"] else ""
    for ref in service.get("volumes_from") or []:
        if not str(ref).startswith("container:"):
            _implicit_dependency(depends_on, str(ref).split(":")[0], False)
    if depends_on:
        service["depends_on"] = depends_on


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _names_from_keys(tree: dict[str, Any]) -> None:
    for kind in ("networks", "volumes", "configs", "secrets"):
        resources = tree.get(kind)
        if not isinstance(resources, dict):
            continue
        for key, resource in list(resources.items()):
            if not isinstance(resource, dict):
                resource = {}
            if resource.get("name") is None:
                if _is_true(resource.get("external")):
                    resource["name"] = key
                else:
                    resource["name"] = f"{tree.get('name')}_{key}"
            resources[key] = resource


def normalize(tree: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    _normalize_networks(tree)
    for service in (tree.get("services") or {}).values():
        if isinstance(service, dict):
            _normalize_service(service, env)
    _names_from_keys(tree)
    return tree


def resolve_environment(tree: dict[str, Any], env: Mapping[str, str]) -> None:
    """`environment: [VAR]` entries take VAR's value from the interpolation environment."""
    for service in (tree.get("services") or {}).values():
        if isinstance(service, dict) and isinstance(service.get("environment"), list):
            service["environment"] = [
                f"{e}={env[e]}" if isinstance(e, str) and e in env else e
                for e in service["environment"]]
