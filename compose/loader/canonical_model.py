"""The reference's model layout: field order, value kinds and omitempty per struct.

`bind_project` turns the loaded tree into what `config --format json` prints.
"""

from __future__ import annotations

from typing import Any

from compose.errors import ConfigError
from compose.loader import canonical_values as v
from compose.loader.canonical_values import Struct, StructDict, list_of, map_of
from compose.loader.source import SourceMap

_DURATION_FIELDS = ("timeout", "interval", "start_period", "start_interval")

HEALTHCHECK = Struct(
    ["test", "timeout", "interval", "retries", "start_period", "start_interval", "disable"],
    {"test": v.health_test, "timeout": v.duration, "interval": v.duration,
     "start_period": v.duration, "start_interval": v.duration, "retries": v.integer,
     "disable": v.boolean},
    keep=("timeout", "interval", "retries", "start_period", "start_interval"))

PORT = Struct(["name", "mode", "host_ip", "target", "published", "protocol", "app_protocol"],
              {"target": v.integer, "published": v.string})

BIND = Struct(["selinux", "propagation", "create_host_path", "recursive"],
              {"create_host_path": v.boolean})
VOLUME_OPTS = Struct(["labels", "nocopy", "subpath"], {"labels": v.labels,
                                                         "nocopy": v.boolean})
TMPFS = Struct(["size", "mode"], {"size": v.unit_bytes, "mode": v.integer})
IMAGE_OPTS = Struct(["subpath"])
SERVICE_VOLUME = Struct(
    ["type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs",
     "image"],
    {"read_only": v.boolean, "bind": BIND, "volume": VOLUME_OPTS, "tmpfs": TMPFS,
     "image": IMAGE_OPTS},
    keep=("volume", "bind", "tmpfs", "image"))

FILE_MOUNT = Struct(["source", "target", "uid", "gid", "mode"],
                    {"uid": v.string, "gid": v.string, "mode": v.file_mode})

DEPENDS_ON = Struct(["condition", "restart", "required"],
                    {"restart": v.boolean, "required": v.boolean}, keep=("required",))

SERVICE_NETWORK = Struct(
    ["aliases", "driver_opts", "gw_priority", "interface_name", "ipv4_address",
     "ipv6_address", "link_local_ips", "mac_address", "priority"],
    {"aliases": v.string_list, "driver_opts": v.labels, "gw_priority": v.integer,
     "priority": v.integer, "link_local_ips": v.string_list})

LOGGING = Struct(["driver", "options"], {"options": v.labels})

DEVICE_REQUEST = Struct(["capabilities", "driver", "count", "device_ids", "options"],
                        {"count": v.device_count, "capabilities": v.string_list,
                         "device_ids": v.string_list, "options": v.labels},
                        keep=("count",))

RESOURCE = Struct(["cpus", "memory", "pids", "devices", "generic_resources"],
                  {"cpus": v.number, "memory": v.unit_bytes, "pids": v.integer,
                   "devices": list_of(DEVICE_REQUEST)})
RESOURCES = Struct(["limits", "reservations"], {"limits": RESOURCE, "reservations": RESOURCE})
RESTART_POLICY = Struct(["condition", "delay", "max_attempts", "window"],
                        {"delay": v.duration, "window": v.duration,
                         "max_attempts": v.integer}, keep=("max_attempts",))
UPDATE_CONFIG = Struct(["parallelism", "delay", "failure_action", "monitor",
                        "max_failure_ratio", "order"],
                       {"parallelism": v.integer, "delay": v.duration,
                        "monitor": v.duration, "max_failure_ratio": v.number},
                       keep=("parallelism",))
PLACEMENT = Struct(["constraints", "preferences", "max_replicas_per_node"],
                   {"max_replicas_per_node": v.integer})
DEPLOY = Struct(
    ["mode", "replicas", "labels", "update_config", "rollback_config", "resources",
     "restart_policy", "placement", "endpoint_mode"],
    {"replicas": v.integer, "labels": v.labels, "update_config": UPDATE_CONFIG,
     "rollback_config": UPDATE_CONFIG, "resources": RESOURCES,
     "restart_policy": RESTART_POLICY, "placement": PLACEMENT},
    keep=("replicas", "resources", "placement"))

BUILD = Struct(
    ["context", "dockerfile", "dockerfile_inline", "entitlements", "args", "provenance",
     "sbom", "ssh", "labels", "cache_from", "cache_to", "no_cache", "no_cache_filter",
     "additional_contexts", "pull", "extra_hosts", "isolation", "network", "target",
     "secrets", "shm_size", "tags", "ulimits", "platforms", "privileged"],
    {"args": v.mapping_with_equals, "ssh": v.ssh_keys, "labels": v.labels,
     "cache_from": v.string_list, "cache_to": v.string_list, "no_cache": v.boolean,
     "no_cache_filter": v.string_list,
     "additional_contexts": v.labels, "pull": v.boolean, "shm_size": v.unit_bytes,
     "extra_hosts": v.extra_hosts, "privileged": v.boolean,
     "secrets": list_of(FILE_MOUNT), "tags": v.string_list,
     "ulimits": map_of(v.ulimit), "platforms": v.string_list,
     "entitlements": v.string_list, "provenance": v.string, "sbom": v.string})

