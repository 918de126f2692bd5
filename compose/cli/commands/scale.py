"""`pycompose scale SERVICE=NUM...`: add or remove replicas without recreating the
others (dependencies are reconciled too, unless --no-deps)."""

from __future__ import annotations

import argparse

from compose.cli.commands.up import converge, parse_scale
from compose.cli.context import Context
from compose.cli.project import load_project
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scale", nargs="+", metavar="SERVICE=REPLICAS")
    p.add_argument("--no-deps", action="store_true", help="Don't start linked services")


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.plan import UpOptions

    scale = parse_scale(args.scale)
    if not scale:
        raise UsageError("scale needs at least one SERVICE=REPLICAS")
    project = load_project(ctx, tuple(scale), need_model=True)
    project.check(list(scale))
    options = UpOptions(services=tuple(scale), no_deps=args.no_deps, recreate="never",
                        scale=scale, inactive=project.inactive)
    converge(ctx, project, options, timeout=None)
    return 0
