"""`pycompose start`: start existing containers of the services (dependencies first)."""

from __future__ import annotations

import argparse

from compose.cli.commands._actions import act, services_argument
from compose.cli.context import Context
from compose.cli.project import containers, load_project
from compose.errors import ComposeError


def add_arguments(p: argparse.ArgumentParser) -> None:
    services_argument(p)
    p.add_argument("--wait", action="store_true",
                   help="Wait for services to be running|healthy")
    p.add_argument("--wait-timeout", type=int, default=0,
                   help="Maximum duration in seconds to wait for the project")


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.plan import selected_services

    project = load_project(ctx)
    project.check(args.services)
    services = sorted(selected_services(project.services, tuple(args.services), False)) \
        if project.data is not None and args.services else list(args.services)
    engine = ctx.engine()
    if not containers(engine, project.name, services):
        names = ", ".join(services) or project.name
        raise ComposeError(f"service {names} has no container to start")
    code = act(ctx, services, ("Starting", "Started"), lambda c: engine.container_start(c.id),
               skip=lambda c: c.state.running, project=project)
    if args.wait:
        from compose.apply import wait_ready
        from compose.cli.project import renderer

        wait_ready(engine, project.name, set(services or project.services), renderer(ctx),
                   timeout=args.wait_timeout or None)
    return code
