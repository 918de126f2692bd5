"""Multi-file merge with Compose's per-key rules, `!reset`/`!override`, and unicity.

The rules are those of compose-go's `override` package: mappings merge key by key,
sequences append, scalars are replaced; the table below names the exceptions.
`enforce_unicity` then keeps one entry per key (volume target, published port, ...),
the later entry taking the earlier one's place.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from compose.errors import ConfigError
from compose.loader.treepath import TreePath, delete_path, find_rule, pattern

Merger = Callable[[Any, Any, TreePath], Any]


def _override(_: Any, other: Any, __: TreePath) -> Any:
    return other


def to_sequence(value: Any) -> list[Any]:
    """A list_or_dict value as a list of `KEY=VALUE` strings (maps sorted, as Compose)."""
    if isinstance(value, dict):
        seq: list[Any] = []
        for key, val in value.items():
            if val is None:
                seq.append(key)
            elif isinstance(val, list):
                seq += [f"{key}={go_str(v)}" for v in val]
            else:
                seq.append(f"{key}={go_str(val)}")
        return sorted(seq)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [value]
    return []


def go_str(value: Any) -> str:
    """A scalar formatted as Go's `%v` does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if value is None:
        return "<nil>"
    return str(value)


def to_mapping(value: Any, default: dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(k): copy.deepcopy(default) for k in value}
    return {}


def _merge_to_sequence(base: Any, other: Any, _: TreePath) -> Any:
    return to_sequence(base) + to_sequence(other)


def _merge_extra_hosts(base: Any, other: Any, _: TreePath) -> Any:
    right = to_sequence(base)
    return right + [v for v in to_sequence(other) if v not in right]


def _merge_logging(base: Any, other: Any, path: TreePath) -> Any:
    if not isinstance(base, dict) or not isinstance(other, dict):
        return other
    if "driver" not in other or "driver" not in base or other["driver"] == base["driver"]:
        return merge_mappings(base, other, path)
    return other


def _merge_build(base: Any, other: Any, path: TreePath) -> Any:
    def as_build(v: Any) -> dict[str, Any]:
        return {"context": v} if isinstance(v, str) else v if isinstance(v, dict) else {}

    return merge_mappings(as_build(base), as_build(other), path)


_DEPENDS_DEFAULT = {"condition": "service_started", "required": True}


def _merge_depends_on(base: Any, other: Any, path: TreePath) -> Any:
    return merge_mappings(to_mapping(base, _DEPENDS_DEFAULT),
                          to_mapping(other, _DEPENDS_DEFAULT), path)


def _merge_networks(base: Any, other: Any, path: TreePath) -> Any:
    return merge_mappings(to_mapping(base, None), to_mapping(other, None), path)


def _merge_ulimit(_: Any, other: Any, __: TreePath) -> Any:
    # compose-go merges the override with itself: the later ulimit replaces the earlier
    return other


def _merge_ipam_config(base: Any, other: Any, path: TreePath) -> Any:
    if not isinstance(base, list) or not isinstance(other, list):
        return other
    result: list[Any] = []
    for original in base:
        right = to_mapping(original, None)
        for override in other:
            left = to_mapping(override, None)
            if left.get("subnet") != right.get("subnet"):
                if left not in result:
                    result.append(left)
                continue
            result.append(merge_mappings(right, left, path))
    return result


MERGE_RULES: dict[tuple[str, ...], Merger] = {
    pattern("networks.*.ipam.config"): _merge_ipam_config,
    pattern("networks.*.labels"): _merge_to_sequence,
    pattern("volumes.*.labels"): _merge_to_sequence,
    pattern("services.*.annotations"): _merge_to_sequence,
    pattern("services.*.build"): _merge_build,
    pattern("services.*.build.args"): _merge_to_sequence,
    pattern("services.*.build.additional_contexts"): _merge_to_sequence,
    pattern("services.*.build.extra_hosts"): _merge_extra_hosts,
    pattern("services.*.build.labels"): _merge_to_sequence,
    pattern("services.*.command"): _override,
    pattern("services.*.depends_on"): _merge_depends_on,
    pattern("services.*.deploy.labels"): _merge_to_sequence,
    pattern("services.*.dns"): _merge_to_sequence,
    pattern("services.*.dns_opt"): _merge_to_sequence,
    pattern("services.*.dns_search"): _merge_to_sequence,
    pattern("services.*.entrypoint"): _override,
    pattern("services.*.env_file"): _merge_to_sequence,
    pattern("services.*.label_file"): _merge_to_sequence,
    pattern("services.*.environment"): _merge_to_sequence,
    pattern("services.*.extra_hosts"): _merge_extra_hosts,
    pattern("services.*.healthcheck.test"): _override,
    pattern("services.*.labels"): _merge_to_sequence,
    pattern("services.*.volumes.*.volume.labels"): _merge_to_sequence,
    pattern("services.*.logging"): _merge_logging,
    pattern("services.*.models"): _merge_networks,
    pattern("services.*.networks"): _merge_networks,
    pattern("services.*.sysctls"): _merge_to_sequence,
    pattern("services.*.tmpfs"): _merge_to_sequence,
    pattern("services.*.ulimits.*"): _merge_ulimit,
}


def merge_value(base: Any, other: Any, path: TreePath) -> Any:
    rule = find_rule(path, MERGE_RULES)
    if rule is not None:
        return rule(base, other, path)
    if other is None:
        return base
    if isinstance(base, dict) and isinstance(other, dict):
        return merge_mappings(base, other, path)
    if isinstance(base, list) and isinstance(other, list):
        return base + other
    return other


