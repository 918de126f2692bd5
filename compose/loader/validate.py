"""Validation of a Compose tree: the Compose Specification schema, then semantic checks.

`validate_schema` runs on a file's (or the merged) interpolated tree against the JSON
schema that docker compose v2.40.3 validates with (`compose-spec.json`: compose-go
v2.9.1's schema/compose-spec.json, Apache-2.0, as embedded in that release), plus the
value formats the schema leaves to code (ports, durations, byte sizes, volume specs).
`check_semantics` runs on the canonical tree (the shape of `config --format json`) and
reports what the schema cannot see: references to undefined services, networks,
volumes, secrets and configs, container names that cannot be unique, conflicting
published ports (a warning: the reference accepts them), settings that contradict each
other, and dependency cycles.
Errors are located with the SourceMap: `compose.yaml:12:9: services.web: unknown key...`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from compose.errors import ConfigError, CycleError, LoadError, SchemaError
from compose.loader.formats import FORMATS, parse_bytes
from compose.loader.schema import Path, Validator, Violation, describe
from compose.loader.source import SourceMap, error_at, format_path

SCHEMA_FILE = FsPath(__file__).with_name("compose-spec.json")
INVALID = ": invalid compose project"

# Where the schema says only "string" but Compose parses a format (JSON pointers).
_SERVICE = "definitions/service/properties"
_DEPLOY = "definitions/deployment/properties"
FORMAT_SITES: dict[str, str] = {
    f"{_SERVICE}/ports/items/oneOf/0": "port",
    f"{_SERVICE}/ports/items/oneOf/1": "port",
    f"{_SERVICE}/volumes/items/oneOf/0": "volume",
    f"{_SERVICE}/stop_grace_period": "duration",
    f"{_SERVICE}/mem_limit": "bytes",
    f"{_SERVICE}/mem_reservation": "bytes",
    f"{_SERVICE}/memswap_limit": "bytes",
    f"{_SERVICE}/shm_size": "bytes",
    f"{_SERVICE}/build/oneOf/1/properties/shm_size": "bytes",
    f"{_SERVICE}/volumes/items/oneOf/1/properties/tmpfs/properties/size/oneOf/1": "bytes",
    "definitions/blkio_limit/properties/rate": "bytes",
    "definitions/healthcheck/properties/interval": "duration",
    "definitions/healthcheck/properties/timeout": "duration",
    "definitions/healthcheck/properties/start_period": "duration",
    "definitions/healthcheck/properties/start_interval": "duration",
    f"{_DEPLOY}/update_config/properties/delay": "duration",
    f"{_DEPLOY}/update_config/properties/monitor": "duration",
    f"{_DEPLOY}/rollback_config/properties/delay": "duration",
    f"{_DEPLOY}/rollback_config/properties/monitor": "duration",
    f"{_DEPLOY}/restart_policy/properties/delay": "duration",
    f"{_DEPLOY}/restart_policy/properties/window": "duration",
    f"{_DEPLOY}/resources/properties/limits/properties/memory": "bytes",
    f"{_DEPLOY}/resources/properties/reservations/properties/memory": "bytes",
}


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for pointer, fmt in FORMAT_SITES.items():
        node: Any = schema
        for part in pointer.split("/"):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node["format"] = fmt
    return schema


@cache
def validator() -> Validator:
    return Validator(load_schema(), FORMATS)


def _point_at_key(error: LoadError, path: Path, source: SourceMap | None) -> LoadError:
    """Move the error's position to the mapping key of `path`, when it has one."""
    mark = source.key(path) if source is not None else None
    if mark is not None:
        error.file, error.line, error.column = mark.file, mark.line, mark.column
    return error


def _at_key(cls: type[LoadError], message: str, path: Path,
            source: SourceMap | None) -> LoadError:
    return _point_at_key(error_at(cls, message, path, source), path, source)


def _located(cls: type[LoadError], violation: Violation, source: SourceMap | None) -> LoadError:
    error = error_at(cls, violation.message, violation.at, source)
    if violation.at_key:
        _point_at_key(error, violation.at, source)
    error.path = format_path(violation.path) or None
    return error


def validate_schema(tree: Any, source: SourceMap | None) -> None:
    """Raise SchemaError for the first place where `tree` breaks the Compose schema."""
    if not isinstance(tree, dict):
        raise error_at(SchemaError, "the top level of a compose file must be a mapping, "
                       f"not {describe(tree)}", (), source)
    violation = validator().first_violation(tree)
    if violation is not None:
        raise _located(SchemaError, _with_hint(tree, violation), source)


_SERVICE_KEYS = ("image", "build", "command", "ports", "environment")


