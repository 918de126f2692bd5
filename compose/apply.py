"""Carries a Plan out through `engine.api`, making no decisions of its own.

Operations run as soon as everything they depend on has finished, in parallel
threads (so each level of the dependency graph runs in parallel). The first failure
stops new work, lets running operations finish, and raises ApplyError naming it; a
failed wait on a `required: false` dependency is only a warning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compose import labels as L
from compose.changes import ContainerChanges, Pacer, watch
from compose.convert import ProjectInfo, build_spec, container_spec, network_spec, volume_spec
from compose.errors import ApplyError
from compose.plan import Operation, Plan
from compose.progress import QuietRenderer, Renderer

if TYPE_CHECKING:
    from engine.api import Container, ContainerSpec, Engine

POLL = 0.5  # seconds between checks of a dependency's state, as Compose


@dataclass
class Executor:
    engine: Engine
    info: ProjectInfo
    data: Mapping[str, Any]
    renderer: Renderer = field(default_factory=QuietRenderer)
    timeout: float | None = None  # stop timeout for recreate/remove
    parallel: int = -1
    poll: float = POLL
    wait_timeout: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    _changes: ContainerChanges | None = field(default=None, init=False, repr=False)
    _changes_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                          repr=False)

    # ------------------------------------------------------------------ scheduling

    def run(self, plan: Plan) -> None:
        for message in plan.warnings:
            self.renderer.warn(message)
        pending = {op.id: op for op in plan.operations}
        finished: set[int] = set()
        running: dict[Future[None], Operation] = {}
        failures: list[str] = []
        workers = self.parallel if self.parallel > 0 else min(32, max(4, len(pending)))
        try:
            with ThreadPoolExecutor(max_workers=workers or 1) as pool:
                try:
                    self._schedule(pool, pending, finished, running, failures)
                except BaseException:  # Ctrl-C: running waits give up, the pool drains
                    self.cancelled.set()
                    if self._changes is not None:
                        self._changes.close()
                    raise
        finally:
            if self._changes is not None:
                self._changes.close()
        if failures:
            raise ApplyError(failures[0])
        if pending:
            raise ApplyError("plan has unsatisfiable dependencies: " +
                             ", ".join(f"#{i}" for i in sorted(pending)))

    def _schedule(self, pool: ThreadPoolExecutor, pending: dict[int, Operation],
                  finished: set[int], running: dict[Future[None], Operation],
                  failures: list[str]) -> None:
        """Submit every operation whose dependencies finished; collect results."""
        while (pending and not failures) or running:
            if not failures:
                for op in [o for o in pending.values() if set(o.deps) <= finished]:
                    del pending[op.id]
                    running[pool.submit(self.execute, op)] = op
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                op = running.pop(future)
                error = future.exception()
                if error is None:
                    finished.add(op.id)
                elif not op.required:
                    self.renderer.warn(f"optional dependency {op.service}: {error}")
                    finished.add(op.id)
                else:
                    failures.append(str(error) if isinstance(error, ApplyError)
                                    else f"{op.resource}: {error}")
                    self.cancelled.set()  # waits in flight give up instead of holding the run

    def execute(self, op: Operation) -> None:
        handler: Callable[[Operation], None] = getattr(self, "_" + op.type.name.lower())
        handler(op)

    # ------------------------------------------------------------------ operations

    def _step(self, resource: str, working: str, done: str, action: Callable[[], Any]) -> Any:
        self.renderer.event(resource, working)
        try:
            result = action()
        except Exception as exc:
            self.renderer.event(resource, "Error", error=True, text=str(exc))
            raise
        self.renderer.event(resource, done, done=True)
        return result

    def _create_network(self, op: Operation) -> None:
        key = op.resource.split(":", 1)[1]
        spec = network_spec(self.info, key, (self.data.get("networks") or {}).get(key) or {})
        self._step(f"Network {op.target}", "Creating", "Created",
                   lambda: self.engine.network_create(spec))

    def _create_volume(self, op: Operation) -> None:
        key = op.resource.split(":", 1)[1]
        spec = volume_spec(self.info, key, (self.data.get("volumes") or {}).get(key) or {})
        self._step(f"Volume {op.target}", "Creating", "Created",
                   lambda: self.engine.volume_create(spec))

    def _progress(self, resource: str, status: str) -> Callable[[Any], None]:
        """Relays an engine pull/build progress report as the resource's detail text."""
        def report(p: Any) -> None:
            ident = str(p.id)[:19] if str(p.id).startswith("sha256:") else str(p.id)
            detail = " ".join(part for part in (ident, p.status, p.text) if part)
            self.renderer.event(resource, status, text=detail)

        return report

    def _pull_image(self, op: Operation) -> None:
        resource = f"Image {op.target}"
        report = self._progress(resource, "Pulling")
        self._step(resource, "Pulling", "Pulled",
                   lambda: self.engine.image_pull(op.target, report))

    def _build_image(self, op: Operation) -> None:
        spec = build_spec(self.info, self.data, op.service)
        resource = f"Image {op.target}"
        report = self._progress(resource, "Building")
        self._step(resource, "Building", "Built", lambda: self.engine.image_build(spec, report))

    def _spec(self, op: Operation) -> ContainerSpec:
        """The replica's spec; the image label carries the image id, as Compose's does."""
        from dataclasses import replace

        from engine.api import NotFound

        spec = container_spec(self.info, self.data, op.service, op.number)
        try:
            image = self.engine.image_inspect(spec.image).id
        except NotFound:
            return spec
        return replace(spec, labels=tuple({**dict(spec.labels), L.IMAGE: image}.items()))

    def _create_container(self, op: Operation) -> None:
        spec = self._spec(op)
        self._step(f"Container {op.target}", "Creating", "Created",
                   lambda: self.engine.container_create(spec))

    def _recreate_container(self, op: Operation) -> None:
        spec = self._spec(op)

        def recreate() -> None:
            self.engine.container_stop(op.target, self.timeout)
            self.engine.container_remove(op.target, force=True)
            self.engine.container_create(spec)

        self._step(f"Container {op.target}", "Recreate", "Recreated", recreate)

    def _start_container(self, op: Operation) -> None:
        self._step(f"Container {op.target}", "Starting", "Started",
                   lambda: self.engine.container_start(op.target))

    def _restart_container(self, op: Operation) -> None:
        self._step(f"Container {op.target}", "Restarting", "Restarted",
                   lambda: self.engine.container_restart(op.target, self.timeout))

    def _stop_container(self, op: Operation) -> None:
        self._step(f"Container {op.target}", "Stopping", "Stopped",
                   lambda: self.engine.container_stop(op.target, self.timeout))

    def _remove_container(self, op: Operation) -> None:
        def remove() -> None:
            self.engine.container_stop(op.target, self.timeout)
            self.engine.container_remove(op.target, force=True, volumes=op.remove_volumes)

        self._step(f"Container {op.target}", "Removing", "Removed", remove)

    _remove_orphan = _remove_container

    def _remove_network(self, op: Operation) -> None:
        self._remove_shared(f"Network {op.target}",
                            lambda: self.engine.network_remove(op.target))

    def _remove_volume(self, op: Operation) -> None:
        self._remove_shared(f"Volume {op.target}", lambda: self.engine.volume_remove(op.target))

    def _remove_shared(self, resource: str, remove: Callable[[], None]) -> None:
        """As Compose's `down`: a network or volume still in use (or already gone) is a
        warning on its line, not a failure of the whole command."""
        from engine.api import Conflict, NotFound

        self.renderer.event(resource, "Removing")
        try:
            remove()
        except Conflict:
            self.renderer.event(resource, "Resource is still in use", done=True)
            return
        except NotFound:
            self.renderer.event(resource, "Warning: No resource found to remove", done=True)
            return
        except Exception as exc:
            self.renderer.event(resource, "Error", error=True, text=str(exc))
            raise
        self.renderer.event(resource, "Removed", done=True)

    def _remove_image(self, op: Operation) -> None:
        self._step(f"Image {op.target}", "Removing", "Removed",
                   lambda: self.engine.image_remove(op.target))

    def _wait_healthy(self, op: Operation) -> None:
        self._wait(op, "Waiting", "Healthy",
                   lambda c: healthy_or_error(c, has_healthcheck(self.engine, c)))

    def _wait_completed(self, op: Operation) -> None:
        self._wait(op, "Waiting", "Exited", completed_or_error)

    def _wait(self, op: Operation, working: str, done: str,
              check: Callable[[Container], bool]) -> None:
        containers = self._service_containers(op.service)
        for c in containers:
            self.renderer.event(f"Container {c.name}", working)
        deadline = None if self.wait_timeout is None else time.monotonic() + self.wait_timeout
        todo = {c.name for c in containers}
        pacer = Pacer(self._watch_changes(), self.poll, self.cancelled)
        while todo:
            pacer.mark()
            for name in sorted(todo):
                c = self.engine.container_inspect(name)
                try:
                    ready = check(c)
                except ApplyError as exc:
                    self.renderer.event(f"Container {name}", "Error", error=True,
                                        text=str(exc))
                    raise
                if ready:
                    todo.discard(name)
                    self.renderer.event(f"Container {name}", done, done=True)
            if todo:
                if deadline is not None and time.monotonic() > deadline:
                    raise ApplyError(f"timeout waiting for {', '.join(sorted(todo))}")
                if pacer.pause():
                    raise ApplyError("cancelled")

    def _watch_changes(self) -> ContainerChanges:
        """The run's follower of container events, started by the first wait."""
        with self._changes_lock:
            if self._changes is None:
                self._changes = watch(self.engine)
            return self._changes

    def _service_containers(self, service: str) -> list[Container]:
        from compose.observe import project_containers

        return [c for c in project_containers(self.engine, self.info.name)
                if c.labels.get(L.SERVICE) == service]