SERVICE_HOOK = Struct(["command", "user", "privileged", "working_dir", "environment"],
                      {"command": v.command, "privileged": v.boolean,
                       "environment": v.mapping_with_equals}, keep=("command",))

WATCH_EXEC = Struct(["command", "user", "privileged", "working_dir", "environment"],
                    {"command": v.command, "privileged": v.boolean,
                     "environment": v.mapping_with_equals}, keep=("command",))
WATCH = Struct(["path", "action", "target", "exec", "include", "ignore", "initial_sync"],
               {"exec": WATCH_EXEC, "include": v.string_list, "ignore": v.string_list,
                "initial_sync": v.boolean}, keep=("exec",))
DEVELOP = Struct(["watch"], {"watch": list_of(WATCH)})

DEVICE = Struct(["source", "target", "permissions"])
BLKIO_DEVICE = Struct(["path", "rate"], {"rate": v.unit_bytes})
BLKIO_WEIGHT = Struct(["path", "weight"], {"weight": v.integer})
BLKIO = Struct(["weight", "weight_device", "device_read_bps", "device_read_iops",
                "device_write_bps", "device_write_iops"],
               {"weight": v.integer, "weight_device": list_of(BLKIO_WEIGHT),
                "device_read_bps": list_of(BLKIO_DEVICE),
                "device_read_iops": list_of(BLKIO_DEVICE),
                "device_write_bps": list_of(BLKIO_DEVICE),
                "device_write_iops": list_of(BLKIO_DEVICE)})
PROVIDER = Struct(["type", "options"], {"options": v.string_lists})
CREDENTIAL_SPEC = Struct(["config", "file", "registry"])
ENV_FILE = Struct(["path", "format", "required"], {"required": v.boolean},
                  keep=("required",))
SERVICE_MODEL = Struct(["endpoint_var", "model_var"])

SERVICE = Struct(
    ["profiles", "annotations", "attach", "build", "develop", "blkio_config", "cap_add",
     "cap_drop", "cgroup_parent", "cgroup", "cpu_count", "cpu_percent", "cpu_period",
     "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset", "cpu_shares",
     "command", "configs", "container_name", "credential_spec", "depends_on", "deploy",
     "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "dockerfile",
     "domainname", "entrypoint", "provider", "environment", "env_file", "expose",
     "extends", "external_links", "extra_hosts", "group_add", "gpus", "hostname",
     "healthcheck", "image", "init", "ipc", "isolation", "labels", "label_file", "links",
     "logging", "log_driver", "log_opt", "mem_limit", "mem_reservation", "memswap_limit",
     "mem_swappiness", "mac_address", "models", "net", "network_mode", "networks",
     "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
     "privileged", "pull_policy", "pull_refresh_after", "read_only", "restart", "runtime",
     "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
     "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket",
     "user", "userns_mode", "uts", "volume_driver", "volumes", "volumes_from",
     "working_dir", "post_start", "pre_stop"],
    {"profiles": v.string_list, "annotations": v.labels, "attach": v.boolean,
     "build": BUILD, "develop": DEVELOP, "blkio_config": BLKIO,
     "cap_add": v.string_list, "cap_drop": v.string_list,
     "cpu_count": v.integer, "cpu_percent": v.number, "cpu_period": v.integer,
     "cpu_quota": v.integer, "cpu_rt_period": v.integer, "cpu_rt_runtime": v.integer,
     "cpus": v.number, "cpu_shares": v.integer, "command": v.command,
     "configs": list_of(FILE_MOUNT), "credential_spec": CREDENTIAL_SPEC,
     "depends_on": map_of(DEPENDS_ON), "deploy": DEPLOY,
     "device_cgroup_rules": v.string_list, "devices": list_of(DEVICE),
     "dns": v.string_list, "dns_opt": v.string_list, "dns_search": v.string_list,
     "entrypoint": v.command, "provider": PROVIDER,
     "environment": v.mapping_with_equals, "expose": v.string_list,
     "env_file": list_of(ENV_FILE),
     "external_links": v.string_list, "extra_hosts": v.extra_hosts,
     "group_add": v.string_list, "gpus": list_of(DEVICE_REQUEST),
     "healthcheck": HEALTHCHECK, "init": v.boolean, "labels": v.labels,
     "label_file": v.string_list, "links": v.string_list, "logging": LOGGING,
     "log_opt": v.labels, "mem_limit": v.unit_bytes, "mem_reservation": v.unit_bytes,
     "memswap_limit": v.unit_bytes, "mem_swappiness": v.unit_bytes,
     "models": map_of(SERVICE_MODEL, null_ok=True),
     "networks": map_of(SERVICE_NETWORK, null_ok=True), "oom_kill_disable": v.boolean,
     "oom_score_adj": v.integer, "pids_limit": v.integer, "ports": list_of(PORT),
     "privileged": v.boolean, "read_only": v.boolean, "scale": v.integer,
     "secrets": list_of(FILE_MOUNT), "security_opt": v.string_list,
     "shm_size": v.unit_bytes, "stdin_open": v.boolean,
     "stop_grace_period": v.duration, "storage_opt": v.labels, "sysctls": v.labels,
     "tmpfs": v.string_list, "tty": v.boolean, "ulimits": map_of(v.ulimit),
     "use_api_socket": v.boolean, "volumes": list_of(SERVICE_VOLUME),
     "volumes_from": v.string_list, "post_start": list_of(SERVICE_HOOK),
     "pre_stop": list_of(SERVICE_HOOK), "user": v.string, "hostname": v.string,
     "working_dir": v.string, "container_name": v.string, "image": v.string},
    keep=("command", "entrypoint", "attach", "init", "scale", "pids_limit"))