def _with_hint(tree: Mapping[str, Any], violation: Violation) -> Violation:
    """Add what the schema cannot say: a service written at the top level."""
    if not violation.at_key or "did you mean" in violation.message:
        return violation
    hint = None
    if len(violation.at) == 1:
        value = tree.get(str(violation.at[0]))
        if isinstance(value, dict) and any(k in value for k in _SERVICE_KEYS):
            hint = 'a service must be declared under "services:"'
    elif len(violation.at) == 3 and violation.at[0] == "services":
        home = _nested_service_keys().get(str(violation.at[2]))
        if home:
            hint = f'did you mean "{home}.{violation.at[2]}"?'
    if hint is None:
        return violation
    return Violation(violation.path, f"{violation.message} ({hint})", violation.at,
                     violation.at_key)


@cache
def _nested_service_keys() -> dict[str, str]:
    """Keys that belong one level down in a service: `context` -> `build`..."""
    schema = validator()
    service = schema.resolve(schema.schema["definitions"]["service"])["properties"]
    found: dict[str, str] = {}
    for parent in ("build", "healthcheck", "deploy", "logging"):
        node = schema.resolve(service[parent])
        branches = node.get("oneOf", [node])
        for branch in branches:
            for key in schema.resolve(branch).get("properties", {}):
                if key not in service:
                    found.setdefault(key, parent)
    return found


# -- semantic checks on the canonical tree -----------------------------------------------

def check_semantics(tree: Mapping[str, Any], source: SourceMap | None, *,
                    disabled: Collection[str] | None = None,
                    warn: Callable[[str], None] | None = None) -> None:
    """Raise ConfigError/CycleError for the first semantic problem of a canonical tree.

    `disabled` names services defined but switched off by profiles: a `depends_on` on
    one of them with `required: false` is fine (a warning), as in Docker Compose; when
    it is None (not known), every `required: false` dependency on a missing service is.
    """
    services = _map(tree.get("services"))
    for name in sorted(services):
        service = _map(services[name])
        for message, path in _service_problems(tree, name, service, disabled, warn):
            raise _at_key(ConfigError, message, path, source)
    for message, path in _definition_problems(tree):
        raise _at_key(ConfigError, message, path, source)
    for message, path in _container_name_problems(services):
        raise _at_key(ConfigError, message, path, source)
    _check_cycles(services, source)
    if warn is not None:
        for clash in port_clashes(services, source):
            warn(str(clash))


def port_clashes(services: Mapping[str, Any], source: SourceMap | None) -> list[LoadError]:
    """Fixed host ports that two containers would both bind, located at the second one.

    Like the reference, `config` accepts such a file (pycompose warns); binding fails
    only when the containers start.
    """
    return [_at_key(ConfigError, message, path, source)
            for message, path in _port_conflicts(services)]


def _check_cycles(services: Mapping[str, Any], source: SourceMap | None) -> None:
    from compose.graph import find_cycle

    cycle = find_cycle({name: list(_map(_map(svc).get("depends_on")))
                        for name, svc in services.items()})
    if cycle:
        raise _at_key(CycleError, "dependency cycle detected: " + " -> ".join(cycle),
                      ("services", cycle[0], "depends_on", cycle[1]), source)


Problems = Iterator[tuple[str, Path]]


