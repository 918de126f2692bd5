"""`pycompose version`: the version, in Compose's text or JSON form."""

from __future__ import annotations

import argparse
import json

from compose.cli.context import Context
from compose.version import version as _version


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=["pretty", "json"], default="pretty")
    p.add_argument("--short", action="store_true", help="Shows only the version number")


def run(ctx: Context, args: argparse.Namespace) -> int:
    v = _version()
    if args.short:
        print(v, file=ctx.stdout)
    elif args.format == "json":
        print(json.dumps({"version": f"v{v}"}), file=ctx.stdout)
    else:
        print(f"pycompose version v{v}", file=ctx.stdout)
    return 0
