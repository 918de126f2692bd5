"""Pure planning: desired project (the canonical tree) + observed engine state -> Plan.

All decisions live here (what to create, recreate, start, restart, remove, wait for);
`compose.apply` only carries a Plan out. A Plan has one stable text form, one line per
operation, `[deps] -> #id resource, Operation, cause`, which `up --dry-run` prints and
the tests compare whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Literal

from compose.convert import container_name, image_ref, network_name, replicas, volume_name
from compose.errors import CycleError, PlanError
from compose.labels import service_hash
from compose.observe import ObservedContainer, ObservedState


class OpType(IntEnum):
    """Explicit values, so that a new type in the middle shifts nothing."""

    CREATE_NETWORK = 1
    CREATE_VOLUME = 2
    PULL_IMAGE = 10
    BUILD_IMAGE = 11
    CREATE_CONTAINER = 20
    RECREATE_CONTAINER = 21
    START_CONTAINER = 22
    RESTART_CONTAINER = 23
    REMOVE_CONTAINER = 24
    REMOVE_ORPHAN = 25
    STOP_CONTAINER = 26
    WAIT_HEALTHY = 30
    WAIT_COMPLETED = 31
    REMOVE_NETWORK = 40
    REMOVE_VOLUME = 41
    REMOVE_IMAGE = 42

    @property
    def title(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


@dataclass(frozen=True)
class Operation:
    id: int
    type: OpType
    resource: str  # "service:web:1", "network:default", "volume:data", "image:busybox"
    cause: str  # why this operation is needed
    deps: tuple[int, ...] = ()  # ids of operations that must finish first
    service: str = ""
    number: int = 0
    target: str = ""  # engine name: the container/network/volume/image acted on or created
    required: bool = True  # a failed wait on a `required: false` dependency only warns
    remove_volumes: bool = False  # removals: also the container's anonymous volumes

    def __str__(self) -> str:
        deps = ",".join(str(d) for d in self.deps)
        return f"[{deps}] -> #{self.id} {self.resource}, {self.type.title}, {self.cause}"


@dataclass(frozen=True)
class Plan:
    operations: tuple[Operation, ...] = ()
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "".join(f"{op}\n" for op in self.operations)

    def __bool__(self) -> bool:
        return bool(self.operations)

    def only(self, *types: OpType) -> Plan:
        """The operations of these types alone, renumbered; an order that went through
        a dropped operation is kept."""
        by_id = {op.id: op for op in self.operations}
        kept = [op for op in self.operations if op.type in types]
        ids = {op.id: i + 1 for i, op in enumerate(kept)}

        def kept_ancestors(op_id: int) -> set[int]:
            found: set[int] = set()
            for dep in by_id[op_id].deps:
                found |= {ids[dep]} if dep in ids else kept_ancestors(dep)
            return found

        return Plan(tuple(replace(op, id=ids[op.id], deps=tuple(sorted(kept_ancestors(op.id))))
                          for op in kept), self.warnings)

    def describe(self) -> str:
        """The dry-run text: the plan, or a sentence saying there is nothing to do."""
        return str(self) if self.operations else "Nothing to do: the project is up to date.\n"


@dataclass(frozen=True)
class UpOptions:
    services: tuple[str, ...] = ()  # the targets; () means every service
    no_deps: bool = False
    recreate: Literal["diverged", "force", "never"] = "diverged"
    build: Literal["auto", "always", "never"] = "auto"
    pull: str | None = None  # --pull: always, missing, never; None follows pull_policy
    scale: Mapping[str, int] = field(default_factory=dict)
    remove_orphans: bool = False
    no_start: bool = False
    run: bool = False  # `run`: prepare the targets' dependencies and resources, not them
    inactive: tuple[str, ...] = ()  # services disabled by profiles: never orphans
    ignore_orphans: bool = False  # COMPOSE_IGNORE_ORPHANS: no warning about them


@dataclass(frozen=True)
class DownOptions:
    remove_orphans: bool = False
    volumes: bool = False
    rmi: Literal["", "local", "all"] = ""
    services: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()  # services disabled by profiles: removed, not orphans


# --------------------------------------------------------------------------- helpers


def service_order(services: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Services sorted so that dependencies come first; ties broken by name."""
    deps = {name: sorted(d for d in (svc.get("depends_on") or {}) if d in services)
            for name, svc in services.items()}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = chain[chain.index(name):] + [name]
            raise CycleError("dependency cycle detected: " + " -> ".join(cycle))
        state[name] = 1
        for dep in deps[name]:
            visit(dep, chain + [name])
        state[name] = 2
        order.append(name)

    for name in sorted(services):
        visit(name, [])
    return order


