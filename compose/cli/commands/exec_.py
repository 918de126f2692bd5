"""`pycompose exec SERVICE COMMAND...`: run a command in a running service container;
its exit code becomes ours. A TTY by default when stdin is a terminal (-T: none)."""

from __future__ import annotations

import argparse
import sys

from compose.cli.context import Context
from compose.cli.env_flags import env_pairs
from compose.cli.project import load_project, one_container
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="Detached mode: Run command in the background")
    p.add_argument("-e", "--env", action="append", default=[],
                   help="Set environment variables")
    p.add_argument("--index", type=int, default=None,
                   help="Index of the container if service has multiple replicas")
    p.add_argument("-T", "--no-tty", action="store_true",
                   help="Disable pseudo-TTY allocation. By default a TTY is allocated "
                        "when stdin is a terminal")
    p.add_argument("-i", "--interactive", action="store_true", default=True,
                   help="Keep STDIN open even if not attached")
    p.add_argument("--privileged", action="store_true",
                   help="Give extended privileges to the process")
    p.add_argument("-u", "--user", help="Run the command as this user")
    p.add_argument("-w", "--workdir", help="Path to workdir directory for this command")
    p.add_argument("service")
    p.add_argument("command", nargs=argparse.REMAINDER)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import ExecSpec

    if not args.command:
        raise UsageError("exec requires at least 2 arguments: SERVICE COMMAND [ARGS...]")
    project = load_project(ctx)
    project.check([args.service])
    engine = ctx.engine()
    c = one_container(engine, project.name, args.service, args.index)
    tty = not args.no_tty and not args.detach and sys.stdin.isatty()
    spec = ExecSpec(cmd=tuple(args.command), user=args.user, working_dir=args.workdir,
                    env=env_pairs(args.env), tty=tty,
                    stdin=args.interactive and not args.detach,
                    privileged=args.privileged, detach=args.detach)
    if ctx.options.dry_run:
        ctx.stdout.write(f"exec {' '.join(args.command)} in {c.name}\n")
        return 0
    return engine.container_exec(c.id, spec)
