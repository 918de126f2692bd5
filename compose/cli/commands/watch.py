"""`pycompose watch [--no-up] [--prune] [--quiet] [SERVICE...]`: bring the services up
(as `up -d`), then follow their `develop.watch` rules until Ctrl-C (exit 0)."""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import replace
from typing import Any

from compose.cli.context import Context
from compose.cli.project import Project, load_project
from compose.errors import UsageError

LARGE_BATCH = 1000  # more changes than this in one batch earn a note (as Compose)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--no-up", action="store_true", help="Do not build & start services "
                   "before watching")
    p.add_argument("--prune", nargs="?", const="true", default="true", metavar="BOOL",
                   help="Prune dangling images on rebuild (default true)")
    p.add_argument("--quiet", action="store_true", help="hide build output")


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise UsageError(f'invalid argument "{value}" for "--prune" flag: expected a boolean')


def _quiet_context(ctx: Context) -> Context:
    """A context sharing ctx's engine whose progress output is silenced."""
    quiet = Context(replace(ctx.options, progress="quiet"), ctx.stdout, ctx.stderr)
    engine = ctx.engine()
    quiet.engine = lambda: engine  # type: ignore[method-assign]
    return quiet


def _up(ctx: Context, project: Project, services: tuple[str, ...]) -> None:
    from compose.cli.commands.up import converge
    from compose.plan import UpOptions

    converge(ctx, project, UpOptions(services=services, inactive=project.inactive),
             timeout=None)


def _rebuilder(ctx: Context, project: Project, prune: bool) -> Any:
    """The rebuild callback: `up --build --no-deps --force-recreate SERVICES`, then
    removal of the images it replaced (with --prune)."""
    from compose.cli.commands.up import converge
    from compose.convert import image_ref
    from compose.plan import UpOptions
    from compose.watch import prune_replaced
    from engine.api import NotFound

    def rebuild(services: list[str]) -> None:
        engine = ctx.engine()
        before: dict[str, str] = {}
        for name in services:
            ref = image_ref(project.name, name, project.services[name])
            try:
                before[ref] = engine.image_inspect(ref).id
            except NotFound:
                pass
        converge(ctx, project, UpOptions(services=tuple(services), no_deps=True,
                                         build="always", recreate="force",
                                         inactive=project.inactive),
                 timeout=None, title="Rebuilding")
        if prune:
            prune_replaced(engine, before)

    return rebuild


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.watch import Applier, plan_batch, watch_loop, watch_rules, watched_paths

    prune = _flag(args.prune)
    project = load_project(ctx, tuple(args.services), need_model=True)
    project.check(args.services)
    working_dir = project.info.working_dir or "."

    def warn(message: str) -> None:
        ctx.stderr.write(f"WARN[0000] {message}\n")

    rules = watch_rules(project.data or {}, args.services, working_dir=working_dir,
                        warn=warn)
    if ctx.options.dry_run:
        for rule in rules:
            ctx.stdout.write(f"watch {rule.path} -> {rule.service} ({rule.action})\n")
        return 0
    work_ctx = _quiet_context(ctx) if args.quiet else ctx
    if not args.no_up:
        _up(work_ctx, project, tuple(args.services))
    applier = Applier(ctx.engine(), project.name, project.data or {}, ctx.stdout,
                      rebuild=_rebuilder(work_ctx, project, prune))
    applier.initial_sync(rules)

    def on_batch(batch: list[str]) -> None:
        if len(batch) > LARGE_BATCH:
            applier.say("Large batch of file changes detected. If you just switched "
                        "branches, this is expected.")
        plan = plan_batch(batch, rules)
        if plan:
            applier.handle(plan)

    # SIGINT too: a shell starts background jobs with it ignored, and `kill -INT` of a
    # watch must still end it (as Go's signal.Notify does for Compose).
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in stops}
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for sig in stops:
            signal.signal(sig, _interrupt)
    try:
        watch_loop(watched_paths(rules), on_batch,
                   on_ready=lambda: applier.say("Watch enabled"))
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    applier.say("Watch disabled")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
