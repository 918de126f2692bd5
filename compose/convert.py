"""The one translation from Compose to the engine: a canonical service dict (the
`config --format json` shape) plus a replica number -> `engine.api.ContainerSpec`; and
top-level networks/volumes -> `NetworkSpec`/`VolumeSpec`, with the Compose labels.

The loader has already folded `env_file` and the interpolation environment into
`environment`, resolved paths and expanded short syntax, so this module only maps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compose import labels as L
from compose.errors import ConfigError
from engine.api import (
    BuildSpec,
    ContainerSpec,
    EndpointSpec,
    Healthcheck,
    IPAMConfig,
    LogConfig,
    Mount,
    NetworkSpec,
    PortBinding,
    Resources,
    RestartPolicy,
    Ulimit,
    VolumeSpec,
)

SEPARATOR = "-"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.IGNORECASE)


@dataclass(frozen=True)
class ProjectInfo:
    """What a spec needs to know about the project besides the service itself."""

    name: str
    working_dir: str = ""
    config_files: tuple[str, ...] = ()
    environment_files: tuple[str, ...] = ()
    version: str = "0.1.0"


def duration(value: Any) -> float:
    """Go duration text ("1m30s", "500ms") or a number of seconds -> seconds."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def size(value: Any) -> int:
    """A byte size: int, "536870912" or "512m" -> bytes."""
    if isinstance(value, int | float):
        return int(value)
    m = _SIZE.match(str(value).strip())
    if not m:
        raise ConfigError(f"invalid size {value!r}")
    power = " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1024**power)


def container_name(project: str, service: str, number: int,
                   svc: Mapping[str, Any] | None = None) -> str:
    if svc and svc.get("container_name"):
        return str(svc["container_name"])
    return SEPARATOR.join((project, service, str(number)))


def image_ref(project: str, service: str, svc: Mapping[str, Any]) -> str:
    """The image a service runs: `image:`, or `<project>-<service>` for a build-only one."""
    return str(svc.get("image") or f"{project}{SEPARATOR}{service}")


def replicas(svc: Mapping[str, Any]) -> int:
    if svc.get("scale") is not None:
        return int(svc["scale"])
    deploy = svc.get("deploy") or {}
    if deploy.get("replicas") is not None:
        return int(deploy["replicas"])
    return 1


def network_name(project_data: Mapping[str, Any], key: str) -> str:
    net = (project_data.get("networks") or {}).get(key) or {}
    return str(net.get("name") or f"{project_data['name']}_{key}")


def volume_name(project_data: Mapping[str, Any], key: str) -> str:
    vol = (project_data.get("volumes") or {}).get(key) or {}
    return str(vol.get("name") or f"{project_data['name']}_{key}")


def _pairs(mapping: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), "" if v is None else str(v)) for k, v in (mapping or {}).items())


def _healthcheck(hc: Mapping[str, Any] | None) -> Healthcheck | None:
    if not hc:
        return None
    if hc.get("disable"):
        return Healthcheck(test=("NONE",))
    test = hc.get("test") or ()  # none: the image's test, with these timings (as Docker)
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    return Healthcheck(
        test=tuple(str(t) for t in test),
        interval=duration(hc.get("interval")) or 30.0,
        timeout=duration(hc.get("timeout")) or 30.0,
        retries=int(hc["retries"]) if hc.get("retries") is not None else 3,
        start_period=duration(hc.get("start_period")),
        start_interval=duration(hc.get("start_interval")) or 5.0,
    )


def _restart(svc: Mapping[str, Any]) -> RestartPolicy:
    text = svc.get("restart")
    if text:
        name, _, count = str(text).partition(":")
        if name not in ("no", "always", "on-failure", "unless-stopped"):
            raise ConfigError(f"invalid restart policy {text!r}")
        return RestartPolicy(name, int(count or 0))  # type: ignore[arg-type]
    policy = (svc.get("deploy") or {}).get("restart_policy")
    if policy:
        condition = {"none": "no", "any": "always"}.get(policy.get("condition", "any"),
                                                        policy.get("condition", "any"))
        return RestartPolicy(condition, int(policy.get("max_attempts") or 0))
    return RestartPolicy()


