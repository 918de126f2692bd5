"""`pycompose login [-u USER] [-p PASS | --password-stdin] [SERVER]`: check and store
registry credentials in `~/.docker/config.json`, as `docker login` does."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from compose.cli.context import Context
from compose.errors import UsageError

DEFAULT_SERVER = "docker.io"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", default=DEFAULT_SERVER, metavar="SERVER",
                   help="Registry host (default: Docker Hub)")
    p.add_argument("-u", "--username", default="", help="Username")
    p.add_argument("-p", "--password", default=None, help="Password")
    p.add_argument("--password-stdin", action="store_true",
                   help="Take the password from stdin")


def read_password(args: argparse.Namespace, ctx: Context) -> tuple[str, str]:
    """(username, password) from the flags, stdin or an interactive prompt."""
    if args.password is not None and args.password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if args.password_stdin:
        if not args.username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
        return args.username, password
    if args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=ctx.stderr)
        if not args.username:
            raise UsageError("Must provide --username with --password")
        return args.username, args.password
    if not sys.stdin.isatty():
        raise UsageError("Cannot perform an interactive login from a non TTY device")
    import getpass

    username = args.username or input("Username: ").strip()
    return username, getpass.getpass("Password: ")


def run(ctx: Context, args: argparse.Namespace) -> int:
    username, password = read_password(args, ctx)
    if not username:
        raise UsageError("Error: Non-null Username Required")
    if not password:
        raise UsageError("Error: Non-null Password Required")
    engine: Any = ctx.engine()
    login = getattr(engine, "registry_login", None)
    if login is None:
        raise UsageError("this engine does not support registry login")
    path = login(args.server, username, password)
    print(f"WARNING! Your password will be stored unencrypted in {path}.", file=ctx.stderr)
    print("Login Succeeded", file=ctx.stdout)
    return 0
