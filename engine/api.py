"""The one facade every caller of the engine uses: specs, records, errors, events, connect().

Nothing outside `engine/` imports engine internals; `compose/` and `tui/` see only this
module.  Specs describe what a caller wants (plain, frozen dataclasses); records describe
what exists and are shaped after `docker inspect`.  Heavy engine modules are imported
lazily by `connect()` so that importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol, runtime_checkable

from engine.ignorefile import IgnorePatterns as IgnorePatterns  # re-exported
from engine.ignorefile import PatternError as IgnorePatternError  # noqa: F401  (re-exported)

# --------------------------------------------------------------------------- errors


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class NotFound(EngineError):
    """A container, image, network, volume or exec instance does not exist."""


class Conflict(EngineError):
    """The request clashes with existing state (name in use, resource in use, port taken)."""


class InvalidArgument(EngineError):
    """The request itself is malformed (bad reference, bad spec value)."""


class EngineRuntimeError(EngineError):
    """The host refused something the engine needed (syscall, mount, cgroup, netlink)."""


class RegistryError(EngineError):
    """A registry could not be reached, refused credentials, or answered badly."""


class BuildError(EngineError):
    """A build failed: `Dockerfile:LINE: ...` or a RUN step's non-zero exit."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


# --------------------------------------------------------------------------- specs

MountType = Literal["bind", "volume", "tmpfs"]


@dataclass(frozen=True)
class Mount:
    """One mount of a container. `source` is a host path (bind) or volume name (volume)."""

    type: MountType
    target: str
    source: str = ""
    read_only: bool = False
    propagation: str = ""  # bind: rprivate (default), private, rshared, shared, rslave, slave
    create_host_path: bool = True  # bind: create a missing source directory
    nocopy: bool = False  # volume: do not copy image content into an empty volume
    subpath: str = ""  # volume: mount only this path of the volume
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None  # e.g. 0o1777


@dataclass(frozen=True)
class Healthcheck:
    """A health check; durations are seconds. `test` is Docker's form: ["CMD", ...],
    ["CMD-SHELL", "cmd"] or ["NONE"]."""

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True)
class RestartPolicy:
    name: Literal["no", "always", "on-failure", "unless-stopped"] = "no"
    maximum_retry_count: int = 0


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Resources:
    """cgroup limits. Sizes are bytes, cpus is a fraction of CPUs (1.5), None is unlimited."""

    memory: int | None = None
    memory_swap: int | None = None  # memory+swap; -1 unlimited
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    oom_kill_disable: bool = False
    oom_score_adj: int | None = None
    blkio_weight: int | None = None