def merge_mappings(base: dict[str, Any], other: dict[str, Any],
                   path: TreePath) -> dict[str, Any]:
    """Merge `other` into `base` (mutated and returned)."""
    for key, value in other.items():
        if key not in base or key.startswith("x-"):
            base[key] = value
            continue
        base[key] = merge_value(base[key], value, (*path, key))
    return base


def merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Merge a later file's tree into the accumulated one."""
    return merge_mappings(base, other, ())


# --- unicity -------------------------------------------------------------------------

def _key_value_index(entry: Any) -> str:
    return str(entry).split("=", 1)[0]


def _volume_index(entry: Any) -> str:
    if isinstance(entry, dict):
        if not isinstance(entry.get("target"), str):
            raise ConfigError("service volume is missing a mount target")
        return str(entry["target"])
    if isinstance(entry, str):
        from compose.loader.canonical_volumes import parse_volume

        try:
            return str(parse_volume(entry).get("target", ""))
        except ValueError:
            return entry
    return ""


def _device_index(entry: Any) -> str:
    if isinstance(entry, dict):
        if not isinstance(entry.get("target"), str):
            raise ConfigError("service device is missing a mount target")
        return str(entry["target"])
    parts = str(entry).split(":")
    return parts[0] if len(parts) == 1 else parts[1]


def _mount_index(default_dir: str) -> Callable[[Any], str]:
    def index(entry: Any) -> str:
        if isinstance(entry, dict):
            if "target" in entry:
                return str(entry["target"])
            return f"{default_dir}/{entry.get('source')}"
        return f"{default_dir}/{entry}"

    return index


def _port_index(entry: Any) -> str:
    if isinstance(entry, dict):
        host = entry.get("host_ip", "0.0.0.0")
        proto = entry.get("protocol", "tcp")
        return f"{host}:{entry.get('published')}:{entry.get('target')}/{proto}"
    return str(entry)


def _env_file_index(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("path"))
    return str(entry)


UNIQUE_KEYS: dict[tuple[str, ...], Callable[[Any], str]] = {
    pattern("networks.*.labels"): _key_value_index,
    pattern("networks.*.ipam.options"): _key_value_index,
    pattern("services.*.annotations"): _key_value_index,
    pattern("services.*.build.args"): _key_value_index,
    pattern("services.*.build.additional_contexts"): _key_value_index,
    pattern("services.*.build.platform"): _key_value_index,
    pattern("services.*.build.tags"): _key_value_index,
    pattern("services.*.build.labels"): _key_value_index,
    pattern("services.*.cap_add"): _key_value_index,
    pattern("services.*.cap_drop"): _key_value_index,
    pattern("services.*.configs"): _mount_index(""),
    pattern("services.*.deploy.labels"): _key_value_index,
    pattern("services.*.dns"): _key_value_index,
    pattern("services.*.dns_opt"): _key_value_index,
    pattern("services.*.dns_search"): _key_value_index,
    pattern("services.*.environment"): _key_value_index,
    pattern("services.*.env_file"): _env_file_index,
    pattern("services.*.expose"): str,
    pattern("services.*.labels"): _key_value_index,
    pattern("services.*.links"): _key_value_index,
    pattern("services.*.networks.*.aliases"): _key_value_index,
    pattern("services.*.networks.*.link_local_ips"): _key_value_index,
    pattern("services.*.ports"): _port_index,
    pattern("services.*.profiles"): _key_value_index,
    pattern("services.*.secrets"): _mount_index("/run/secrets"),
    pattern("services.*.sysctls"): _key_value_index,
    pattern("services.*.tmpfs"): _key_value_index,
    pattern("services.*.volumes"): _volume_index,
    pattern("services.*.devices"): _device_index,
}


def enforce_unicity(value: Any, path: TreePath = ()) -> Any:
    """Keep one entry per unicity key in the sequences named by UNIQUE_KEYS."""
    if isinstance(value, dict):
        for key in list(value):
            value[key] = enforce_unicity(value[key], (*path, key))
        return value
    if isinstance(value, list):
        index = find_rule(path, UNIQUE_KEYS)
        if index is None:
            return value
        seq: list[Any] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(value):
            try:
                key = index(entry)
            except ConfigError as exc:
                from compose.loader.source import format_path

                exc.path = format_path((*path, i))
                raise
            if key in seen:
                seq[seen[key]] = entry
                continue
            seen[key] = len(seq)
            seq.append(entry)
        return seq
    return value


# --- !reset and !override --------------------------------------------------------------

def strip_tags(tree: Any, path: TreePath = ()) -> tuple[Any, list[TreePath]]:
    """Resolve `Tagged` values: `!reset` drops the value, `!override` keeps it bare.

    Returns the cleaned tree and the paths whose earlier values must be cleared
    before this tree is merged (compose-go's ResetProcessor).
    """
    from compose.loader.yamlload import Tagged

    paths: list[TreePath] = []

    def walk(value: Any, at: TreePath) -> tuple[bool, Any]:
        if isinstance(value, Tagged):
            paths.append(at)
            if value.tag == "!reset":
                return False, None
            return True, walk(value.value, at)[1]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                keep, cleaned = walk(item, (*at, key))
                if keep:
                    out[key] = cleaned
            return True, out
        if isinstance(value, list):
            items: list[Any] = []
            for i, item in enumerate(value):
                keep, cleaned = walk(item, (*at, i))
                if keep:
                    items.append(cleaned)
            return True, items
        return True, value

    keep, cleaned = walk(tree, path)
    return (cleaned if keep else None), paths


def apply_resets(tree: Any, paths: list[TreePath]) -> None:
    """Clear the values at `paths` in the accumulated tree."""
    for path in paths:
        if path and all(isinstance(p, str) for p in path):
            delete_path(tree, path)
