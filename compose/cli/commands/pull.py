"""`pycompose pull [SERVICE...]`: pull the services' images, in parallel, as
`docker compose pull` does (build-only and `pull_policy: never|build` services are
skipped; a failed pull of a buildable service is only a warning)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from compose.cli.context import Context
from compose.errors import ComposeError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--ignore-buildable", action="store_true",
                   help="Ignore images that can be built")
    p.add_argument("--ignore-pull-failures", action="store_true",
                   help="Pull what it can and ignores images with pull failures")
    p.add_argument("--include-deps", action="store_true",
                   help="Also pull services declared as dependencies")
    p.add_argument("--policy", choices=["missing", "always"], default=None,
                   help="Apply pull policy (\"missing\"|\"always\")")
    p.add_argument("-q", "--quiet", action="store_true", help="Pull without printing "
                   "progress information")


def selected(services: Mapping[str, Mapping[str, Any]], names: list[str],
             include_deps: bool) -> list[str]:
    """The named services (all if none), plus their dependencies with include_deps."""
    chosen = list(names) or sorted(services)
    if include_deps:
        todo = list(chosen)
        while todo:
            for dep in (services.get(todo.pop()) or {}).get("depends_on") or {}:
                if dep in services and dep not in chosen:
                    chosen.append(dep)
                    todo.append(dep)
    return chosen


def layer_reporter(progress: Any, resource: str, status: str) -> Callable[[Any], None]:
    """Relays the engine's layer reports (not the byte counts) as the resource's text."""
    def report(p: Any) -> None:
        if p.status not in ("Downloading", "Pushing"):
            progress.event(resource, status, text=" ".join(x for x in (p.id, p.status) if x))

    return report


def run_parallel(ctx: Context, jobs: list[tuple[str, Callable[[], Any]]]) -> list[
        tuple[str, BaseException | None]]:
    """Run (name, job) pairs on a bounded pool; (name, error or None) in the given order."""
    from concurrent.futures import ThreadPoolExecutor

    limit = ctx.options.parallel if ctx.options.parallel > 0 else max(1, len(jobs))

    def attempt(job: Callable[[], Any]) -> BaseException | None:
        try:
            job()
        except Exception as exc:  # reported per service by the caller
            return exc
        return None

    with ThreadPoolExecutor(max_workers=min(limit, 8) or 1) as pool:
        results = list(pool.map(lambda item: attempt(item[1]), jobs))
    return [(name, err) for (name, _), err in zip(jobs, results, strict=True)]


def run_and_settle(ctx: Context, jobs: list[tuple[str, Callable[[], Any]]], progress: Any,
                   tolerated: Callable[[str], bool]) -> None:
    """Run the jobs in parallel; show each failure, a warning where `tolerated(name)`;
    close the progress, then raise the first failure that was not tolerated."""
    from engine.api import EngineError

    failure: BaseException | None = None
    for name, err in run_parallel(ctx, jobs):
        if err is None:
            continue
        if progress is not None:
            progress.event(name, "Error", done=True, error=True, text=str(err))
        if tolerated(name):
            if progress is not None:
                progress.warn(f"{name}: {err}")
            continue
        failure = failure or err
    if progress is not None:
        progress.close()
    if failure is not None:
        if isinstance(failure, (EngineError, ComposeError)):
            raise failure
        raise ComposeError(str(failure))


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.project import load_project, renderer
    from compose.convert import image_ref
    from engine.api import EngineError

    project = load_project(ctx, tuple(args.services), need_model=True)
    project.check(args.services)
    engine = ctx.engine()
    progress = renderer(ctx, "Pulling") if not args.quiet else None
    jobs: list[tuple[str, Callable[[], Any]]] = []
    buildable: set[str] = set()
    for name in selected(project.services, list(args.services), args.include_deps):
        svc = project.services[name]
        if svc.get("build") is not None:
            buildable.add(name)
        policy = str(svc.get("pull_policy") or "")
        ref = image_ref(project.name, name, svc)
        skipped = ""
        if not svc.get("image") or policy in ("never", "build") or (
                args.ignore_buildable and name in buildable):
            skipped = "Skipped - No image to be pulled"
        elif (args.policy or policy) in ("missing", "if_not_present"):
            try:
                engine.image_inspect(ref)
                skipped = "Skipped - Image is already present locally"
            except EngineError:
                pass
        if skipped:
            if progress is not None:
                progress.event(name, skipped, done=True)
            continue

        def job(name: str = name, ref: str = ref) -> None:
            report = layer_reporter(progress, name, "Pulling") if progress else None
            if progress is not None:
                progress.event(name, "Pulling")
            engine.image_pull(ref, report)
            if progress is not None:
                progress.event(name, "Pulled", done=True)

        jobs.append((name, job))
    run_and_settle(ctx, jobs, progress,
                   lambda name: name in buildable or args.ignore_pull_failures)
    return 0
