"""`pycompose rm`: remove stopped service containers (-s stops them first, -f skips
the confirmation, -v also removes their anonymous volumes)."""

from __future__ import annotations

import argparse
import sys

from compose.cli.context import Context
from compose.cli.project import containers, load_project, renderer, stop_in_order


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-f", "--force", action="store_true", help="Don't ask to confirm removal")
    p.add_argument("-s", "--stop", action="store_true",
                   help="Stop the containers, if required, before removing")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="Remove any anonymous volumes attached to containers")


def run(ctx: Context, args: argparse.Namespace) -> int:
    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()
    if args.stop and not ctx.options.dry_run:
        from compose.cli.project import dependency_order

        running = containers(engine, project.name, args.services, all=False)
        progress = renderer(ctx, "Stopping")
        try:
            stop_in_order(engine, running, dependency_order(project), progress)
        finally:
            progress.close()
    stopped = [c for c in containers(engine, project.name, args.services)
               if not c.state.running]
    if not stopped:
        ctx.stderr.write("No stopped containers\n")
        return 0
    names = ", ".join(c.name for c in stopped)
    if ctx.options.dry_run:
        ctx.stdout.write(f"Going to remove {names}\n")
        return 0
    if not args.force:
        ctx.stderr.write(f"Going to remove {names}\n")
        if not sys.stdin.isatty():
            ctx.stderr.write("not a terminal: use -f to remove without confirmation\n")
            return 1
        ctx.stderr.write("? Are you sure? [y/N] ")
        ctx.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    progress = renderer(ctx, "Removing")
    try:
        for c in stopped:
            progress.event(f"Container {c.name}", "Removing")
            engine.container_remove(c.id, volumes=args.volumes)
            progress.event(f"Container {c.name}", "Removed", done=True)
    finally:
        progress.close()
    return 0
