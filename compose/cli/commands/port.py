"""`pycompose port SERVICE PRIVATE_PORT`: the public address of a published port."""

from __future__ import annotations

import argparse

from compose.cli.context import Context
from compose.cli.project import load_project, one_container
from compose.errors import ComposeError, UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("private_port")
    p.add_argument("--index", type=int, default=None,
                   help="Index of the container if service has multiple replicas")
    p.add_argument("--protocol", default="tcp", choices=["tcp", "udp"], help="tcp or udp")


def run(ctx: Context, args: argparse.Namespace) -> int:
    port, _, proto = args.private_port.partition("/")
    if not port.isdigit():
        raise UsageError(f"invalid port {args.private_port!r}")
    project = load_project(ctx)
    project.check([args.service])
    c = one_container(ctx.engine(), project.name, args.service, args.index)
    for p in c.ports:
        if p.container_port == int(port) and p.protocol == (proto or args.protocol):
            ctx.stdout.write(f"{p.host_ip or '0.0.0.0'}:{p.host_port}\n")
            return 0
    raise ComposeError(f"no port {port}/{proto or args.protocol} for container {c.name}")
