"""`pycompose push [SERVICE...]`: push the images of services that have both `build:`
and `image:` (the others are skipped), as `docker compose push` does."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from compose.cli.context import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--ignore-push-failures", action="store_true",
                   help="Push what it can and ignores images with push failures")
    p.add_argument("--include-deps", action="store_true",
                   help="Also push images of services declared as dependencies")
    p.add_argument("-q", "--quiet", action="store_true", help="Push without printing "
                   "progress information")


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.commands.pull import layer_reporter, run_and_settle, selected
    from compose.cli.project import load_project, renderer

    project = load_project(ctx, tuple(args.services), need_model=True)
    project.check(args.services)
    engine = ctx.engine()
    progress = renderer(ctx, "Pushing") if not args.quiet else None
    jobs: list[tuple[str, Callable[[], Any]]] = []
    for name in selected(project.services, list(args.services), args.include_deps):
        svc = project.services[name]
        if svc.get("build") is None or not svc.get("image"):
            if progress is not None:
                progress.event(name, "Skipped", done=True)
            continue
        ref = str(svc["image"])

        def job(name: str = name, ref: str = ref) -> None:
            if progress is not None:
                progress.event(name, "Pushing")
            engine.image_push(ref, layer_reporter(progress, name, "Pushing")
                              if progress else None)
            if progress is not None:
                progress.event(name, "Pushed", done=True)

        jobs.append((name, job))
    run_and_settle(ctx, jobs, progress, lambda name: args.ignore_push_failures)
    return 0
