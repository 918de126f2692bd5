"""`pycompose build [SERVICES]`: build the services' images from their `build:` sections,
with BuildKit's plain progress (`#N [1/4] RUN ...`, `#N CACHED`, the failing step's
output between `------` rulers)."""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import replace
from typing import IO, Any

from compose.cli.context import Context
from compose.cli.env_flags import pass_through_pairs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--no-cache", action="store_true",
                   help="Do not use cache when building the image")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull a newer "
                   "version of the image")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="Set build-time variables for services")
    p.add_argument("-q", "--quiet", action="store_true", help="Don't print anything to "
                   "STDOUT")
    p.add_argument("--progress", dest="build_progress", default=None,
                   choices=["auto", "tty", "plain", "json", "quiet"],
                   help="Set type of ui output")


def parse_build_args(items: list[str]) -> tuple[tuple[str, str], ...]:
    """`K=V`, or `K` alone taking the value from the environment (skipped if unset)."""
    return pass_through_pairs(items, "invalid build arg {}: expected KEY=VALUE")


class PlainProgress:
    """BuildKit's plain progress output for the engine's build Progress reports."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.steps: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()

    def __call__(self, p: Any) -> None:
        with self.lock:
            if p.status == "WARN":
                self.out.write(p.text + "\n")
                return
            if p.id not in self.steps:
                self.steps[p.id] = (len(self.steps) + 1, time.monotonic())
                self.out.write(f"#{self.steps[p.id][0]} {p.id}\n")
            n, started = self.steps[p.id]
            if p.status == "LOG":
                for line in p.text.splitlines():
                    self.out.write(f"#{n} {time.monotonic() - started:.3f} {line}\n")
            elif p.status == "CACHED":
                self.out.write(f"#{n} CACHED\n")
            elif p.status == "DONE":
                for line in (p.text or "").splitlines():
                    self.out.write(f"#{n} {line}\n")
                self.out.write(f"#{n} DONE {time.monotonic() - started:.1f}s\n")
            elif p.status == "ERROR":
                self.out.write(f"#{n} ERROR: {p.id}\n------\n > {p.id}:\n")
                for line in p.text.splitlines()[-20:]:
                    self.out.write(f"{line}\n")
                self.out.write("------\n")
            self.out.flush()


def build_one(ctx: Context, spec: Any, report: Any) -> Any:
    """Build; without a progress display, a failing step's output still goes to stderr."""
    from engine.api import BuildError

    try:
        return ctx.engine().image_build(spec, report)
    except BuildError as e:
        if report is None and e.output:
            ctx.stderr.write(e.output if e.output.endswith("\n") else e.output + "\n")
        raise


def progress_for(ctx: Context, quiet: bool, mode: str | None) -> Any:
    if quiet or (mode or ctx.options.progress) == "quiet":
        return None
    return PlainProgress(ctx.stderr)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.project import load_project
    from compose.convert import build_spec

    project = load_project(ctx, tuple(args.services), need_model=True)
    project.check(args.services)
    names = list(args.services) or sorted(project.services)
    targets = [n for n in names if project.services[n].get("build") is not None]
    if not targets:
        return 0
    extra = parse_build_args(args.build_arg)
    report = progress_for(ctx, args.quiet, args.build_progress)
    specs = {}
    for name in targets:
        spec = build_spec(project.info, project.data or {}, name, no_cache=args.no_cache,
                          pull=args.pull)
        specs[name] = replace(spec, args=tuple({**dict(spec.args), **dict(extra)}.items()))

    def build(name: str) -> None:
        named = report
        if report is not None and len(specs) > 1:
            def named(p: Any) -> None:
                report(replace(p, id=f"{name} {p.id}"))
        build_one(ctx, specs[name], named)
        if not args.quiet:
            ctx.stderr.write(f" Service {name}  Built\n")

    if len(specs) == 1:
        build(targets[0])
        return 0
    from concurrent.futures import ThreadPoolExecutor

    workers = ctx.options.parallel if ctx.options.parallel > 0 else 4
    with ThreadPoolExecutor(max_workers=min(workers, len(specs))) as pool:
        futures = [pool.submit(build, name) for name in targets]
    for future in futures:
        future.result()  # the first failure, once every build has ended
    return 0


def image_build(ctx: Context, args: argparse.Namespace) -> int:
    """`pycompose image build [-t NAME] [-f FILE] CONTEXT` (docker build)."""
    from engine.api import BuildSpec

    context = os.path.abspath(args.context)
    dockerfile = args.file or "Dockerfile"
    if args.file and not os.path.isabs(args.file):
        dockerfile = os.path.abspath(args.file)  # -f is relative to the cwd, as docker's
    labels = []
    for item in args.label:
        key, _, value = item.partition("=")
        labels.append((key, value))
    spec = BuildSpec(context=context, dockerfile=dockerfile, tags=tuple(args.tag),
                     args=parse_build_args(args.build_arg), target=args.target,
                     labels=tuple(labels), network=args.network, no_cache=args.no_cache,
                     no_cache_filter=tuple(args.no_cache_filter), pull=args.pull)
    image = build_one(ctx, spec, progress_for(ctx, args.quiet, args.build_progress))
    if args.quiet:
        ctx.stdout.write(image.id + "\n")
    return 0
