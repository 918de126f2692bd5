"""`pycompose cp`: copy files between a service container and the local filesystem
(`SERVICE:SRC DEST` or `SRC SERVICE:DEST`; copying in goes to every replica unless
--index picks one)."""

from __future__ import annotations

import argparse

from compose.cli.context import Context
from compose.cli.project import containers, load_project, one_container
from compose.errors import ComposeError, UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("destination")
    p.add_argument("--index", type=int, default=None,
                   help="Index of the container if service has multiple replicas")
    p.add_argument("--all", action="store_true", help="Include containers created by the run "
                   "command (deprecated)")
    p.add_argument("-a", "--archive", action="store_true",
                   help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="Always follow symbol link in SRC_PATH")


def _split(arg: str) -> tuple[str, str] | None:
    """`service:path` -> (service, path); a local path (even with a colon in a later
    component, or starting with / or .) -> None."""
    head, sep, tail = arg.partition(":")
    if not sep or "/" in head or head in ("", ".", ".."):
        return None
    return head, tail


def run(ctx: Context, args: argparse.Namespace) -> int:
    src, dest = _split(args.source), _split(args.destination)
    if (src is None) == (dest is None):
        raise UsageError("copying between services is not supported; exactly one of "
                         "SOURCE and DESTINATION must be SERVICE:PATH")
    project = load_project(ctx)
    engine = ctx.engine()
    if src is not None:
        project.check([src[0]])
        c = one_container(engine, project.name, src[0], args.index)
        engine.container_copy_from(c.id, src[1], args.destination)
        return 0
    assert dest is not None
    project.check([dest[0]])
    targets = containers(engine, project.name, [dest[0]], all=True, index=args.index)
    if not targets:
        raise ComposeError(f'no container found for service "{dest[0]}"')
    for c in targets:
        engine.container_copy_to(c.id, args.source, dest[1])
    return 0