def _map(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else empty: semantic checks never trip on bad shapes
    (those are the schema's to report)."""
    return value if isinstance(value, dict) else {}


def _seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _service_problems(tree: Mapping[str, Any], name: str, service: Mapping[str, Any],
                      disabled: Collection[str] | None,
                      warn: Callable[[str], None] | None) -> Problems:
    here: Path = ("services", name)
    services = _map(tree.get("services"))
    if not service.get("image") and not service.get("build") and not service.get("provider"):
        yield (f'service "{name}" has neither an image nor a build context specified'
               + INVALID, here)

    # network_mode/volumes_from first: the loader also adds them to depends_on.
    for ref, where in _service_refs(service):
        if ref not in services:
            yield (f'service "{name}" depends on undefined service "{ref}"' + INVALID,
                   here + where)

    explicit = {ref for ref, _ in _service_refs(service)}
    for dep, spec in _map(service.get("depends_on")).items():
        if dep in services or dep in explicit:
            continue
        required = not isinstance(spec, dict) or spec.get("required", True) is not False
        if not required and (disabled is None or dep in disabled):
            if warn:
                warn(f'service "{name}" depends on "{dep}", which is not enabled; ignoring it')
            continue
        yield (f'service "{name}" depends on undefined service "{dep}"' + INVALID,
               here + ("depends_on", dep))
    yield from _resource_refs(tree, name, service)
    yield from _contradictions(name, service)
    yield from _device_requests(name, service)
    yield from _watch_rules(name, service)


def _device_requests(name: str, service: Mapping[str, Any]) -> Problems:
    reservations = _map(_map(_map(service.get("deploy")).get("resources")).get("reservations"))
    places: tuple[tuple[Path, Any], ...] = (
        (("deploy", "resources", "reservations", "devices"), reservations.get("devices")),
        (("gpus",), service.get("gpus")))
    for where, requests in places:
        for index, request in enumerate(_seq(requests)):
            request = _map(request)
            if request.get("count") is not None and request.get("device_ids"):
                yield ('"count" and "device_ids" attributes are exclusive',
                       ("services", name, *where, index))


_NEEDS_TARGET = ("sync", "sync+restart", "sync+exec")


def _watch_rules(name: str, service: Mapping[str, Any]) -> Problems:
    for index, rule in enumerate(_seq(_map(service.get("develop")).get("watch"))):
        rule = _map(rule)
        if rule.get("action") in _NEEDS_TARGET and not rule.get("target"):
            yield ("target is required for non-rebuild actions" + INVALID,
                   ("services", name, "develop", "watch", index))


def _service_refs(service: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """(service, path) named by `service:x` modes (network, ipc, pid), links, volumes_from."""
    refs: list[tuple[str, Path]] = []
    for key in ("network_mode", "ipc", "pid"):
        mode = service.get(key)
        if isinstance(mode, str) and mode.startswith("service:"):
            refs.append((mode.split(":", 1)[1], (key,)))
    for index, entry in enumerate(_seq(service.get("links"))):
        if isinstance(entry, str):
            refs.append((entry.split(":", 1)[0], ("links", index)))
    for index, entry in enumerate(_seq(service.get("volumes_from"))):
        if isinstance(entry, str) and not entry.startswith("container:"):
            refs.append((entry.split(":", 1)[0], ("volumes_from", index)))
    return refs


def _resource_refs(tree: Mapping[str, Any], name: str, service: Mapping[str, Any]) -> Problems:
    here: Path = ("services", name)
    networks = _map(tree.get("networks"))
    for net in _map(service.get("networks")):
        if net not in networks:
            yield (f'service "{name}" refers to undefined network {net}' + INVALID,
                   here + ("networks", net))
    volumes = _map(tree.get("volumes"))
    for index, mount in enumerate(_seq(service.get("volumes"))):
        if not isinstance(mount, dict) or mount.get("type") != "volume":
            continue
        source_name = mount.get("source")
        if isinstance(source_name, str) and source_name and source_name not in volumes:
            yield (f'service "{name}" refers to undefined volume {source_name}' + INVALID,
                   here + ("volumes", index))
    for kind in ("secrets", "configs"):
        defined = _map(tree.get(kind))
        for index, ref in enumerate(_seq(service.get(kind))):
            ref_name = ref.get("source") if isinstance(ref, dict) else ref
            if isinstance(ref_name, str) and ref_name and ref_name not in defined:
                yield (f'service "{name}" refers to undefined {kind[:-1]} {ref_name}' + INVALID,
                       here + (kind, index))
    build = service.get("build")
    if isinstance(build, dict):
        defined = _map(tree.get("secrets"))
        for index, ref in enumerate(_seq(build.get("secrets"))):
            ref_name = ref.get("source") if isinstance(ref, dict) else ref
            if isinstance(ref_name, str) and ref_name and ref_name not in defined:
                yield (f'service "{name}" refers to undefined build secret {ref_name}'
                       + INVALID, here + ("build", "secrets", index))


# (service key, deploy.resources path, how to compare)
_DUPLICATED_LIMITS: tuple[tuple[str, tuple[str, str], Callable[[Any], Any]], ...] = (
    ("cpus", ("limits", "cpus"), float),
    ("mem_limit", ("limits", "memory"), parse_bytes),
    ("mem_reservation", ("reservations", "memory"), parse_bytes),
    ("pids_limit", ("limits", "pids"), int),
)


def _contradictions(name: str, service: Mapping[str, Any]) -> Problems:
    here: Path = ("services", name)
    resources = _map(_map(service.get("deploy")).get("resources"))
    for key, (section, field), convert in _DUPLICATED_LIMITS:
        mine = service.get(key)
        theirs = _map(resources.get(section)).get(field)
        if mine is None or theirs is None:
            continue
        try:
            differ = convert(mine) != convert(theirs)
        except (TypeError, ValueError):
            differ = mine != theirs
        if differ:
            yield (f"can't set distinct values on '{key}' and "
                   f"'deploy.resources.{section}.{field}'" + INVALID, here + (key,))
    scale, wanted = service.get("scale"), _map(service.get("deploy")).get("replicas")
    for value, where in ((scale, ("scale",)), (wanted, ("deploy", "replicas"))):
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            yield "must be greater than or equal to 0", here + where
    if scale is not None and wanted is not None and str(scale) != str(wanted):
        yield "can't set distinct values on 'scale' and 'deploy.replicas'" + INVALID, \
            here + ("scale",)
    if service.get("network_mode") and service.get("networks"):
        yield (f"service {name} declares mutually exclusive `network_mode` and `networks`"
               + INVALID, here + ("network_mode",))
    build = service.get("build")
    if isinstance(build, dict) and build.get("dockerfile") and build.get("dockerfile_inline"):
        yield (f'service "{name}" declares mutually exclusive dockerfile and dockerfile_inline'
               + INVALID, here + ("build", "dockerfile_inline"))
    platform = service.get("platform")
    if isinstance(build, dict) and isinstance(platform, str) and platform \
            and isinstance(build.get("platforms"), list) and platform not in build["platforms"]:
        yield (f'service.build.platforms MUST include service.platform "{platform}"'
               + INVALID, here + ("platform",))


# What a non-external secret or config takes its content from: exactly one of these.
_CONTENT_SOURCES = {"secrets": ("file", "environment"),
                    "configs": ("file", "environment", "content")}


def _definition_problems(tree: Mapping[str, Any]) -> Problems:
    """Top-level secrets and configs need exactly one content source unless external; an
    external volume cannot say how to create it (checked whether or not a service uses
    them, as the reference does)."""
    for kind, sources in _CONTENT_SOURCES.items():
        for name, definition in sorted(_map(tree.get(kind)).items()):
            definition = _map(definition)
            if definition.get("external") not in (None, False):
                continue
            given = [key for key in sources if definition.get(key) is not None]
            options = "|".join(sources)
            if not given:
                yield f"one of {options} must be set", (kind, name)
            elif len(given) > 1:
                yield f"{options} attributes are mutually exclusive", (kind, name, given[1])
    for name, definition in sorted(_map(tree.get("volumes")).items()):
        definition = _map(definition)
        if definition.get("external") in (None, False):
            continue
        for key in ("driver", "driver_opts", "labels"):
            if definition.get(key):
                yield (f'conflicting parameters "external" and "{key}" specified',
                       ("volumes", name, key))


def replicas(service: Mapping[str, Any]) -> int:
    """How many containers a canonical service asks for (scale, else deploy.replicas)."""
    for value in (service.get("scale"), _map(service.get("deploy")).get("replicas")):
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return 1
    return 1


def _container_name_problems(services: Mapping[str, Any]) -> Problems:
    owners: dict[str, str] = {}
    for name in sorted(services):
        service = _map(services[name])
        container = service.get("container_name")
        if not container or not isinstance(container, str):
            continue
        count = replicas(service)
        if count > 1:
            key = "scale" if service.get("scale") is not None else "deploy.replicas"
            path: Path = ("services", name, "scale") if key == "scale" else \
                ("services", name, "deploy", "replicas")
            yield (f'service "{name}" sets container_name "{container}" and {key} {count}: '
                   "container names must be unique" + INVALID, path)
        if container in owners:
            yield (f'container name "{container}" is already in use by service '
                   f'"{owners[container]}"', ("services", name, "container_name"))
        owners[container] = name


def _published_ports(service: Mapping[str, Any]) -> Iterator[tuple[int, tuple[str, int, str]]]:
    """(index, (host_ip, port, protocol)) of each fixed single host port of a service."""
    for index, port in enumerate(_seq(service.get("ports"))):
        if not isinstance(port, dict):
            continue
        published = str(port.get("published") or "")
        if not published.isdigit() or int(published) == 0:
            continue
        host_ip = port.get("host_ip") or ""
        yield index, (host_ip, int(published), str(port.get("protocol") or "tcp"))


def _port_conflicts(services: Mapping[str, Any]) -> Problems:
    """Two containers cannot bind the same host port (checked before anything starts)."""
    taken: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for name in sorted(services):
        service = _map(services[name])
        count = replicas(service)
        if count == 0:
            continue
        for index, (host_ip, port, protocol) in _published_ports(service):
            here: Path = ("services", name, "ports", index)
            if count > 1:
                yield (f"published port {port}/{protocol} cannot be bound by {count} replicas "
                       f'of service "{name}"; use a port range or no published port', here)
            for other, other_ip in taken.get((port, protocol), []):
                if not host_ip or not other_ip or host_ip == other_ip or \
                        "0.0.0.0" in (host_ip, other_ip):
                    owner = "it" if other == name else f'service "{other}"'
                    yield (f"published port {port}/{protocol} is already used by {owner}", here)
            taken.setdefault((port, protocol), []).append((name, host_ip))