IPAM_POOL = Struct(["subnet", "gateway", "ip_range", "aux_addresses"],
                   {"aux_addresses": v.labels})
IPAM = Struct(["driver", "config", "options"],
              {"config": list_of(IPAM_POOL), "options": v.labels})
NETWORK = Struct(
    ["name", "driver", "driver_opts", "ipam", "external", "internal", "attachable",
     "labels", "enable_ipv6", "enable_ipv4"],
    {"driver_opts": v.labels, "ipam": IPAM, "external": v.boolean, "internal": v.boolean,
     "attachable": v.boolean, "labels": v.labels, "enable_ipv6": v.boolean,
     "enable_ipv4": v.boolean},
    keep=("ipam", "enable_ipv6", "enable_ipv4"))
VOLUME = Struct(["name", "driver", "driver_opts", "external", "labels"],
                {"driver_opts": v.labels, "external": v.boolean, "labels": v.labels})
FILE_OBJECT = Struct(
    ["name", "file", "environment", "content", "external", "labels", "driver",
     "driver_opts", "template_driver"],
    {"external": v.boolean, "labels": v.labels, "driver_opts": v.labels})
MODEL = Struct(["name", "model", "context_size", "runtime_flags"],
               {"context_size": v.integer, "runtime_flags": v.string_list})


def _service_pid_limit(service: dict[str, Any]) -> None:
    if service.get("pids_limit") in (0, None):
        service.pop("pids_limit", None)


def bind_service(service: Any) -> Any:
    out = SERVICE(service)
    if isinstance(out, dict):
        _service_pid_limit(out)
        out.setdefault("command", None)
        out.setdefault("entrypoint", None)
        if isinstance(out.get("deploy"), dict):
            deploy = {"resources": {}, "placement": {}, **out["deploy"]}
            out["deploy"] = StructDict((k, deploy[k]) for k in DEPLOY.fields if k in deploy)
            out["deploy"].update({k: v for k, v in deploy.items() if k not in out["deploy"]})
        if "blkio_config" in out:
            for key, items in out["blkio_config"].items():
                if isinstance(items, list):
                    out["blkio_config"][key] = [
                        {k.capitalize(): val for k, val in item.items()}
                        if isinstance(item, dict) else item for item in items]
        watches = (out.get("develop") or {}).get("watch") or []
        for i, watch in enumerate(watches):
            if isinstance(watch, dict) and "exec" not in watch:
                watch["exec"] = {"command": None}
                watches[i] = WATCH(watch)
        order = {k: i for i, k in enumerate(SERVICE.fields)}
        out = StructDict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))
    return out


def _resources(value: Any, struct: Struct) -> Any:
    if not isinstance(value, dict):
        return value
    return {name: struct(item if item is not None else {}) for name, item in value.items()}


def _bind_located(name: str, service: Any, source: SourceMap | None) -> Any:
    try:
        return bind_service(service)
    except ConfigError as exc:
        path = f"services.{name}" + (f".{exc.path}" if exc.path else "")
        parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
        mark = source.locate(tuple(parts)) if source is not None else None
        if mark is not None and exc.file is None:
            exc.file, exc.line, exc.column = mark.file, mark.line, mark.column
        exc.path = path
        raise


def bind_project(tree: dict[str, Any], source: SourceMap | None = None) -> dict[str, Any]:
    """The loaded tree -> the reference's JSON form (a new dict, keys sorted as it does)."""
    out: dict[str, Any] = StructDict()
    if "name" in tree:
        out["name"] = tree["name"]
    services = tree.get("services") or {}
    out["services"] = {name: _bind_located(name, services[name], source)
                       for name in sorted(services)}
    for kind, struct in (("networks", NETWORK), ("volumes", VOLUME), ("secrets", FILE_OBJECT),
                         ("configs", FILE_OBJECT), ("models", MODEL)):
        declared = tree.get(kind)
        if kind == "networks" and isinstance(declared, dict):
            declared = {k: {**(n or {}), "ipam": (n or {}).get("ipam") or {}}
                        for k, n in declared.items()}
        resources = _resources(declared, struct)
        if resources:
            out[kind] = dict(sorted(resources.items()))
    for key in sorted(tree):
        if key.startswith("x-"):
            out[key] = v.sorted_deep(tree[key])
    return out
