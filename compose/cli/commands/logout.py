"""`pycompose logout [SERVER]`: forget a registry's credentials in `~/.docker/config.json`."""

from __future__ import annotations

import argparse
from typing import Any

from compose.cli.context import Context
from compose.errors import UsageError

DEFAULT_SERVER = "docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", default=DEFAULT_SERVER, metavar="SERVER",
                   help="Registry host (default: Docker Hub)")


def run(ctx: Context, args: argparse.Namespace) -> int:
    engine: Any = ctx.engine()
    logout = getattr(engine, "registry_logout", None)
    if logout is None:
        raise UsageError("this engine does not support registry logout")
    shown = DOCKER_HUB_KEY if args.server in ("docker.io", "index.docker.io",
                                              DOCKER_HUB_KEY) else args.server
    if logout(args.server):
        print(f"Removing login credentials for {shown}", file=ctx.stdout)
    else:
        print(f"Not logged in to {shown}", file=ctx.stdout)
    return 0
