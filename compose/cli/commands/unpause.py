"""`pycompose unpause`: resume the services' paused containers."""

from __future__ import annotations

import argparse

from compose.cli.commands._actions import act, services_argument
from compose.cli.context import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    services_argument(p)


def run(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    return act(ctx, args.services, ("Unpausing", "Unpaused"),
               lambda c: engine.container_unpause(c.id),
               skip=lambda c: c.state.status != "paused")
