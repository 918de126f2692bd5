"""`pycompose restart`: restart the services' containers, running or not."""

from __future__ import annotations

import argparse

from compose.cli.commands._actions import act, services_argument, timeout_argument
from compose.cli.context import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    services_argument(p)
    timeout_argument(p)
    p.add_argument("--no-deps", action="store_true", help="Don't restart dependent services")


def run(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    timeout = float(args.timeout) if args.timeout is not None else None
    return act(ctx, args.services, ("Restarting", "Started"),
               lambda c: engine.container_restart(c.id, timeout))