@dataclass(frozen=True)
class LogConfig:
    driver: str = "json-file"
    options: tuple[tuple[str, str], ...] = ()  # max-size, max-file

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class EndpointSpec:
    """Attachment of a container to a network."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None
    priority: int = 0
    driver_opts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PortBinding:
    """A published port. host_port "" or "0" means: pick a free port."""

    container_port: int
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    host_ip: str = ""
    host_port: str = ""


@dataclass(frozen=True)
class ContainerSpec:
    """Everything Compose can express for one container."""

    image: str
    name: str | None = None
    command: tuple[str, ...] | None = None  # None: the image's Cmd
    entrypoint: tuple[str, ...] | None = None  # None: the image's Entrypoint
    env: tuple[tuple[str, str], ...] = ()  # merged over the image's Env by the engine
    labels: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    group_add: tuple[str, ...] = ()
    working_dir: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    tty: bool = False
    stdin_open: bool = False
    init: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    stop_signal: str | None = None  # None: the image's StopSignal, else SIGTERM
    stop_grace_period: float | None = None  # seconds; None: 10
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    healthcheck: Healthcheck | None = None  # None: the image's Healthcheck
    mounts: tuple[Mount, ...] = ()
    shm_size: int | None = None
    sysctls: tuple[tuple[str, str], ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    resources: Resources = field(default_factory=Resources)
    log_config: LogConfig = field(default_factory=LogConfig)
    # "bridge"/"" (attach to `networks`), "none", "host", "container:<id or name>"
    network_mode: str = ""
    networks: tuple[EndpointSpec, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    expose: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # "host:ip" or "host=ip"
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    volumes_from: tuple[str, ...] = ()  # container ids/names, optional ":ro"/":rw"
    devices: tuple[str, ...] = ()  # "/dev/host:/dev/ctr:rwm"
    pid_mode: str = ""  # "" or "host"
    ipc_mode: str = ""  # "", "private", "shareable", "host"
    auto_remove: bool = False


@dataclass(frozen=True)
class ExecSpec:
    cmd: tuple[str, ...]
    user: str | None = None
    working_dir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    tty: bool = False
    stdin: bool = False
    privileged: bool = False
    detach: bool = False


@dataclass(frozen=True)
class IPAMConfig:
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    driver: str = "bridge"
    driver_opts: tuple[tuple[str, str], ...] = ()
    ipam: tuple[IPAMConfig, ...] = ()
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    driver: str = "local"
    driver_opts: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BuildSpec:
    """One image build. Paths are absolute host paths."""

    context: str
    dockerfile: str = "Dockerfile"  # relative to context, or absolute
    dockerfile_inline: str | None = None
    tags: tuple[str, ...] = ()
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    network: str | None = None  # None/"default" or "none"
    extra_hosts: tuple[str, ...] = ()
    shm_size: int | None = None
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    additional_contexts: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- records

ContainerStatus = Literal[
    "created", "running", "paused", "restarting", "removing", "exited", "dead"
]


@dataclass(frozen=True)
class HealthLog:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass(frozen=True)
class Health:
    status: Literal["starting", "healthy", "unhealthy", "none"]
    failing_streak: int = 0
    log: tuple[HealthLog, ...] = ()


@dataclass(frozen=True)
class ContainerState:
    status: ContainerStatus
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    health: Health | None = None
    restart_count: int = 0

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass(frozen=True)
class PublishedPort:
    container_port: int
    protocol: str
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class NetworkAttachment:
    network: str  # network name
    network_id: str
    ip_address: str
    prefix_len: int
    gateway: str
    mac_address: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    created: str  # RFC 3339
    image: str  # image reference as asked for
    image_id: str  # sha256:...
    spec: ContainerSpec
    state: ContainerState
    networks: tuple[NetworkAttachment, ...] = ()
    ports: tuple[PublishedPort, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.labels)

    def inspect(self) -> dict[str, Any]:
        """The `docker inspect` shape of this container."""
        from engine.runtime.inspect import container_inspect

        return container_inspect(self)


@dataclass(frozen=True)
class Image:
    id: str  # sha256:<config digest>
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    created: str
    size: int
    config: dict[str, Any]  # the OCI image config's "config" object (Env, Cmd, ...)
    architecture: str = "amd64"
    os: str = "linux"
    diff_ids: tuple[str, ...] = ()
    history: tuple[dict[str, Any], ...] = ()

    def inspect(self) -> dict[str, Any]:
        from engine.images.inspect import image_inspect

        return image_inspect(self)


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str
    created: str
    subnet: str
    gateway: str
    internal: bool = False
    attachable: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    containers: tuple[str, ...] = ()  # container ids


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    mountpoint: str
    created: str
    labels: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Event:
    """One journal entry, shaped like `docker events --format json`."""

    time: float  # seconds since the epoch
    type: Literal["container", "image", "network", "volume", "builder"]
    action: str  # create, start, die, health_status: healthy, oom, kill, stop, destroy...
    id: str
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LogLine:
    time: str  # RFC 3339 nano
    stream: Literal["stdout", "stderr"]
    text: str  # with its trailing newline, if it had one


@dataclass(frozen=True)
class Stats:
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    pids: int
    block_read: int = 0
    block_write: int = 0
    net_rx: int = 0
    net_tx: int = 0


@dataclass(frozen=True)
class Progress:
    """A progress report from a long operation (pull, push, build)."""

    id: str  # layer digest, build step, ...
    status: str  # "Downloading", "Pull complete", "CACHED", "DONE"...
    current: int = 0
    total: int = 0
    text: str = ""


ProgressFn = Callable[[Progress], None]


# --------------------------------------------------------------------------- the facade


@runtime_checkable
class Engine(Protocol):
    """What every engine (built-in, in-memory for tests, Docker API later) offers."""

    # images
    def image_list(self) -> list[Image]: ...
    def image_inspect(self, ref: str) -> Image: ...
    def image_import(self, tarball: str | IO[bytes], ref: str | None = None,
                     changes: tuple[str, ...] = ()) -> Image: ...
    def image_load(self, archive: str | IO[bytes]) -> list[Image]: ...
    def image_save(self, refs: list[str], out: str | IO[bytes]) -> None: ...
    def image_tag(self, ref: str, new_ref: str) -> None: ...
    def image_remove(self, ref: str, force: bool = False) -> list[str]: ...
    def image_prune(self, all: bool = False) -> list[str]: ...
    def image_history(self, ref: str) -> list[dict[str, Any]]: ...
    def image_pull(self, ref: str, progress: ProgressFn | None = None) -> Image: ...
    def image_push(self, ref: str, progress: ProgressFn | None = None) -> str: ...
    def image_build(self, spec: BuildSpec, progress: ProgressFn | None = None) -> Image: ...

    # containers
    def container_create(self, spec: ContainerSpec) -> Container: ...
    def container_start(self, ref: str) -> None: ...
    def container_stop(self, ref: str, timeout: float | None = None) -> None: ...
    def container_kill(self, ref: str, signal: str = "SIGKILL") -> None: ...
    def container_restart(self, ref: str, timeout: float | None = None) -> None: ...
    def container_remove(self, ref: str, force: bool = False,
                         volumes: bool = False) -> None: ...
    def container_list(self, all: bool = False,
                       labels: dict[str, str | None] | None = None) -> list[Container]: ...
    def container_inspect(self, ref: str) -> Container: ...
    def container_wait(self, ref: str, condition: str = "not-running",
                       timeout: float | None = None) -> int: ...
    def container_logs(self, ref: str, follow: bool = False, tail: int | None = None,
                       since: float | None = None,
                       until: float | None = None) -> Iterator[LogLine]: ...
    def container_exec(self, ref: str, spec: ExecSpec) -> int: ...
    def container_top(self, ref: str) -> tuple[list[str], list[list[str]]]: ...
    def container_stats(self, ref: str) -> Stats: ...
    def container_pause(self, ref: str) -> None: ...
    def container_unpause(self, ref: str) -> None: ...
    def container_copy_to(self, ref: str, src: str, dest: str) -> None: ...
    def container_copy_from(self, ref: str, src: str, dest: str) -> None: ...
    def container_diff(self, ref: str) -> list[tuple[str, str]]: ...
    def container_export(self, ref: str, out: str | IO[bytes]) -> None: ...
    def container_attach(self, ref: str, stdin: IO[Any] | None, stdout: IO[Any],
                         stderr: IO[Any], tty: bool) -> int: ...

    # networks
    def network_create(self, spec: NetworkSpec) -> Network: ...
    def network_remove(self, ref: str) -> None: ...
    def network_list(self, labels: dict[str, str | None] | None = None) -> list[Network]: ...
    def network_inspect(self, ref: str) -> Network: ...
    def network_connect(self, ref: str, container: str, endpoint: EndpointSpec) -> None: ...
    def network_disconnect(self, ref: str, container: str, force: bool = False) -> None: ...
    def network_prune(self) -> list[str]: ...

    # volumes
    def volume_create(self, spec: VolumeSpec) -> Volume: ...
    def volume_remove(self, name: str, force: bool = False) -> None: ...
    def volume_list(self, labels: dict[str, str | None] | None = None) -> list[Volume]: ...
    def volume_inspect(self, name: str) -> Volume: ...
    def volume_prune(self, all: bool = False) -> list[str]: ...

    # system
    def events(self, since: float | None = None, until: float | None = None,
               follow: bool = False) -> Iterator[Event]: ...
    def info(self) -> dict[str, Any]: ...


def default_root() -> str:
    return os.environ.get("PYCOMPOSE_ROOT", "/var/lib/pycompose")


def connect(root: str | None = None) -> Engine:
    """The engine to use: the built-in engine under `root` (or $PYCOMPOSE_ROOT)."""
    from engine.local import LocalEngine

    return LocalEngine(root or default_root())