# --------------------------------------------------------------------------- conditions


def healthy_or_error(c: Container, has_healthcheck: bool = True) -> bool:
    """True when healthy; ApplyError when it exited, is unhealthy or has no healthcheck."""
    state = c.state
    if state.status in ("exited", "dead"):
        raise ApplyError(f"container {c.name} exited ({state.exit_code})")
    health = state.health.status if state.health else "none"
    if health == "unhealthy":
        raise ApplyError(f"container {c.name} is unhealthy")
    if health == "none" and state.status == "running" and not has_healthcheck:
        raise ApplyError(f"container {c.name} has no healthcheck configured")
    return health == "healthy"


def has_healthcheck(engine: Engine, c: Container) -> bool:
    """Whether the container's spec, or else its image, defines a health check."""
    if c.spec.healthcheck is not None and c.spec.healthcheck.test:
        return c.spec.healthcheck.test[:1] != ("NONE",)
    try:
        test = (engine.image_inspect(c.image_id).config.get("Healthcheck") or {}).get("Test")
    except Exception:  # the image record may be gone; then there is nothing to run
        return False
    if not isinstance(test, list) or not test:
        return False
    return bool(test[0] != "NONE")


def completed_or_error(c: Container) -> bool:
    """True once exited with 0; ApplyError when it exited otherwise."""
    if c.state.status in ("exited", "dead"):
        if c.state.exit_code != 0:
            raise ApplyError(f"service {c.labels.get(L.SERVICE, c.name)} didn't complete "
                             f"successfully: exit {c.state.exit_code}")
        return True
    return False


