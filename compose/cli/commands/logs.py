"""`pycompose logs`: the services' output with `service-1  | ` prefixes; with -f it
keeps following across restarts, recreation and new replicas until Ctrl-C."""

from __future__ import annotations

import argparse
import re
import time

from compose.cli.context import Context
from compose.cli.project import containers, load_project
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("--index", type=int, default=None,
                   help="index of the container if service has multiple replicas")
    p.add_argument("--no-color", action="store_true", help="Produce monochrome output")
    p.add_argument("--no-log-prefix", action="store_true", help="Don't print prefix in logs")
    p.add_argument("--since", help='Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) '
                   'or relative (e.g. 42m for 42 minutes)')
    p.add_argument("--until", help='Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) '
                   'or relative (e.g. 42m for 42 minutes)')
    p.add_argument("-n", "--tail", default="all",
                   help="Number of lines to show from the end of the logs for each container")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")


def parse_moment(text: str | None, flag: str) -> float | None:
    """Seconds since the epoch from a timestamp, epoch seconds, or a relative duration."""
    if text is None:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", text):
        from compose.convert import duration

        return time.time() - duration(text)
    try:
        from compose.logmux import parse_time

        return parse_time(text if "T" in text else text + "T00:00:00Z")
    except ValueError:
        raise UsageError(f"invalid value for {flag}: {text!r}")


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.logmux import LogMux

    tail: int | None = None
    if args.tail != "all":
        if not args.tail.lstrip("-").isdigit():
            raise UsageError(f"invalid value for --tail: {args.tail!r}")
        tail = int(args.tail) if int(args.tail) >= 0 else None  # Docker: negative = all
    since, until = parse_moment(args.since, "--since"), parse_moment(args.until, "--until")
    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()
    color = (not args.no_color and ctx.stdout.isatty() and ctx.options.ansi != "never") \
        or ctx.options.ansi == "always"
    mux = LogMux(engine, ctx.stdout, color=color, prefix=not args.no_log_prefix,
                 timestamps=args.timestamps)

    def listed() -> list:  # type: ignore[type-arg]
        return containers(engine, project.name, args.services, index=args.index)

    from compose.logmux import display_name

    found = listed()
    mux.width = max((len(display_name(c)) for c in found), default=0)  # prefixes line up
    if not args.follow:
        for c in found:
            mux.add(c, since=since, tail=tail, follow=False, until=until)
        return 0
    try:
        mux.watch(listed, since=since, tail=tail)
    except KeyboardInterrupt:
        mux.stop()
    return 0
