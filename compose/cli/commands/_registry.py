"""`pycompose image pull|push`: arguments, Docker-shaped progress lines, the two commands.

Shared by `image.py` (which registers the subcommands) and the Compose-level pull/push.
"""

from __future__ import annotations

import argparse
import threading
from typing import IO, TYPE_CHECKING, Any

from compose.cli.context import Context

if TYPE_CHECKING:
    from engine.api import Progress, ProgressFn

# Byte-count updates are shown only on a terminal; other statuses become one line each.
_BYTE_STATUSES = ("Downloading", "Pushing")


def add_registry_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pull = sub.add_parser("pull", help="Download an image from a registry")
    pull.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    pull.add_argument("-q", "--quiet", action="store_true",
                      help="Suppress verbose output")
    pull.add_argument("--platform", default=None,
                      help="Set platform if server is multi-platform capable (os/arch)")

    push = sub.add_parser("push", help="Upload an image to a registry")
    push.add_argument("name", metavar="NAME[:TAG]")
    push.add_argument("-q", "--quiet", action="store_true",
                      help="Suppress verbose output")


def progress_printer(out: IO[str], quiet: bool = False) -> ProgressFn:
    """Docker's pull/push lines (`<id>: <status>`); byte updates redrawn on a tty."""
    tty = out.isatty()
    last: dict[str, str] = {}
    lock = threading.Lock()  # layers are pulled by several threads

    def show(p: Progress) -> None:
        if quiet:
            return
        with lock:
            _show(p)

    def _show(p: Progress) -> None:
        line = f"{p.id}: {p.status}" if p.id else p.status
        if p.status in _BYTE_STATUSES:
            if tty and p.total:
                out.write(f"\r{line} {_bytes(p.current)}/{_bytes(p.total)}\x1b[K")
                out.flush()
            return
        if last.get(p.id) == p.status:
            return
        last[p.id] = p.status
        out.write(("\r\x1b[K" if tty else "") + line + "\n")
        out.flush()

    return show


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{n}B"
        n = n / 1000  # type: ignore[assignment]
    return f"{n}B"


def pull(ctx: Context, args: argparse.Namespace) -> int:
    engine: Any = ctx.engine()
    extra = {"platform": args.platform} if args.platform else {}
    engine.image_pull(args.name, progress_printer(ctx.stdout, args.quiet), **extra)
    print(_canonical(args.name), file=ctx.stdout)
    return 0


def push(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine().image_push(args.name, progress_printer(ctx.stdout, args.quiet))
    if args.quiet:
        print(_canonical(args.name), file=ctx.stdout)
    return 0


def _canonical(name: str) -> str:
    """The fully qualified reference Docker prints after a pull."""
    if "@" in name:
        repo, _, digest = name.partition("@")
        return _qualify(repo) + "@" + digest
    last = name.rsplit("/", 1)[-1]
    return _qualify(name) if ":" in last else _qualify(name) + ":latest"


def _qualify(repo: str) -> str:
    first, sep, _ = repo.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return repo
    return f"docker.io/{repo}" if sep else f"docker.io/library/{repo}"