def running_or_healthy(c: Container) -> bool:
    """`up --wait`: running, and healthy when it has a health check."""
    if c.state.status in ("exited", "dead"):
        raise ApplyError(f"container {c.name} exited ({c.state.exit_code})")
    if c.state.health is not None and c.state.health.status != "none":
        if c.state.health.status == "unhealthy":
            raise ApplyError(f"container {c.name} is unhealthy")
        return c.state.health.status == "healthy"
    return c.state.status == "running"


def wait_ready(engine: Engine, project: str, services: set[str], renderer: Renderer,
               timeout: float | None = None, poll: float = POLL,
               completed_ok: set[str] | None = None) -> None:
    """`up --wait`: block until every container of `services` is running (healthy when it
    has a health check); services in `completed_ok` may instead have exited with 0."""
    from compose.observe import project_containers

    deadline = None if timeout is None else time.monotonic() + timeout
    todo = {c.name: c.labels.get(L.SERVICE, "") for c in project_containers(engine, project)
            if c.labels.get(L.SERVICE) in services}
    for name in sorted(todo):
        renderer.event(f"Container {name}", "Waiting")
    changes = watch(engine) if todo else None
    try:
        _wait_ready(engine, todo, renderer, deadline, Pacer(changes, poll), completed_ok)
    finally:
        if changes is not None:
            changes.close()


def _wait_ready(engine: Engine, todo: dict[str, str], renderer: Renderer,
                deadline: float | None, pacer: Pacer, completed_ok: set[str] | None) -> None:
    while todo:
        pacer.mark()
        for name, service in sorted(todo.items()):
            c = engine.container_inspect(name)
            if service in (completed_ok or set()) and c.state.status == "exited":
                ready = completed_or_error(c)
            else:
                try:
                    ready = running_or_healthy(c)
                except ApplyError as exc:
                    renderer.event(f"Container {name}", "Error", error=True, text=str(exc))
                    raise
            if ready:
                del todo[name]
                renderer.event(f"Container {name}", "Healthy" if c.state.health else "Running",
                               done=True)
        if todo:
            if deadline is not None and time.monotonic() > deadline:
                raise ApplyError("timeout waiting for "
                                 f"{', '.join(sorted(todo))} to be running or healthy")
            pacer.pause()


def apply(plan: Plan, engine: Engine, info: ProjectInfo, data: Mapping[str, Any],
          renderer: Renderer | None = None, **options: Any) -> None:
    """Carry out `plan` (see Executor for the options)."""
    Executor(engine, info, data, renderer or QuietRenderer(), **options).run(plan)