def selected_services(services: Mapping[str, Mapping[str, Any]], targets: tuple[str, ...],
                      no_deps: bool) -> set[str]:
    """The targets (all services if none) plus, unless no_deps, what they depend on."""
    unknown = [t for t in targets if t not in services]
    if unknown:
        raise PlanError(f"no such service: {unknown[0]}")
    if not targets:
        return set(services)
    chosen = set(targets)
    todo = list(targets)
    while todo and not no_deps:
        for dep in services[todo.pop()].get("depends_on") or {}:
            if dep in services and dep not in chosen:
                chosen.add(dep)
                todo.append(dep)
    return chosen


def normalize_ref(ref: str) -> str:
    """Docker's normalisation: `busybox` -> `docker.io/library/busybox:latest`."""
    name, digest = (ref.split("@", 1) + [""])[:2]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        if "/" not in name:
            name = "library/" + name
        name = "docker.io/" + name
    return name + ("@" + digest if digest else "")


def image_id(observed: ObservedState, ref: str) -> str | None:
    if ref in observed.images:
        return observed.images[ref]
    wanted = normalize_ref(ref)
    for tag, ident in observed.images.items():
        if normalize_ref(tag) == wanted:
            return ident
    return None


class _Builder:
    """Accumulates operations with consecutive ids."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.warnings: list[str] = []

    def add(self, type: OpType, resource: str, cause: str, deps: list[int] | tuple[int, ...] = (),
            **fields: Any) -> int:
        op_id = len(self.ops) + 1
        self.ops.append(Operation(op_id, type, resource, cause,
                                  tuple(sorted(set(deps))), **fields))
        return op_id

    def amend(self, op_id: int, **fields: Any) -> None:
        self.ops[op_id - 1] = replace(self.ops[op_id - 1], **fields)

    def plan(self) -> Plan:
        return Plan(tuple(self.ops), tuple(self.warnings))


# --------------------------------------------------------------------------- up


def _resource_ops(b: _Builder, data: Mapping[str, Any], observed: ObservedState,
                  chosen: list[str]) -> dict[str, int]:
    """Networks and volumes the chosen services use: create missing ones."""
    services = data["services"]
    ops: dict[str, int] = {}
    for kind, top, used_by in (
        ("network", "networks", lambda s: list((s.get("networks") or {}).keys())),
        ("volume", "volumes", lambda s: [v.get("source") for v in s.get("volumes") or []
                                         if v.get("type") == "volume" and v.get("source")]),
    ):
        declared = data.get(top) or {}
        keys = sorted({k for name in chosen for k in used_by(services[name])})
        for key in keys:
            spec = declared.get(key) or {}
            real = (network_name if kind == "network" else volume_name)(data, key)
            exists = real in (observed.networks if kind == "network" else observed.volumes)
            if spec.get("external"):
                if not exists:
                    raise PlanError(f"{kind} {real} declared as external, but could not be found")
                continue
            if not exists:
                op = OpType.CREATE_NETWORK if kind == "network" else OpType.CREATE_VOLUME
                ops[f"{kind}:{key}"] = b.add(op, f"{kind}:{key}", "not found", target=real)
    return ops


def _image_ops(b: _Builder, data: Mapping[str, Any], observed: ObservedState,
               chosen: list[str], options: UpOptions) -> dict[str, int]:
    """Pull or build each image the chosen services need; keyed by service name."""
    by_ref: dict[str, int] = {}
    ops: dict[str, int] = {}
    for name in chosen:
        svc = data["services"][name]
        ref = image_ref(data["name"], name, svc)
        if ref in by_ref:
            ops[name] = by_ref[ref]
            continue
        present = image_id(observed, ref) is not None
        policy = options.pull or svc.get("pull_policy") or "missing"
        op_type, cause = None, ""
        if svc.get("build") is not None and options.build != "never" and (
                options.build == "always" or policy == "build" or not present):
            op_type = OpType.BUILD_IMAGE
            cause = ("--build" if options.build == "always" else
                     "pull_policy: build" if policy == "build" else "image not found")
        elif policy == "always" and svc.get("build") is None:
            op_type, cause = OpType.PULL_IMAGE, "pull policy always"
        elif not present:
            if svc.get("build") is not None:
                raise PlanError(f"service {name}: image {ref} not found and --no-build is set")
            if policy == "never":
                raise PlanError(f"service {name}: image {ref} not found "
                                "and pull policy is never")
            op_type, cause = OpType.PULL_IMAGE, "image not found"
        if op_type is not None:
            by_ref[ref] = ops[name] = b.add(op_type, f"image:{ref}", cause, service=name,
                                            target=ref)
    return ops


def _diverged(c: ObservedContainer, svc_hash: str, image: str | None) -> str:
    """Why an existing container no longer matches its service, or ""."""
    if c.config_hash != svc_hash:
        return "config hash changed"
    if image and c.image_id and image != c.image_id:
        return "image changed"
    return ""


def plan_up(data: Mapping[str, Any], observed: ObservedState,
            options: UpOptions | None = None) -> Plan:
    """What `up` must do to make the engine match the project."""
    return _UpPlanner(data, observed, options or UpOptions()).plan()


ORPHAN_WARNING = ("Found orphan containers ({names}) for this project. If you removed or "
                  "renamed this service in your compose file, you can run this command "
                  "with the --remove-orphans flag to clean it up.")


class _UpPlanner:
    """One `plan_up` run: services in dependency order, each planned from its own
    containers and from what its dependencies' operations turned out to be."""

    def __init__(self, data: Mapping[str, Any], observed: ObservedState,
                 options: UpOptions) -> None:
        self.data = data
        self.observed = observed
        self.options = options
        self.services: Mapping[str, Mapping[str, Any]] = data.get("services") or {}
        self.chosen = selected_services(self.services, options.services, options.no_deps)
        self.b = _Builder()
        self.resource_ops: dict[str, int] = {}
        self.image_ops: dict[str, int] = {}
        self.started: dict[str, list[int]] = {}  # service -> last operation of each replica
        self.created: dict[str, list[int]] = {}  # service -> its container creations
        self.recreated: set[str] = set()
        self.waits: dict[tuple[str, str], int] = {}  # (service, condition) -> wait op
        self.dependents: dict[int, list[str]] = {}  # wait op -> services waiting on it

    def plan(self) -> Plan:
        order = [s for s in service_order(self.services) if s in self.chosen]
        self.resource_ops = _resource_ops(self.b, self.data, self.observed, order)
        self.image_ops = _image_ops(self.b, self.data, self.observed, order, self.options)
        for name in order:
            self.service(name)
        self.drop_idle_waits()
        self.orphans()
        return self.b.plan()

    def service(self, name: str) -> None:
        svc = self.services[name]
        want = self.options.scale.get(name, replicas(svc))
        if want > 1 and svc.get("container_name"):
            raise PlanError(f'service "{name}" uses container_name '
                            f'"{svc["container_name"]}" and cannot be scaled to {want}')
        deps = [self.resource_ops[f"network:{k}"] for k in (svc.get("networks") or {})
                if f"network:{k}" in self.resource_ops]
        deps += [self.resource_ops[f"volume:{v.get('source')}"] for v in svc.get("volumes") or []
                 if f"volume:{v.get('source')}" in self.resource_ops]
        if name in self.image_ops:
            deps.append(self.image_ops[name])
        waits, restart_after = self.dependencies(name, svc)
        if self.options.run and name in self.options.services:
            self.started[name] = []  # `run` makes its own container
            return
        # As Compose: containers are created up front (after those of the services they
        # depend on, which they may refer to); only starting them waits on conditions.
        created = [op for dep in (svc.get("depends_on") or {})
                   for op in self.created.get(dep, [])]
        self.started[name] = self.replicas(name, svc, want, deps, waits, restart_after,
                                           deps + created)

    def dependencies(self, name: str, svc: Mapping[str, Any]) -> tuple[list[int], list[int]]:
        """(operations the service's containers wait for, those after which a running
        container restarts because a `restart: true` dependency was recreated)."""
        waits: list[int] = []
        restart_after: list[int] = []
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in self.services:
                if cond.get("required", True):
                    raise PlanError(f"service {name} depends on undefined service {dep}")
                self.b.warnings.append(
                    f"service {name}: optional dependency {dep} is not enabled")
                continue
            if dep not in self.chosen:
                continue
            condition = cond.get("condition", "service_started")
            ready = list(self.started.get(dep, []))
            if condition != "service_started" and not self.options.no_start:
                key = (dep, condition)
                if key not in self.waits:
                    kind = (OpType.WAIT_HEALTHY if condition == "service_healthy"
                            else OpType.WAIT_COMPLETED)
                    self.waits[key] = self.b.add(kind, f"service:{dep}", "", ready, service=dep,
                                                 required=bool(cond.get("required", True)))
                    self.dependents[self.waits[key]] = []
                elif cond.get("required", True):  # one dependent needing it is enough
                    self.b.amend(self.waits[key], required=True)
                self.dependents[self.waits[key]].append(name)
                ready = [self.waits[key]]
            waits += ready
            if cond.get("restart") and dep in self.recreated:
                restart_after += ready
        return waits, restart_after

    def replicas(self, name: str, svc: Mapping[str, Any], want: int, resources: list[int],
                 waits: list[int], restart_after: list[int],
                 create_deps: list[int]) -> list[int]:
        """Operations for the replicas; returns the last operation of each."""
        b, options = self.b, self.options
        deps = resources + waits
        svc_hash = service_hash(svc)
        image = image_id(self.observed, image_ref(self.data["name"], name, svc))
        existing = [c for c in self.observed.containers if c.service == name and not c.oneoff]

        def why_recreate(c: ObservedContainer) -> str:
            if options.recreate == "force":
                return "--force-recreate"
            return _diverged(c, svc_hash, image) if options.recreate == "diverged" else ""

        # Keep up-to-date containers first, lowest numbers first; drop the rest.
        existing.sort(key=lambda c: (bool(why_recreate(c)), c.number, c.name))
        keep, drop = existing[:want], existing[want:]
        last: list[int] = []
        for c in drop:
            b.add(OpType.REMOVE_CONTAINER, f"service:{name}:{c.number}",
                  f"scale down to {want}", service=name, number=c.number, target=c.name)
        for c in keep:
            resource = f"service:{name}:{c.number}"
            fields = {"service": name, "number": c.number, "target": c.name}
            why = why_recreate(c)
            if why:
                op = b.add(OpType.RECREATE_CONTAINER, resource, why, deps, **fields)
                self.created.setdefault(name, []).append(op)  # dependents may refer to it
                self.recreated.add(name)
                if not options.no_start:
                    op = b.add(OpType.START_CONTAINER, resource, "recreated", [op], **fields)
                last.append(op)
            elif restart_after and c.running:
                last.append(b.add(OpType.RESTART_CONTAINER, resource,
                                  "dependency recreated (depends_on.restart)", restart_after,
                                  **fields))
            elif not c.running and not options.no_start:
                last.append(b.add(OpType.START_CONTAINER, resource, f"container is {c.status}",
                                  deps, **fields))
        used = {c.number for c in existing}
        free = (n for n in range(1, want + len(used) + 1) if n not in used)
        for number in list(free)[:want - len(keep)]:
            resource = f"service:{name}:{number}"
            fields = {"service": name, "number": number,
                      "target": container_name(self.data["name"], name, number, svc)}
            cause = "no existing container" if not existing else f"scale up to {want}"
            op = b.add(OpType.CREATE_CONTAINER, resource, cause, create_deps, **fields)
            self.created.setdefault(name, []).append(op)
            if not options.no_start:
                op = b.add(OpType.START_CONTAINER, resource, "created", [op, *waits],
                           **fields)
            last.append(op)
        return last

    def drop_idle_waits(self) -> None:
        """A wait is only worth doing when something that waits on it has work."""
        idle = set()
        for op_id, names in self.dependents.items():
            needed = any(self.started.get(n) or self.options.run and n in self.options.services
                         for n in names)
            self.b.amend(op_id, cause="required by " + ", ".join(sorted(set(names))))
            if not needed:
                idle.add(op_id)
        self.b.ops = [op for op in self.b.ops if op.id not in idle]
        _renumber(self.b)

    def orphans(self) -> None:
        known = set(self.services) | set(self.options.inactive)
        orphans = sorted(c.name for c in self.observed.containers
                         if not c.oneoff and c.service not in known)
        if orphans and not self.options.remove_orphans:
            if not self.options.ignore_orphans:
                self.b.warnings.append(ORPHAN_WARNING.format(names=", ".join(orphans)))
            return
        for c in self.observed.containers:
            if not c.oneoff and c.service not in known:
                self.b.add(OpType.REMOVE_ORPHAN, f"container:{c.name}",
                           f"orphan: service {c.service} is not in the project", target=c.name)


