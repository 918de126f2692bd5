"""What lifecycle commands share: the project they act on (loaded from the files, or
only its name with `-p` when there are none), its containers, the progress renderer.

Commands that act on what exists (`ps`, `logs`, `down`, `stop`...) work from labels,
so they still work after the compose file changed; they use the model only for
service names and ordering.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compose import labels as L
from compose.cli.context import Context
from compose.convert import ProjectInfo
from compose.errors import ComposeError, FileNotFound, UsageError
from compose.progress import Renderer, renderer_for

if TYPE_CHECKING:
    from engine.api import Container, Engine


@dataclass(frozen=True)
class Project:
    name: str
    data: Mapping[str, Any] | None  # the canonical tree, None when only `-p` named it
    info: ProjectInfo
    loaded: Any = None  # compose.loader.LoadedProject
    known: tuple[str, ...] = ()  # every service of the files, active or not

    @property
    def inactive(self) -> tuple[str, ...]:
        """Services of the files that are not in the model (disabled by profiles):
        their containers are not orphans."""
        return tuple(n for n in self.known if n not in self.services)

    @property
    def services(self) -> Mapping[str, Mapping[str, Any]]:
        return (self.data or {}).get("services") or {}

    def check(self, services: list[str] | tuple[str, ...]) -> None:
        """Unknown service names are a usage error (when the model is known)."""
        if self.data is None:
            return
        for name in services:
            if name not in self.services:
                raise UsageError(f"no such service: {name}")


def _version() -> str:
    from compose.version import version

    return version()


def load_project(ctx: Context, services: tuple[str, ...] = (), *,
                 need_model: bool = False) -> Project:
    """The project of the command line; without compose files, `-p NAME` is enough
    unless the command needs the model."""
    try:
        loaded = ctx.load()
        known = set(loaded.data.get("services") or {}) | set(loaded.disabled or {})
        if any(s not in (loaded.data.get("services") or {}) for s in services):
            # naming a service enables its profiles: load again with the selection
            loaded = ctx.load(services)
            known |= set(loaded.disabled or {})
    except FileNotFound:
        name = ctx.options.project_name or os.environ.get("COMPOSE_PROJECT_NAME")
        if need_model or not name:
            raise
        return Project(name, None, ProjectInfo(name, version=_version()))
    data = loaded.data
    env_files = tuple(getattr(loaded, "env_files", ()) or ())
    info = ProjectInfo(loaded.name, str(loaded.working_dir),
                       tuple(str(f) for f in loaded.config_files),
                       tuple(os.path.abspath(f) for f in env_files), _version())
    for warning in getattr(loaded, "warnings", ()) or ():
        ctx.stderr.write(f"WARN[0000] {warning}\n")
    return Project(loaded.name, data, info, loaded, tuple(sorted(known)))


def containers(engine: Engine, project: str, services: list[str] | tuple[str, ...] = (), *,
               all: bool = True, oneoff: bool | None = False,
               index: int | None = None) -> list[Container]:
    """The project's containers of `services` (all if empty), sorted by service and number."""
    from compose.observe import project_containers

    found = [c for c in project_containers(engine, project, all=all, oneoff=oneoff)
             if not services or c.labels.get(L.SERVICE) in services]
    if index is not None:
        found = [c for c in found if c.labels.get(L.CONTAINER_NUMBER) == str(index)]
    return found


def one_container(engine: Engine, project: str, service: str, index: int | None) -> Container:
    """The container `exec`, `cp`, `port` act on: replica `index` (default 1), else a
    one-off of the service when it is the only container."""
    running = containers(engine, project, [service], all=False, index=index or 1)
    if running:
        return running[0]
    if index is None:
        runs = containers(engine, project, [service], all=False, oneoff=True)
        if runs:
            return runs[0]
    if index is not None:
        raise ComposeError(f'service "{service}" is not running container #{index}')
    raise ComposeError(f'service "{service}" is not running')


def renderer(ctx: Context, title: str = "Running") -> Renderer:
    return renderer_for(ctx.options.progress, ctx.stderr, title)


def dependency_order(project: Project) -> list[str]:
    """Service names, dependencies first (plain sorted names without a model)."""
    from compose.plan import service_order

    return service_order(project.services) if project.data is not None else []


def by_order(items: list[Container], order: list[str], reverse: bool = False) -> list[Container]:
    rank = {name: i for i, name in enumerate(order)}
    result = sorted(items, key=lambda c: (rank.get(c.labels.get(L.SERVICE, ""), len(rank)),
                                          c.name))
    return list(reversed(result)) if reverse else result


def stop_in_order(engine: Engine, items: list[Container], order: list[str],
                  progress: Renderer, timeout: float | None = None, *,
                  action: str = "stop", signal: str = "SIGKILL") -> None:
    """Stop (or kill/remove) containers dependents first; one service's replicas in
    parallel. Errors are reported per container and raised at the end."""
    from concurrent.futures import ThreadPoolExecutor

    words = {"stop": ("Stopping", "Stopped"), "kill": ("Killing", "Killed"),
             "remove": ("Removing", "Removed")}[action]
    failures: list[str] = []

    def one(c: Container) -> None:
        resource = f"Container {c.name}"
        progress.event(resource, words[0])
        try:
            if action == "stop":
                engine.container_stop(c.id, timeout)
            elif action == "kill":
                engine.container_kill(c.id, signal)
            else:
                engine.container_stop(c.id, timeout)
                engine.container_remove(c.id, force=True, volumes=False)
        except Exception as exc:  # reported per container, raised below
            progress.event(resource, "Error", error=True, text=str(exc))
            failures.append(f"{c.name}: {exc}")
            return
        progress.event(resource, words[1], done=True)

    groups: dict[str, list[Container]] = {}
    for c in by_order(items, order, reverse=True):
        groups.setdefault(c.labels.get(L.SERVICE, ""), []).append(c)
    pool = ThreadPoolExecutor(max_workers=8)
    try:
        for group in groups.values():
            list(pool.map(one, group))
    except BaseException:  # a second Ctrl-C: do not wait for the stops in flight
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if failures:
        raise ComposeError(failures[0])
