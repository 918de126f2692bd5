"""`pycompose create`: like `up --no-start`: networks, volumes, images and containers."""

from __future__ import annotations

import argparse

from compose.cli.commands.up import add_create_arguments, converge, up_options
from compose.cli.context import Context
from compose.cli.project import load_project


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_create_arguments(p)


def run(ctx: Context, args: argparse.Namespace) -> int:
    project = load_project(ctx, tuple(args.services), need_model=True)
    converge(ctx, project, up_options(args, project, no_start=True), timeout=None)
    return 0
