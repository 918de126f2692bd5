"""The shape shared by start/stop/restart/kill/pause/unpause: pick the services'
containers, act on each (in dependency order where it matters), report progress."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from compose.cli.context import Context
from compose.cli.project import Project, by_order, containers, dependency_order, load_project
from compose.cli.project import renderer as make_renderer

if TYPE_CHECKING:
    from engine.api import Container


def act(ctx: Context, services: list[str], words: tuple[str, str],
        action: Callable[[Container], None], *, all: bool = True, reverse: bool = False,
        skip: Callable[[Container], bool] = lambda c: False,
        project: Project | None = None) -> int:
    """Apply `action` to the selected containers one service at a time (dependencies
    first, or dependents first with `reverse`)."""
    project = project or load_project(ctx)
    project.check(services)
    engine = ctx.engine()
    chosen = [c for c in containers(engine, project.name, services, all=all) if not skip(c)]
    if ctx.options.dry_run:
        for c in by_order(chosen, dependency_order(project), reverse):
            ctx.stdout.write(f"{words[0]} {c.name}\n")
        return 0
    progress = make_renderer(ctx, "Running")
    try:
        for c in by_order(chosen, dependency_order(project), reverse):
            resource = f"Container {c.name}"
            progress.event(resource, words[0])
            try:
                action(c)
            except Exception as exc:
                progress.event(resource, "Error", error=True, text=str(exc))
                raise
            progress.event(resource, words[1], done=True)
    finally:
        progress.close()
    return 0


def services_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")


def timeout_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--timeout", type=int, default=None,
                   help="Specify a shutdown timeout in seconds")
