"""`pycompose dashboard`: the interactive Textual dashboard of the project (services,
health, resources, logs; restart/stop/start/rebuild/shell). Textual is imported only
here, when the command runs."""

from __future__ import annotations

import argparse
import sys

from compose.cli.context import Context
from compose.cli.project import load_project
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*", help="Show only these services")
    p.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                   help="Seconds between two refreshes of the services table")


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.refresh <= 0:
        raise UsageError(f"invalid --refresh {args.refresh}: must be more than 0")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the dashboard needs a terminal (stdin and stdout must be a TTY)")
    project = load_project(ctx)
    project.check(args.services)
    from tui.actions import ServiceActions
    from tui.app import DashboardApp
    from tui.data import DashboardSource

    engine = ctx.engine()
    services = args.services or list(project.services)
    app = DashboardApp(DashboardSource(engine, project.name, services),
                       ServiceActions(ctx.options, engine, project.name),
                       refresh=args.refresh)
    return app.run() or 0