def _resources(svc: Mapping[str, Any]) -> Resources:
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    reservations = ((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
    memory = svc.get("mem_limit") or limits.get("memory")
    cpus = svc.get("cpus") or limits.get("cpus")
    pids = svc.get("pids_limit") or limits.get("pids")
    reservation = svc.get("mem_reservation") or reservations.get("memory")
    blkio = (svc.get("blkio_config") or {}).get("weight")
    return Resources(
        memory=size(memory) if memory else None,
        memory_swap=size(svc["memswap_limit"]) if svc.get("memswap_limit") else None,
        memory_reservation=size(reservation) if reservation else None,
        cpus=float(cpus) if cpus else None,
        cpu_shares=int(svc["cpu_shares"]) if svc.get("cpu_shares") else None,
        cpu_quota=int(svc["cpu_quota"]) if svc.get("cpu_quota") else None,
        cpu_period=int(svc["cpu_period"]) if svc.get("cpu_period") else None,
        cpuset_cpus=str(svc["cpuset"]) if svc.get("cpuset") else None,
        pids_limit=int(pids) if pids else None,
        oom_kill_disable=bool(svc.get("oom_kill_disable", False)),
        oom_score_adj=int(svc["oom_score_adj"]) if svc.get("oom_score_adj") is not None else None,
        blkio_weight=int(blkio) if blkio else None,
    )


def _tmpfs_mount(entry: str) -> Mount:
    target, _, opts = entry.partition(":")
    tmp_size = tmp_mode = None
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key == "size":
            tmp_size = size(value)
        elif key == "mode":
            tmp_mode = int(value, 8)
    return Mount("tmpfs", target, tmpfs_size=tmp_size, tmpfs_mode=tmp_mode)


def _mounts(project_data: Mapping[str, Any], svc: Mapping[str, Any]) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for vol in svc.get("volumes") or []:
        kind = vol.get("type", "volume")
        read_only = bool(vol.get("read_only", False))
        if kind == "bind":
            bind = vol.get("bind") or {}
            mounts.append(Mount("bind", vol["target"], vol.get("source", ""), read_only,
                                propagation=bind.get("propagation", ""),
                                create_host_path=bool(bind.get("create_host_path", True))))
        elif kind == "volume":
            opts = vol.get("volume") or {}
            source = vol.get("source") or ""
            mounts.append(Mount("volume", vol["target"],
                                volume_name(project_data, source) if source else "",
                                read_only, nocopy=bool(opts.get("nocopy", False)),
                                subpath=opts.get("subpath", "")))
        elif kind == "tmpfs":
            opts = vol.get("tmpfs") or {}
            mode = opts.get("mode")
            mounts.append(Mount("tmpfs", vol["target"],
                                tmpfs_size=size(opts["size"]) if opts.get("size") else None,
                                tmpfs_mode=int(str(mode), 8) if mode is not None else None))
        else:
            raise ConfigError(f"volume type {kind!r} is not supported by the built-in engine")
    tmpfs = svc.get("tmpfs") or []
    for entry in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        mounts.append(_tmpfs_mount(entry))
    mounts += _file_objects(project_data, svc, "secrets", "/run/secrets/")
    mounts += _file_objects(project_data, svc, "configs", "/")
    return tuple(mounts)


def _file_objects(project_data: Mapping[str, Any], svc: Mapping[str, Any], kind: str,
                  default_dir: str) -> list[Mount]:
    """A service's secrets or configs as read-only binds of their files, as Compose does
    without Swarm (a secret at /run/secrets/<name>, a config at /<name> by default)."""
    mounts = []
    for ref in svc.get(kind) or []:
        source = ref["source"]
        definition = (project_data.get(kind) or {}).get(source) or {}
        if not definition.get("file"):
            how = "external" if definition.get("external") else \
                "environment" if definition.get("environment") else "content"
            raise ConfigError(f"{kind}.{source}: {how} {kind} are not supported by the "
                              f"built-in engine yet; use `file:`")
        target = ref.get("target") or source
        if not target.startswith("/"):
            target = default_dir + target
        mounts.append(Mount("bind", target, definition["file"], read_only=True,
                            create_host_path=False))
    return mounts


def _ports(svc: Mapping[str, Any], number: int) -> tuple[PortBinding, ...]:
    bindings = []
    for port in svc.get("ports") or []:
        published = str(port.get("published") or "")
        if "-" in published:  # a range shared by replicas: replica N takes the Nth port
            low, high = (int(p) for p in published.split("-", 1))
            published = str(low + number - 1) if low + number - 1 <= high else ""
        bindings.append(PortBinding(int(port["target"]), port.get("protocol", "tcp"),
                                    port.get("host_ip", ""), published))
    return tuple(bindings)


def _endpoints(project_data: Mapping[str, Any], service: str,
               svc: Mapping[str, Any]) -> tuple[EndpointSpec, ...]:
    endpoints = []
    for key, ep in (svc.get("networks") or {}).items():
        ep = ep or {}
        aliases = (service, *[a for a in ep.get("aliases") or [] if a != service])
        endpoints.append(EndpointSpec(
            network=network_name(project_data, key), aliases=tuple(aliases),
            ipv4_address=ep.get("ipv4_address"), ipv6_address=ep.get("ipv6_address"),
            mac_address=ep.get("mac_address") or svc.get("mac_address"),
            priority=int(ep.get("priority") or 0),
            driver_opts=_pairs(ep.get("driver_opts"))))
    return tuple(sorted(endpoints, key=lambda e: -e.priority))


def _service_ref(project: str, project_data: Mapping[str, Any], value: str) -> str:
    """`service:db` -> `container:<db's first container>`; other values unchanged."""
    if value.startswith("service:"):
        name = value.split(":", 1)[1]
        svc = (project_data.get("services") or {}).get(name) or {}
        return "container:" + container_name(project, name, 1, svc)
    return value


def _volumes_from(project: str, project_data: Mapping[str, Any], value: str) -> str:
    """`db:ro` -> `<db's first container>:ro`; `container:x:ro` -> `x:ro`."""
    if value.startswith("container:"):
        return value.split(":", 1)[1]
    name, _, mode = value.partition(":")
    ref = _service_ref(project, project_data, "service:" + name).split(":", 1)[1]
    return f"{ref}:{mode}" if mode else ref


def _security_opts(opts: Any) -> tuple[str, ...]:
    """As Compose does: a `seccomp=<file>` profile is read now (relative to the working
    directory) and handed to the engine as JSON text, so later starts need no file."""
    out = []
    for opt in opts:
        key, sep, value = str(opt).partition("=")
        if not sep:
            key, sep, value = str(opt).partition(":")
        value = value.strip()
        if key.strip() == "seccomp" and value and value != "unconfined" \
                and not value.startswith("{"):
            try:
                with open(value, encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                raise ConfigError(f"opening seccomp profile ({value}) failed: "
                                  f"{exc.strerror or exc}") from None
            try:
                profile = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"seccomp profile {value}: invalid JSON: {exc}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(str(opt))
    return tuple(out)


def _command(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        import shlex

        return tuple(shlex.split(value))
    return tuple(str(v) for v in value)


def compose_labels(info: ProjectInfo, service: str, svc: Mapping[str, Any], number: int,
                   config_hash: str, oneoff: bool = False) -> tuple[tuple[str, str], ...]:
    labels = dict(_pairs(svc.get("labels")))
    labels.update({
        L.PROJECT: info.name, L.SERVICE: service, L.CONTAINER_NUMBER: str(number),
        L.CONFIG_HASH: config_hash, L.ONEOFF: "True" if oneoff else "False",
        L.DEPENDS_ON: L.depends_on_label(svc), L.IMAGE: image_ref(info.name, service, svc),
        L.VERSION: info.version, L.WORKING_DIR: info.working_dir,
        L.CONFIG_FILES: ",".join(info.config_files),
        L.ENVIRONMENT_FILE: ",".join(info.environment_files),
    })
    return tuple(labels.items())


def container_spec(info: ProjectInfo, project_data: Mapping[str, Any], service: str,
                   number: int, *, name: str | None = None, oneoff: bool = False,
                   config_hash: str | None = None) -> ContainerSpec:
    """The container for replica `number` of `service` (or a one-off run of it)."""
    svc = project_data["services"][service]
    project = info.name
    logging = svc.get("logging") or {}
    network_mode = _service_ref(project, project_data, str(svc.get("network_mode") or ""))
    volumes_from = tuple(_volumes_from(project, project_data, v)
                         for v in svc.get("volumes_from") or [])
    ulimits = tuple(
        Ulimit(k, int(v), int(v)) if isinstance(v, int | str)
        else Ulimit(k, int(v["soft"]), int(v["hard"]))
        for k, v in (svc.get("ulimits") or {}).items())
    devices = tuple(
        d if isinstance(d, str)
        else f"{d['source']}:{d.get('target', d['source'])}:{d.get('permissions', 'rwm')}"
        for d in svc.get("devices") or [])
    return ContainerSpec(
        image=image_ref(project, service, svc),
        name=name or (None if oneoff else container_name(project, service, number, svc)),
        command=_command(svc.get("command")),
        entrypoint=_command(svc.get("entrypoint")),
        env=tuple((k, str(v)) for k, v in (svc.get("environment") or {}).items()
                  if v is not None),
        labels=compose_labels(info, service, svc, number,
                              config_hash or L.service_hash(svc), oneoff),
        user=svc.get("user"),
        group_add=tuple(str(g) for g in svc.get("group_add") or []),
        working_dir=svc.get("working_dir"),
        hostname=svc.get("hostname"),
        domainname=svc.get("domainname"),
        tty=bool(svc.get("tty", False)),
        stdin_open=bool(svc.get("stdin_open", False)),
        init=bool(svc.get("init", False)),
        read_only=bool(svc.get("read_only", False)),
        privileged=bool(svc.get("privileged", False)),
        cap_add=tuple(svc.get("cap_add") or ()),
        cap_drop=tuple(svc.get("cap_drop") or ()),
        security_opt=_security_opts(svc.get("security_opt") or ()),
        stop_signal=svc.get("stop_signal"),
        stop_grace_period=(duration(svc["stop_grace_period"])
                           if svc.get("stop_grace_period") else None),
        restart=RestartPolicy() if oneoff else _restart(svc),
        healthcheck=_healthcheck(svc.get("healthcheck")),
        mounts=_mounts(project_data, svc),
        shm_size=size(svc["shm_size"]) if svc.get("shm_size") else None,
        sysctls=_pairs(svc.get("sysctls")),
        ulimits=ulimits,
        resources=_resources(svc),
        log_config=LogConfig(logging.get("driver") or "json-file", _pairs(logging.get("options"))),
        network_mode="" if network_mode == "bridge" else network_mode,
        networks=() if network_mode and network_mode != "bridge"
        else _endpoints(project_data, service, svc),
        ports=_ports(svc, number),
        expose=tuple(str(e) for e in svc.get("expose") or ()),
        extra_hosts=tuple(svc.get("extra_hosts") or ()),
        dns=tuple(svc.get("dns") or ()),
        dns_search=tuple(svc.get("dns_search") or ()),
        dns_opt=tuple(svc.get("dns_opt") or ()),
        volumes_from=volumes_from,
        devices=devices,
        pid_mode=str(svc.get("pid") or ""),
        ipc_mode=_service_ref(project, project_data, str(svc.get("ipc") or "")),
    )


def network_spec(info: ProjectInfo, key: str, net: Mapping[str, Any]) -> NetworkSpec:
    ipam = tuple(IPAMConfig(subnet=c.get("subnet"), ip_range=c.get("ip_range"),
                            gateway=c.get("gateway"),
                            aux_addresses=_pairs(c.get("aux_addresses")))
                 for c in ((net.get("ipam") or {}).get("config") or []))
    labels = dict(_pairs(net.get("labels")))
    labels.update({L.PROJECT: info.name, L.NETWORK: key, L.VERSION: info.version})
    return NetworkSpec(
        name=str(net.get("name") or f"{info.name}_{key}"), driver=net.get("driver") or "bridge",
        driver_opts=_pairs(net.get("driver_opts")), ipam=ipam,
        internal=bool(net.get("internal", False)), attachable=bool(net.get("attachable", False)),
        enable_ipv6=bool(net.get("enable_ipv6", False)), labels=tuple(labels.items()))


def volume_spec(info: ProjectInfo, key: str, vol: Mapping[str, Any]) -> VolumeSpec:
    labels = dict(_pairs(vol.get("labels")))
    labels.update({L.PROJECT: info.name, L.VOLUME: key, L.VERSION: info.version})
    return VolumeSpec(name=str(vol.get("name") or f"{info.name}_{key}"),
                      driver=vol.get("driver") or "local",
                      driver_opts=_pairs(vol.get("driver_opts")), labels=tuple(labels.items()))


def build_spec(info: ProjectInfo, project_data: Mapping[str, Any], service: str,
               no_cache: bool = False, pull: bool = False) -> BuildSpec:
    """The image build of a service with a `build:` section, tagged with its image name."""
    svc = project_data["services"][service]
    build = svc.get("build") or {}
    ref = image_ref(info.name, service, svc)
    context = str(build.get("context") or info.working_dir or ".")
    return BuildSpec(
        context=context, dockerfile=str(build.get("dockerfile") or "Dockerfile"),
        dockerfile_inline=build.get("dockerfile_inline"),
        tags=(ref, *[t for t in build.get("tags") or [] if t != ref]),
        args=_pairs(build.get("args")), target=build.get("target"),
        labels=_pairs(build.get("labels")), network=build.get("network"),
        extra_hosts=tuple(build.get("extra_hosts") or ()),
        shm_size=size(build["shm_size"]) if build.get("shm_size") else None,
        no_cache=no_cache or bool(build.get("no_cache", False)),
        no_cache_filter=tuple(build.get("no_cache_filter") or ()),
        pull=pull or bool(build.get("pull", False)),
        additional_contexts=_pairs(build.get("additional_contexts")))
