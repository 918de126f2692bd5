"""`pycompose up`: plan, apply, then (unless detached) stream the logs until the
containers exit, Ctrl-C (graceful stop; a second one kills) or an abort condition."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from compose.cli.context import Context
from compose.cli.project import (
    Project,
    containers,
    dependency_order,
    load_project,
    renderer,
    stop_in_order,
)
from compose.errors import ApplyError, UsageError

if TYPE_CHECKING:
    from compose.plan import Plan, UpOptions
    from engine.api import Container, Engine


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_create_arguments(p)
    p.add_argument("-d", "--detach", action="store_true",
                   help="Detached mode: Run containers in the background")
    p.add_argument("--wait", action="store_true",
                   help="Wait for services to be running|healthy. Implies detached mode.")
    p.add_argument("--wait-timeout", type=int, default=0,
                   help="Maximum duration in seconds to wait for the project to be "
                        "running|healthy")
    p.add_argument("--no-start", action="store_true",
                   help="Don't start the services after creating them")
    p.add_argument("--no-deps", action="store_true", help="Don't start linked services")
    p.add_argument("--abort-on-container-exit", action="store_true",
                   help="Stops all containers if any container was stopped")
    p.add_argument("--abort-on-container-failure", action="store_true",
                   help="Stops all containers if any container exited with failure")
    p.add_argument("--exit-code-from", metavar="SERVICE",
                   help="Return the exit code of the selected service container")
    p.add_argument("--attach", action="append", default=[],
                   help="Restrict attaching to the specified services")
    p.add_argument("--no-attach", action="append", default=[],
                   help="Do not attach (stream logs) to the specified services")
    p.add_argument("--attach-dependencies", action="store_true",
                   help="Automatically attach to log output of dependent services")
    p.add_argument("-t", "--timeout", type=int, default=None,
                   help="Use this timeout in seconds for container shutdown")
    p.add_argument("--no-color", action="store_true", help="Produce monochrome output")
    p.add_argument("--no-log-prefix", action="store_true", help="Don't print prefix in logs")
    p.add_argument("--timestamps", action="store_true", help="Show timestamps")


def add_create_arguments(p: argparse.ArgumentParser) -> None:
    """Flags `up` shares with `create`."""
    p.add_argument("services", nargs="*")
    p.add_argument("--build", action="store_true",
                   help="Build images before starting containers")
    p.add_argument("--no-build", action="store_true", help="Don't build an image, "
                   "even if it's policy")
    p.add_argument("--pull", choices=["always", "missing", "never"],
                   help='Pull image before running ("always"|"missing"|"never")')
    p.add_argument("--force-recreate", action="store_true",
                   help="Recreate containers even if their configuration and image "
                        "haven't changed")
    p.add_argument("--no-recreate", action="store_true",
                   help="If containers already exist, don't recreate them")
    p.add_argument("--remove-orphans", action="store_true",
                   help="Remove containers for services not defined in the Compose file")
    p.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM",
                   help="Scale SERVICE to NUM instances")
    p.add_argument("--quiet-pull", action="store_true", help="Pull without printing progress")
    p.add_argument("-y", "--yes", action="store_true", help="Assume yes to all prompts")


def parse_scale(values: list[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for value in values:
        name, _, count = value.partition("=")
        if not name or not count.isdigit():
            raise UsageError(f"invalid --scale {value!r}: expected SERVICE=NUM")
        scale[name] = int(count)
    return scale


def up_options(args: argparse.Namespace, project: Project, *, no_start: bool = False,
               no_deps: bool = False) -> UpOptions:
    from compose.plan import UpOptions

    if args.build and args.no_build:
        raise UsageError("--build and --no-build are incompatible")
    if args.force_recreate and args.no_recreate:
        raise UsageError("--force-recreate and --no-recreate are incompatible")
    scale = parse_scale(args.scale)
    project.check(list(scale))
    project.check(args.services)
    env = dict(getattr(project.loaded, "environment", {}) or {})
    env.update(os.environ)
    remove_orphans = args.remove_orphans or \
        env.get("COMPOSE_REMOVE_ORPHANS", "").lower() in ("1", "true")
    return UpOptions(
        services=tuple(args.services), no_deps=no_deps,
        recreate="force" if args.force_recreate else "never" if args.no_recreate
        else "diverged",
        build="always" if args.build else "never" if args.no_build else "auto",
        pull=args.pull, scale=scale, remove_orphans=remove_orphans, no_start=no_start,
        inactive=project.inactive,
        ignore_orphans=env.get("COMPOSE_IGNORE_ORPHANS", "").lower() in ("1", "true"))


def converge(ctx: Context, project: Project, options: UpOptions, *, timeout: float | None,
             title: str = "Running") -> Plan | None:
    """Plan and apply (or print the plan with --dry-run); None after a dry run."""
    from dataclasses import replace

    from compose.apply import Executor
    from compose.observe import observe
    from compose.plan import OpType, plan_up

    assert project.data is not None
    engine = ctx.engine()
    plan = plan_up(project.data, observe(engine, project.name), options)
    if ctx.options.dry_run:
        ctx.stdout.write(plan.describe())
        for warning in plan.warnings:
            ctx.stderr.write(f"WARN[0000] {warning}\n")
        return None
    progress = renderer(ctx, title)
    try:
        images = plan.only(OpType.PULL_IMAGE, OpType.BUILD_IMAGE)
        if images:
            # Images first, then plan again: a new image id must recreate its containers.
            Executor(engine, project.info, project.data, progress,
                     parallel=ctx.options.parallel).run(images)
            plan = plan_up(project.data, observe(engine, project.name),
                           replace(options, build="never", pull="never"))
        Executor(engine, project.info, project.data, progress, timeout=timeout,
                 parallel=ctx.options.parallel).run(plan)
        if not plan and not options.run:
            for c in containers(engine, project.name, options.services, all=False):
                progress.event(f"Container {c.name}", "Running", done=True)
    finally:
        progress.close()
    if not plan and ctx.options.progress != "quiet" and not options.run:
        ctx.stderr.write(plan.describe())
    return plan


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.exit_code_from:
        args.abort_on_container_exit = True
    aborting = args.abort_on_container_exit or args.abort_on_container_failure
    detach = args.detach or args.wait
    if detach and aborting:
        raise UsageError("--abort-on-container-exit and --detach are incompatible")
    if detach and args.attach:
        raise UsageError("--attach and --detach are incompatible")
    project = load_project(ctx, tuple(args.services), need_model=True)
    if args.exit_code_from:
        project.check([args.exit_code_from])
    options = up_options(args, project, no_start=args.no_start, no_deps=args.no_deps)
    timeout = float(args.timeout) if args.timeout is not None else None
    began = time.time()  # attached output starts here: what ran before is not replayed
    if converge(ctx, project, options, timeout=timeout) is None or args.no_start:
        return 0
    from compose.plan import selected_services

    targets = selected_services(project.services, options.services, options.no_deps)
    if args.wait:
        from compose.apply import wait_ready

        completed_ok = {dep for svc in project.services.values()
                        for dep, cond in (svc.get("depends_on") or {}).items()
                        if cond.get("condition") == "service_completed_successfully"}
        progress = renderer(ctx, "Waiting")
        try:
            wait_ready(ctx.engine(), project.name, targets, progress,
                       timeout=args.wait_timeout or None, completed_ok=completed_ok)
        finally:
            progress.close()
        return 0
    if detach:
        return 0
    attach = set(args.attach) or (set(args.services) if args.services and
                                  not args.attach_dependencies else targets)
    attach -= set(args.no_attach)
    return Attached(ctx, project, attach, args, timeout, began).run()


class Attached:
    """The foreground part of `up`: logs until exit, abort or Ctrl-C."""

    def __init__(self, ctx: Context, project: Project, attach: set[str],
                 args: argparse.Namespace, timeout: float | None, since: float) -> None:
        self.ctx = ctx
        self.since = since
        self.project = project
        self.attach = attach
        self.args = args
        self.timeout = timeout
        self.engine: Engine = ctx.engine()
        self.abort = threading.Event()
        self.failure_code = 0

    def on_exit(self, c: Container, code: int) -> None:
        self.mux.notice(self.mux_name(c), self.mux.colors.get(self.mux_name(c), "0"),
                        f"exited with code {code}")
        if self.abort.is_set():
            return  # already stopping everything: later exits are only reported
        if self.args.abort_on_container_exit or \
                (self.args.abort_on_container_failure and code != 0):
            self.failure_code = code
            self.abort.set()

    @staticmethod
    def mux_name(c: Container) -> str:
        from compose.logmux import display_name

        return display_name(c)

    def listed(self) -> list[Container]:
        return containers(self.engine, self.project.name, sorted(self.attach))

    def run(self) -> int:
        from compose.logmux import LogMux

        color = not self.args.no_color and self.ctx.stdout.isatty() and \
            self.ctx.options.ansi != "never" or self.ctx.options.ansi == "always"
        self.mux = LogMux(self.engine, self.ctx.stdout, color=color,
                          prefix=not self.args.no_log_prefix,
                          timestamps=self.args.timestamps, on_exit=self.on_exit)
        names = [self.mux_name(c) for c in self.listed()]
        self.mux.width = max((len(n) for n in names), default=0)  # prefixes line up
        self.ctx.stdout.write(f"Attaching to {', '.join(names)}\n")
        previous = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.mux.watch(self.listed, until_all_exited=True, since=self.since,
                           until=self.abort)
            if self.abort.is_set():
                # The others' output keeps flowing while they stop, exits included.
                self.mux.say("Aborting on container exit...")
                self.stop_all()
                self.mux.settle()
        except KeyboardInterrupt:
            return self.interrupted()
        finally:
            self.mux.stop()
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
        if not self.abort.is_set():
            return 0
        if self.args.exit_code_from:
            found = containers(self.engine, self.project.name, [self.args.exit_code_from])
            return found[0].state.exit_code if found else 0
        return self.failure_code if self.args.abort_on_container_failure else 0

    def stop_all(self, kill: bool = False) -> None:
        progress = renderer(self.ctx, "Stopping")
        try:
            stop_in_order(self.engine, containers(self.engine, self.project.name, all=False),
                          dependency_order(self.project), progress, self.timeout,
                          action="kill" if kill else "stop")
        finally:
            progress.close()

    def interrupted(self) -> int:
        self.ctx.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
        try:
            self.stop_all()
            self.mux.settle()
        except KeyboardInterrupt:
            self.stop_all(kill=True)
        except ApplyError:
            pass
        return 130


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
