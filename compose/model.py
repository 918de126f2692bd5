"""Frozen pydantic models of a loaded Project: the only typed view of a Compose file.

Built from the canonical tree (the shape of `docker compose config --format json`) by
`Project.from_tree`; `Project.to_tree()` gives that tree back unchanged. Every model
keeps keys it does not declare (`extra="allow"`: extensions `x-*`, newer keys), so
nothing is lost. Byte sizes are ints (the tree writes them as decimal strings);
durations stay Go duration text (`1m30s`) with `seconds()` to read them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from compose.loader.formats import parse_bytes, parse_duration


def _to_bytes(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_bytes(value)
    return value


# Bytes: read from "536870912", "512m" or 536870912; written back as a decimal string.
ByteSize = Annotated[int, BeforeValidator(_to_bytes), PlainSerializer(str, return_type=str)]
StrMap = dict[str, str]
EnvMap = dict[str, str | None]


def seconds(duration: str | None, default: float | None = None) -> float | None:
    """A Go duration (`1m30s`) in seconds; `default` when it is not set."""
    return default if duration is None else parse_duration(duration)


def _seconds(duration: str | None, default: float) -> float:
    return default if duration is None else parse_duration(duration)


class Model(BaseModel):
    """Base of every model: immutable, keeps unknown keys, no reserved field prefixes."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True,
                              protected_namespaces=())

    @property
    def extensions(self) -> dict[str, Any]:
        """The `x-*` keys of this object."""
        return {k: v for k, v in (self.model_extra or {}).items() if k.startswith("x-")}


# -- service parts -----------------------------------------------------------------------

class Port(Model):
    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None

    def published_range(self) -> tuple[int, int] | None:
        """(first, last) host port; None when the engine picks one."""
        if not self.published:
            return None
        first, _, last = self.published.partition("-")
        return int(first), int(last or first)


class BindOptions(Model):
    propagation: str | None = None
    create_host_path: bool | None = None
    recursive: str | None = None
    selinux: str | None = None


class VolumeOptions(Model):
    nocopy: bool | None = None
    subpath: str | None = None
    labels: StrMap | None = None


class TmpfsOptions(Model):
    size: ByteSize | None = None
    mode: int | str | None = None


class ImageOptions(Model):
    subpath: str | None = None


class Mount(Model):
    """One entry of a service's `volumes` (always long syntax in the canonical tree)."""

    type: str
    source: str | None = None
    target: str | None = None
    read_only: bool | None = None
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None
    image: ImageOptions | None = None


class Healthcheck(Model):
    test: list[str] | None = None
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    start_interval: str | None = None
    retries: int | None = None
    disable: bool | None = None

    @property
    def disabled(self) -> bool:
        return bool(self.disable) or (self.test is not None and self.test[:1] == ["NONE"])

    # Seconds, with Docker's defaults for what is not set.
    @property
    def interval_seconds(self) -> float:
        return _seconds(self.interval, 30.0)

    @property
    def timeout_seconds(self) -> float:
        return _seconds(self.timeout, 30.0)

    @property
    def start_period_seconds(self) -> float:
        return _seconds(self.start_period, 0.0)

    @property
    def start_interval_seconds(self) -> float:
        return _seconds(self.start_interval, 5.0)

    @property
    def retries_or_default(self) -> int:
        return 3 if self.retries is None else self.retries


class DependsOn(Model):
    condition: str = "service_started"
    required: bool = True
    restart: bool | None = None


