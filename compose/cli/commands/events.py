"""`pycompose events`: the engine's events for the project's containers, as they
happen (`--json` for one JSON object per line, as Compose prints them)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from compose import labels as L
from compose.cli.context import Context
from compose.cli.project import load_project


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--json", action="store_true", help="Output events as a stream of json objects")
    p.add_argument("--since", type=float, default=None, help="Show all events created since "
                   "timestamp (seconds since the epoch)")
    p.add_argument("--until", type=float, default=None, help="Stream events until this timestamp")


def run(ctx: Context, args: argparse.Namespace) -> int:
    project = load_project(ctx)
    project.check(args.services)
    follow = args.until is None
    for event in ctx.engine().events(since=args.since, until=args.until, follow=follow):
        attrs = dict(event.attributes)
        if event.type != "container" or attrs.get(L.PROJECT) != project.name:
            continue
        service = attrs.get(L.SERVICE, "")
        if args.services and service not in args.services:
            continue
        stamp = datetime.fromtimestamp(event.time, UTC)
        shown = {k: v for k, v in attrs.items() if not k.startswith(L.PREFIX)}
        if args.json:
            ctx.stdout.write(json.dumps({
                "time": stamp.isoformat().replace("+00:00", "Z"), "type": event.type,
                "action": event.action, "id": event.id, "service": service,
                "attributes": shown}) + "\n")
        else:
            extra = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
            ctx.stdout.write(f"{stamp.strftime('%Y-%m-%d %H:%M:%S.%f')} container "
                             f"{event.action} {event.id} ({extra})\n")
        ctx.stdout.flush()
    return 0
