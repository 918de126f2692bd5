"""`pycompose down`: stop and remove containers (dependents first) and networks;
volumes only with -v, images only with --rmi. Works from labels, so `-p NAME` alone
is enough when the compose file is gone."""

from __future__ import annotations

import argparse

from compose.cli.context import Context
from compose.cli.project import load_project, renderer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--remove-orphans", action="store_true",
                   help="Remove containers for services not defined in the Compose file")
    p.add_argument("--rmi", choices=["local", "all"],
                   help='Remove images used by services. "local" remove only images that '
                        "don't have a custom tag")
    p.add_argument("-t", "--timeout", type=int, default=None,
                   help="Specify a shutdown timeout in seconds")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="Remove named volumes declared in the volumes section of the "
                        "Compose file and anonymous volumes attached to containers")


def run(ctx: Context, args: argparse.Namespace) -> int:
    import os

    from compose.apply import Executor
    from compose.observe import observe
    from compose.plan import DownOptions, plan_down

    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()
    remove_orphans = args.remove_orphans or \
        os.environ.get("COMPOSE_REMOVE_ORPHANS", "").lower() in ("1", "true")
    plan = plan_down(project.data, observe(engine, project.name), DownOptions(
        remove_orphans=remove_orphans, volumes=args.volumes, rmi=args.rmi or "",
        services=tuple(args.services), inactive=project.inactive))
    if ctx.options.dry_run:
        ctx.stdout.write(plan.describe())
        return 0
    if not plan:
        ctx.stderr.write(f"Warning: No resource found to remove for project "
                         f'"{project.name}".\n')
        return 0
    progress = renderer(ctx, "Running")
    try:
        Executor(engine, project.info, project.data or {"name": project.name}, progress,
                 timeout=float(args.timeout) if args.timeout is not None else None,
                 parallel=ctx.options.parallel).run(plan)
    finally:
        progress.close()
    return 0
