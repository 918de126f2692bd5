"""`pycompose kill`: send a signal (default SIGKILL) to the running containers."""

from __future__ import annotations

import argparse

from compose.cli.commands._actions import act, services_argument
from compose.cli.context import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    services_argument(p)
    p.add_argument("-s", "--signal", default="SIGKILL",
                   help='SIGNAL to send to the container (default "SIGKILL")')
    p.add_argument("--remove-orphans", action="store_true",
                   help="Remove containers for services not defined in the Compose file")


def run(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    return act(ctx, args.services, ("Killing", "Killed"),
               lambda c: engine.container_kill(c.id, args.signal), all=False, reverse=True)
