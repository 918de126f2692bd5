"""`pycompose wait`: block until the services' containers stop; exit with the first
one's exit code (`--down-project` then takes the project down)."""

from __future__ import annotations

import argparse

from compose.cli.context import Context
from compose.cli.project import containers, load_project
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="+")
    p.add_argument("--down-project", action="store_true",
                   help="Drops project when the first container stops")


def run(ctx: Context, args: argparse.Namespace) -> int:
    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()
    chosen = containers(engine, project.name, args.services)
    if not chosen:
        raise UsageError(f"no containers for services {', '.join(args.services)}")
    code = 0
    for i, c in enumerate(chosen):
        exit_code = engine.container_wait(c.id)
        ctx.stdout.write(f"{c.name} exited with code {exit_code}\n")
        if i == 0:
            code = exit_code
        if args.down_project:
            break
    if args.down_project:
        from compose.cli.commands import down

        down_args = argparse.Namespace(services=[], remove_orphans=False, rmi=None,
                                       timeout=None, volumes=False)
        down.run(ctx, down_args)
    return code