class FileRef(Model):
    """A service's use of a secret or config."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: str | int | None = None


class Ulimit(Model):
    soft: int
    hard: int


class Build(Model):
    context: str | None = None
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: EnvMap | None = None
    ssh: list[str] | None = None
    labels: StrMap | None = None
    cache_from: list[str] | None = None
    cache_to: list[str] | None = None
    no_cache: bool | None = None
    additional_contexts: StrMap | None = None
    network: str | None = None
    pull: bool | None = None
    target: str | None = None
    shm_size: ByteSize | None = None
    extra_hosts: list[str] | None = None
    isolation: str | None = None
    privileged: bool | None = None
    secrets: list[FileRef] | None = None
    tags: list[str] | None = None
    ulimits: dict[str, Ulimit | int] | None = None
    platforms: list[str] | None = None
    entitlements: list[str] | None = None


class ResourceLimits(Model):
    cpus: float | None = None
    memory: ByteSize | None = None
    pids: int | None = None


class DeviceRequest(Model):
    capabilities: list[str] | None = None
    count: int | None = None
    device_ids: list[str] | None = None
    driver: str | None = None
    options: StrMap | None = None


class ResourceReservations(Model):
    cpus: float | None = None
    memory: ByteSize | None = None
    devices: list[DeviceRequest] | None = None
    generic_resources: list[dict[str, Any]] | None = None


class Resources(Model):
    limits: ResourceLimits | None = None
    reservations: ResourceReservations | None = None


class RestartPolicy(Model):
    condition: str | None = None
    delay: str | None = None
    max_attempts: int | None = None
    window: str | None = None


class UpdateConfig(Model):
    parallelism: int | None = None
    delay: str | None = None
    failure_action: str | None = None
    monitor: str | None = None
    max_failure_ratio: float | None = None
    order: str | None = None


class Deploy(Model):
    mode: str | None = None
    replicas: int | None = None
    labels: StrMap | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    placement: dict[str, Any] | None = None
    endpoint_mode: str | None = None


class ServiceNetwork(Model):
    aliases: list[str] | None = None
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    interface_name: str | None = None
    link_local_ips: list[str] | None = None
    mac_address: str | None = None
    driver_opts: StrMap | None = None
    priority: int | None = None
    gw_priority: int | None = None


class Logging(Model):
    driver: str | None = None
    options: StrMap | None = None


class Device(Model):
    source: str
    target: str | None = None
    permissions: str | None = None


class Hook(Model):
    command: list[str] | None = None
    user: str | None = None
    privileged: bool | None = None
    working_dir: str | None = None
    environment: EnvMap | None = None


class Provider(Model):
    type: str
    options: dict[str, list[str]] | None = None


class Service(Model):
    """One service of the canonical tree. `name` is filled in from its key."""

    name: str = Field(default="", exclude=True)
    image: str | None = None
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: EnvMap | None = None
    ports: list[Port] | None = None
    expose: list[str] | None = None
    volumes: list[Mount] | None = None
    volumes_from: list[str] | None = None
    tmpfs: list[str] | None = None
    networks: dict[str, ServiceNetwork | None] | None = None
    network_mode: str | None = None
    depends_on: dict[str, DependsOn] | None = None
    links: list[str] | None = None
    external_links: list[str] | None = None
    healthcheck: Healthcheck | None = None
    restart: str | None = None
    deploy: Deploy | None = None
    scale: int | None = None
    labels: StrMap | None = None
    annotations: StrMap | None = None
    container_name: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    mac_address: str | None = None
    profiles: list[str] | None = None
    working_dir: str | None = None
    user: str | None = None
    group_add: list[str] | None = None
    init: bool | None = None
    privileged: bool | None = None
    read_only: bool | None = None
    tty: bool | None = None
    stdin_open: bool | None = None
    attach: bool | None = None
    stop_signal: str | None = None
    stop_grace_period: str | None = None
    cap_add: list[str] | None = None
    cap_drop: list[str] | None = None
    security_opt: list[str] | None = None
    devices: list[Device] | None = None
    device_cgroup_rules: list[str] | None = None
    dns: list[str] | None = None
    dns_opt: list[str] | None = None
    dns_search: list[str] | None = None
    extra_hosts: list[str] | None = None
    sysctls: StrMap | None = None
    ulimits: dict[str, Ulimit | int] | None = None
    secrets: list[FileRef] | None = None
    configs: list[FileRef] | None = None
    logging: Logging | None = None
    pid: str | None = None
    ipc: str | None = None
    uts: str | None = None
    userns_mode: str | None = None
    cgroup: str | None = None
    cgroup_parent: str | None = None
    runtime: str | None = None
    platform: str | None = None
    pull_policy: str | None = None
    mem_limit: ByteSize | None = None
    mem_reservation: ByteSize | None = None
    memswap_limit: ByteSize | None = None
    mem_swappiness: int | str | None = None
    shm_size: ByteSize | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_count: int | None = None
    cpu_percent: float | None = None
    cpuset: str | None = None
    pids_limit: int | None = None
    oom_kill_disable: bool | None = None
    oom_score_adj: int | None = None
    storage_opt: StrMap | None = None
    post_start: list[Hook] | None = None
    pre_stop: list[Hook] | None = None
    provider: Provider | None = None
    develop: dict[str, Any] | None = None
    models: dict[str, Any] | None = None
    use_api_socket: bool | None = None
    isolation: str | None = None
    gpus: list[DeviceRequest] | None = None
    # Kept as the reference prints them (its blkio entries use Go's `Path`/`Rate` keys).
    blkio_config: dict[str, Any] | None = None
    credential_spec: dict[str, str] | None = None

    @property
    def replicas(self) -> int:
        """Containers wanted: `scale`, else `deploy.replicas`, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1

    @property
    def dependencies(self) -> list[str]:
        return sorted(self.depends_on or {})

    @property
    def stop_grace_seconds(self) -> float:
        """How long `stop` waits before SIGKILL (Docker's default: 10s)."""
        return _seconds(self.stop_grace_period, 10.0)

    def env(self) -> dict[str, str]:
        """The container environment: variables with a value (unset ones dropped)."""
        return {k: v for k, v in (self.environment or {}).items() if v is not None}


