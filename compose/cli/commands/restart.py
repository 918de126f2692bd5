"""`pycompose restart`: restart the services' containers, running or not; services
that declare `depends_on: {svc: {restart: true}}` on one of them are restarted after
it, unless --no-deps."""

from __future__ import annotations

import argparse

from compose.cli.commands._actions import act, services_argument, timeout_argument
from compose.cli.context import Context
from compose.cli.project import Project, load_project


def add_arguments(p: argparse.ArgumentParser) -> None:
    services_argument(p)
    timeout_argument(p)
    p.add_argument("--no-deps", action="store_true", help="Don't restart dependent services")


def with_restart_dependents(project: Project, services: list[str]) -> list[str]:
    """`services` plus, transitively, those that must restart when one of them does."""
    chosen = list(services)
    changed = True
    while changed:
        changed = False
        for name, svc in project.services.items():
            if name in chosen:
                continue
            if any(dep in chosen and (cond or {}).get("restart")
                   for dep, cond in (svc.get("depends_on") or {}).items()):
                chosen.append(name)
                changed = True
    return chosen


def run(ctx: Context, args: argparse.Namespace) -> int:
    project = load_project(ctx)
    project.check(args.services)
    services = list(args.services)
    if services and not args.no_deps:
        services = with_restart_dependents(project, services)
    engine = ctx.engine()
    timeout = float(args.timeout) if args.timeout is not None else None
    return act(ctx, services, ("Restarting", "Started"),
               lambda c: engine.container_restart(c.id, timeout), project=project)