def _renumber(b: _Builder) -> None:
    """After dropping operations: consecutive ids again, dependencies remapped."""
    old_ids = {op.id for op in b.ops}
    mapping = {op.id: i + 1 for i, op in enumerate(b.ops)}
    b.ops = [replace(op, id=mapping[op.id],
                     deps=tuple(sorted(mapping[d] for d in op.deps if d in old_ids)))
             for op in b.ops]


# --------------------------------------------------------------------------- down


def plan_down(data: Mapping[str, Any] | None, observed: ObservedState,
              options: DownOptions | None = None) -> Plan:
    """What `down` must do: containers (dependents first), then networks, volumes, images.

    Without a project model (`down -p name` and no compose file) every container of
    the project goes, and the networks and volumes carrying its label."""
    options = options or DownOptions()
    services: Mapping[str, Mapping[str, Any]] = (data or {}).get("services") or {}
    if data is None:  # the containers' depends_on labels still give the order
        services = {c.service: {"depends_on": {d: {} for d in c.depends_on}}
                    for c in observed.containers}
    b = _Builder()
    order = service_order(services) if services else []
    if options.services:
        order = [s for s in order if s in options.services]
    by_service: dict[str, list[int]] = {}
    # Dependents first: walk the start order backwards.
    for name in reversed(order):
        after = [op for dep_name, svc in services.items()
                 if name in (svc.get("depends_on") or {}) for op in by_service.get(dep_name, [])]
        by_service[name] = [
            b.add(OpType.REMOVE_CONTAINER, f"service:{name}:{c.number}" if not c.oneoff
                  else f"container:{c.name}", "down", after, service=name,
                  number=c.number, target=c.name, remove_volumes=options.volumes)
            for c in observed.containers if c.service == name]
    if not options.services:
        for c in observed.containers:
            if c.service in options.inactive:
                b.add(OpType.REMOVE_CONTAINER, f"service:{c.service}:{c.number}", "down",
                      service=c.service, number=c.number, target=c.name,
                      remove_volumes=options.volumes)
    orphans = [c for c in observed.containers
               if c.service not in services and c.service not in options.inactive]
    if not options.services and options.remove_orphans:
        for c in orphans:
            # As Compose: -v never reaches an orphan's anonymous volumes.
            b.add(OpType.REMOVE_ORPHAN, f"container:{c.name}",
                  f"orphan: service {c.service} is not in the project", target=c.name)
    elif orphans and not options.services:
        b.warnings.append(ORPHAN_WARNING.format(
            names=", ".join(sorted(c.name for c in orphans))))
    if options.services:
        return b.plan()
    containers = [op.id for op in b.ops]
    if data is not None:
        for key, net in sorted((data.get("networks") or {}).items()):
            real = network_name(data, key)
            # As Compose: only a network carrying this project's label (one of the
            # same name made by another project or by hand is not ours to remove).
            if not (net or {}).get("external") and real in observed.owned_networks:
                b.add(OpType.REMOVE_NETWORK, f"network:{key}", "down", containers, target=real)
    else:
        for real in sorted(observed.owned_networks):
            b.add(OpType.REMOVE_NETWORK, f"network:{real}", "down", containers, target=real)
    if options.volumes:
        if data is not None:
            for key, vol in sorted((data.get("volumes") or {}).items()):
                real = volume_name(data, key)
                if not (vol or {}).get("external") and real in observed.volumes:
                    b.add(OpType.REMOVE_VOLUME, f"volume:{key}", "down --volumes",
                          containers, target=real)
        else:
            for real in sorted(observed.owned_volumes):
                b.add(OpType.REMOVE_VOLUME, f"volume:{real}", "down --volumes",
                      containers, target=real)
    if options.rmi and data is not None:
        project = data["name"]
        refs = sorted({image_ref(project, n, s) for n, s in services.items()
                       if options.rmi == "all" or not s.get("image")})
        for ref in refs:
            if image_id(observed, ref) is not None:
                b.add(OpType.REMOVE_IMAGE, f"image:{ref}", f"down --rmi {options.rmi}",
                      containers, target=ref)
    return b.plan()