# -- top-level resources -----------------------------------------------------------------

class IpamPool(Model):
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: StrMap | None = None


class Ipam(Model):
    driver: str | None = None
    config: list[IpamPool] | None = None
    options: StrMap | None = None


class Network(Model):
    name: str | None = None
    driver: str | None = None
    driver_opts: StrMap | None = None
    ipam: Ipam | None = None
    external: bool | None = None
    internal: bool | None = None
    attachable: bool | None = None
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    labels: StrMap | None = None


class Volume(Model):
    name: str | None = None
    driver: str | None = None
    driver_opts: StrMap | None = None
    external: bool | None = None
    labels: StrMap | None = None


class Secret(Model):
    name: str | None = None
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool | None = None
    labels: StrMap | None = None
    driver: str | None = None
    driver_opts: StrMap | None = None
    template_driver: str | None = None


class Config(Secret):
    """A top-level config: the same fields as a secret."""


class ModelDef(Model):
    """A top-level AI model (`models:`)."""

    model: str | None = None
    name: str | None = None
    context_size: int | None = None
    runtime_flags: list[str] | None = None


class Project(Model):
    name: str
    services: dict[str, Service] = Field(default_factory=dict)
    networks: dict[str, Network] | None = None
    volumes: dict[str, Volume] | None = None
    secrets: dict[str, Secret] | None = None
    configs: dict[str, Config] | None = None
    models: dict[str, ModelDef] | None = None

    @classmethod
    def from_tree(cls, tree: dict[str, Any]) -> Project:
        """Build from a canonical tree; service names are set from their keys."""
        data = dict(tree)
        services = data.get("services") or {}
        data["services"] = {name: {**(svc or {}), "name": name} for name, svc in services.items()}
        return cls.model_validate(data)

    def to_tree(self) -> dict[str, Any]:
        """The canonical tree this project was built from (JSON types)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            from compose.errors import ConfigError

            raise ConfigError(f"no such service: {name}") from None

    def service_names(self) -> list[str]:
        return sorted(self.services)

    def graph(self) -> Any:
        """The dependency graph (compose.graph.ServiceGraph) of the services."""
        from compose.graph import ServiceGraph

        return ServiceGraph(self.services)
