"""`pycompose top`: the processes running in each of the services' containers."""

from __future__ import annotations

import argparse

from compose.cli.commands.ps import table
from compose.cli.context import Context
from compose.cli.project import containers, load_project


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")


def run(ctx: Context, args: argparse.Namespace) -> int:
    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()
    for c in sorted(containers(engine, project.name, args.services, all=False),
                    key=lambda c: c.name):
        titles, rows = engine.container_top(c.id)
        ctx.stdout.write(f"{c.name}\n{table(rows, titles)}\n")
    return 0
