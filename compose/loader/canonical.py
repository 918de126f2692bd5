"""Short syntax -> long syntax on the merged tree (compose-go's `transform.Canonical`).

Each rule rewrites the value at a path pattern; values still holding `${...}`
(with --no-interpolate) are left as they are when they cannot be parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compose.errors import ConfigError
from compose.loader.canonical_ports import canonical_ports
from compose.loader.canonical_volumes import canonical_volume
from compose.loader.treepath import TreePath, find_rule, pattern

Transformer = Callable[[Any, TreePath], Any]


def _string_or_list(value: Any, _: TreePath) -> Any:
    return [value] if isinstance(value, str) else value


def _build(value: Any, path: TreePath) -> Any:
    if isinstance(value, str):
        return {"context": value}
    return _walk_mapping(value, path) if isinstance(value, dict) else value


def _depends_on(value: Any, path: TreePath) -> Any:
    if isinstance(value, list):
        return {str(name): {"condition": "service_started", "required": True}
                for name in value}
    if isinstance(value, dict):
        for name, dep in value.items():
            if not isinstance(dep, dict):
                raise ConfigError(f"unsupported value {dep!r}", path=f"{_dotted(path)}.{name}")
            dep.setdefault("condition", "service_started")
            dep.setdefault("required", True)
    return value


def _env_file_entry(entry: Any) -> Any:
    if isinstance(entry, str):
        return {"path": entry, "required": True}
    if isinstance(entry, dict):
        entry.setdefault("required", True)
    return entry


def _env_file(value: Any, _: TreePath) -> Any:
    if isinstance(value, str):
        return [_env_file_entry(value)]
    if isinstance(value, list):
        return [_env_file_entry(e) for e in value]
    return value


def _extends(value: Any, _: TreePath) -> Any:
    return {"service": value} if isinstance(value, str) else value


def _gpus(value: Any, _: TreePath) -> Any:
    return [{"count": "all"}] if isinstance(value, str) else value


def _service_networks(value: Any, _: TreePath) -> Any:
    if isinstance(value, list):
        return {str(name): None for name in value}
    return value


def _volume_mount(value: Any, path: TreePath) -> Any:
    try:
        return canonical_volume(value)
    except ValueError as exc:
        if isinstance(value, str) and "$" in value:
            return value  # not interpolated (--no-interpolate): left as written
        raise ConfigError(str(exc), path=_dotted(path)) from None


def _device(value: Any, path: TreePath) -> Any:
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    if len(parts) > 3:
        raise ConfigError(f"confusing device mapping, please use long syntax: {value}",
                          path=_dotted(path))
    src = parts[0]
    dst = parts[1] if len(parts) > 1 else ""
    permissions = parts[2] if len(parts) > 2 else "rwm"
    return {"source": src, "target": dst or src, "permissions": permissions}


def _file_mount(value: Any, _: TreePath) -> Any:
    return {"source": value} if isinstance(value, str) else value


def _ports(value: Any, path: TreePath) -> Any:
    try:
        return canonical_ports(value)
    except ValueError as exc:
        if any(isinstance(p, str) and "$" in p for p in value or []):
            return value  # not interpolated (--no-interpolate): left as written
        raise ConfigError(str(exc), path=_dotted(path)) from None


def _ssh(value: Any, _: TreePath) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict):
        return [f"{k}={v}" if v is not None else str(k) for k, v in value.items()]
    return value


def _ulimit(value: Any, _: TreePath) -> Any:
    if isinstance(value, int | str) and not isinstance(value, bool):
        return {"single": value}
    return value


def _key_value(value: Any, path: TreePath) -> Any:
    if isinstance(value, list):
        mapping: dict[str, Any] = {}
        for entry in value:
            key, sep, val = str(entry).partition("=")
            if not sep:
                raise ConfigError(f"invalid value {entry}, expected key=value",
                                  path=_dotted(path))
            mapping[key] = val
        return mapping
    return value


def _maybe_external(value: Any, path: TreePath) -> Any:
    if not isinstance(value, dict):
        return value
    external = value.get("external")
    if isinstance(external, dict):
        if "name" in external:
            value["name"] = external["name"]
        value["external"] = True
    return value


def _include(value: Any, _: TreePath) -> Any:
    return {"path": value} if isinstance(value, str) else value


def _service(value: Any, path: TreePath) -> Any:
    return _walk_mapping(value, path) if isinstance(value, dict) else value


TRANSFORMS: dict[tuple[str, ...], Transformer] = {
    pattern("services.*"): _service,
    pattern("services.*.build.secrets.*"): _file_mount,
    pattern("services.*.build.additional_contexts"): _key_value,
    pattern("services.*.depends_on"): _depends_on,
    pattern("services.*.env_file"): _env_file,
    pattern("services.*.label_file"): _string_or_list,
    pattern("services.*.extends"): _extends,
    pattern("services.*.gpus"): _gpus,
    pattern("services.*.networks"): _service_networks,
    pattern("services.*.models"): _service_networks,
    pattern("services.*.volumes.*"): _volume_mount,
    pattern("services.*.dns"): _string_or_list,
    pattern("services.*.devices.*"): _device,
    pattern("services.*.secrets.*"): _file_mount,
    pattern("services.*.configs.*"): _file_mount,
    pattern("services.*.ports"): _ports,
    pattern("services.*.build"): _build,
    pattern("services.*.build.ssh"): _ssh,
    pattern("services.*.ulimits.*"): _ulimit,
    pattern("services.*.build.ulimits.*"): _ulimit,
    pattern("volumes.*"): _maybe_external,
    pattern("networks.*"): _maybe_external,
    pattern("secrets.*"): _maybe_external,
    pattern("configs.*"): _maybe_external,
    pattern("include.*"): _include,
}


def _dotted(path: TreePath) -> str:
    return ".".join(str(p) for p in path if p != "[]")


def _walk_mapping(value: dict[str, Any], path: TreePath) -> dict[str, Any]:
    for key in list(value):
        value[key] = transform(value[key], (*path, key))
    return value


def transform(value: Any, path: TreePath = ()) -> Any:
    """Apply TRANSFORMS to `value` (the whole tree when `path` is empty)."""
    rule = find_rule(path, TRANSFORMS)
    if rule is not None:
        return rule(value, path)
    if isinstance(value, dict):
        return _walk_mapping(value, path)
    if isinstance(value, list):
        return [transform(item, (*path, "[]")) for item in value]
    return value


def canonical(tree: dict[str, Any]) -> dict[str, Any]:
    """The tree with every known short syntax in long form."""
    result: dict[str, Any] = transform(tree, ())
    return result
