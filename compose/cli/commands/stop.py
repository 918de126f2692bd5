"""`pycompose stop`: stop running containers, dependents first, without removing them."""

from __future__ import annotations

import argparse

from compose.cli.commands._actions import act, services_argument, timeout_argument
from compose.cli.context import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    services_argument(p)
    timeout_argument(p)


def run(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    timeout = float(args.timeout) if args.timeout is not None else None
    return act(ctx, args.services, ("Stopping", "Stopped"),
               lambda c: engine.container_stop(c.id, timeout), all=False, reverse=True)
