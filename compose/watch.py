"""`develop.watch`: the rules of a project, which actions a batch of changed host paths
asks for, a quiet-period debouncer, and an applier that carries the actions out through
`engine.api` (sync by copy + `rm -rf`, restart, exec; rebuilds through a callback the CLI
supplies, the same path as `up --build --no-deps SERVICE`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from compose import labels as L
from compose.dockerignore import PathMatcher, read_dockerignore
from compose.errors import ComposeError, ConfigError

if TYPE_CHECKING:
    from engine.api import Container, Engine

QUIET_PERIOD = 0.5  # seconds without a new event before a batch is handled (as Compose)

SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")
ACTIONS = ("sync", "rebuild", "sync+restart", "restart", "sync+exec")

# Files editors write and remove around a save (Compose's EphemeralPathMatcher).
EPHEMERAL_PATTERNS = (
    "**/.idea/**", "**/*___jb_old___", "**/*___jb_tmp___", "**/.#*", "**/#*#", "**/4913",
    "**/*~", "**/.*.swp", "**/.*.swx", "**/.*.swo", "**/.*.swn", "**/.*.kate-swp",
    "**/*-go-tmp-umask", "**/.git", "**/.git/**",
)

# Never copied by an initial sync (Compose: the Dockerfile and the compose files).
INITIAL_SYNC_SKIP = ("Dockerfile", "compose.yaml", "compose.yml", "docker-compose.yaml",
                     "docker-compose.yml", "compose.override.yaml", "compose.override.yml",
                     "docker-compose.override.yaml", "docker-compose.override.yml")


@dataclass(frozen=True)
class ExecHook:
    """`exec:` of a sync+exec rule."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, eq=False)
class Rule:
    """One `develop.watch` entry of one service, with its matchers."""

    service: str
    path: str  # absolute host path
    action: str
    target: str = ""
    ignore: PathMatcher = field(default_factory=lambda: PathMatcher("/"))
    include: PathMatcher | None = None  # None: every path
    exec: ExecHook | None = None
    initial_sync: bool = False

    def container_path(self, host_path: str) -> str | None:
        """Where `host_path` goes in the container (or "" for rules without a target),
        None when the rule does not apply to it."""
        host_path = os.path.normpath(host_path)
        if host_path != self.path and not host_path.startswith(self.path.rstrip("/") + "/"):
            return None
        if self.include is not None and not self.include.matches(host_path):
            return None
        if self.ignore.matches(host_path):
            return None
        if not self.target:
            return ""
        rel = os.path.relpath(host_path, self.path)
        return os.path.normpath(os.path.join(self.target, rel)) if rel != "." else self.target


@dataclass(frozen=True)
class PathMapping:
    """A changed host path and its place in the container."""

    host: str
    container: str


@dataclass
class BatchPlan:
    """What one batch of changes asks for, per service."""

    rebuild: set[str] = field(default_factory=set)
    sync: dict[str, list[PathMapping]] = field(default_factory=dict)
    restart: set[str] = field(default_factory=set)
    exec: dict[str, list[Rule]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rebuild or self.sync or self.restart or self.exec)


# --------------------------------------------------------------------------- rules


def _hook(raw: Mapping[str, Any] | None) -> ExecHook | None:
    if not raw or not raw.get("command"):
        return None
    command = raw["command"]
    if isinstance(command, str):
        import shlex

        command = shlex.split(command)
    env = raw.get("environment") or {}
    if isinstance(env, Mapping):
        pairs = tuple((str(k), "" if v is None else str(v)) for k, v in env.items())
    else:
        pairs = tuple((k, v) for k, _, v in (str(e).partition("=") for e in env))
    return ExecHook(tuple(str(c) for c in command), raw.get("user"),
                    bool(raw.get("privileged", False)), raw.get("working_dir"), pairs)


def _bind_sources(svc: Mapping[str, Any]) -> list[str]:
    return [os.path.normpath(str(v["source"])) for v in svc.get("volumes") or []
            if isinstance(v, Mapping) and v.get("type") == "bind" and v.get("source")]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def watch_rules(data: Mapping[str, Any], services: Iterable[str] = (), *,
                working_dir: str = ".",
                warn: Callable[[str], None] = lambda _m: None) -> list[Rule]:
    """The rules of `services` (every service if empty) of a canonical project tree.

    Sync rules on a path that a bind mount already shares are skipped with a warning.
    A rebuild rule without `build:` or a sync+exec rule without a command is an error,
    and so is a selection without any rule.
    """
    all_services: Mapping[str, Mapping[str, Any]] = data.get("services") or {}
    chosen = list(services) or sorted(all_services)
    rules: list[Rule] = []
    for name in chosen:
        if name not in all_services:
            raise ComposeError(f"no such service: {name}")
        svc = all_services[name]
        develop = svc.get("develop") or svc.get("x-develop") or {}
        triggers = develop.get("watch") or []
        if not triggers:
            continue
        build = svc.get("build")
        context_ignore = PathMatcher("/")
        if build:
            context = os.path.join(working_dir, str(build.get("context") or "."))
            context_ignore = PathMatcher.of(
                context, read_dockerignore(context, build.get("dockerfile")))
        binds = _bind_sources(svc)
        for i, trigger in enumerate(triggers):
            where = f"services.{name}.develop.watch[{i}]"
            action = str(trigger.get("action") or "")
            if action not in ACTIONS:
                raise ConfigError(f"{where}.action: invalid watch action {action!r}")
            if not trigger.get("path"):
                raise ConfigError(f"{where}: watch rules MUST define a path")
            path = os.path.normpath(os.path.join(working_dir, str(trigger["path"])))
            if action == "rebuild" and not build:
                raise ConfigError(f'can\'t watch service "{name}" with action rebuild '
                                  "without a build context")
            hook = _hook(trigger.get("exec"))
            if action == "sync+exec" and hook is None:
                raise ConfigError(f'can\'t watch with action "sync+exec" on service {name} '
                                  "without a command")
            if action in SYNC_ACTIONS and any(_under(path, b) for b in binds):
                warn(f"path '{path}' also declared by a bind mount volume, this path won't "
                     "be monitored!")
                continue
            ignore = PathMatcher.of(path, list(trigger.get("ignore") or []))
            matcher = AnyMatcher(context_ignore, PathMatcher.of("/", EPHEMERAL_PATTERNS),
                                 ignore)
            include = PathMatcher.of(path, list(trigger["include"])) \
                if trigger.get("include") else None
            rules.append(Rule(name, path, action, str(trigger.get("target") or ""),
                              matcher, include, hook,
                              bool(trigger.get("initial_sync") or
                                   trigger.get("x-initialSync"))))
    if not rules:
        raise ComposeError("none of the selected services is configured for watch, "
                           "consider setting a 'develop' section")
    return rules


class AnyMatcher(PathMatcher):
    """Ignored when any of the matchers ignores the path."""

    def __init__(self, *parts: PathMatcher) -> None:
        super().__init__("/")
        self.parts = parts

    def __bool__(self) -> bool:
        return any(self.parts)

    def matches(self, path: str) -> bool:
        return any(p.matches(path) for p in self.parts)


def watched_paths(rules: list[Rule]) -> list[str]:
    """The paths to hand to the file watcher: each rule's path, or its nearest existing
    ancestor (other than `/`) when it does not exist yet; nested paths collapse into
    their parent."""
    found: list[str] = []
    for rule in rules:
        path = rule.path
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        if path != "/" or rule.path == "/":  # never the whole filesystem by accident
            found.append(path)
    result: list[str] = []
    for path in sorted(set(found), key=len):
        if not any(_under(path, kept) for kept in result):
            result.append(path)
    return result


# --------------------------------------------------------------------------- batches


def _expand(rule: Rule, host: str, container: str) -> list[PathMapping]:
    """A changed directory stands for itself and every file below it that the rule
    does not ignore; other paths stand for themselves."""
    mappings = [PathMapping(host, container)]
    if not os.path.isdir(host) or os.path.islink(host):
        return mappings
    for top, dirs, files in os.walk(host):
        for name in sorted(dirs) + sorted(files):
            child = os.path.join(top, name)
            where = rule.container_path(child)
            if where is None:
                if name in dirs:
                    dirs.remove(name)
                continue
            mappings.append(PathMapping(child, where))
        dirs.sort()
    return mappings


def plan_batch(paths: Iterable[str], rules: list[Rule]) -> BatchPlan:
    """Map changed host paths to the actions the rules ask for (Compose's
    handleWatchBatch): every matching rule of every service counts."""
    plan = BatchPlan()
    for path in sorted(set(paths)):
        for rule in rules:
            container = rule.container_path(path)
            if container is None:
                continue
            if rule.action == "rebuild":
                plan.rebuild.add(rule.service)
                continue
            if rule.action == "restart":
                plan.restart.add(rule.service)
                continue
            synced = plan.sync.setdefault(rule.service, [])
            known = {m.host for m in synced}
            synced.extend(m for m in _expand(rule, path, container) if m.host not in known)
            if rule.action == "sync+restart":
                plan.restart.add(rule.service)
            elif rule.action == "sync+exec":
                hooks = plan.exec.setdefault(rule.service, [])
                if rule not in hooks:
                    hooks.append(rule)
    return plan


def initial_sync_mappings(rule: Rule) -> list[PathMapping]:
    """Every file under the rule's path it would sync, minus Dockerfile and compose
    files (Compose's initial_sync)."""
    if not os.path.exists(rule.path):
        return []
    if os.path.isfile(rule.path):
        where = rule.container_path(rule.path)
        return [] if where is None else [PathMapping(rule.path, where or rule.target)]
    found = []
    for m in _expand(rule, rule.path, rule.target)[1:]:
        if os.path.basename(m.host) in INITIAL_SYNC_SKIP or os.path.isdir(m.host):
            continue
        found.append(m)
    return found


class Debouncer:
    """Collects changed paths and hands them out as one batch once `quiet` seconds
    passed without a new one (so an editor saving many files makes one batch)."""

    def __init__(self, quiet: float = QUIET_PERIOD,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.clock = clock
        self.pending: set[str] = set()
        self.last = 0.0

    def add(self, paths: Iterable[str]) -> None:
        added = set(paths)
        if added:
            self.pending |= added
            self.last = self.clock()

    def due(self) -> list[str] | None:
        """The batch when the quiet period is over, else None."""
        if not self.pending or self.clock() - self.last < self.quiet:
            return None
        batch = sorted(self.pending)
        self.pending.clear()
        return batch


# --------------------------------------------------------------------------- applying


def go_quote_list(items: Iterable[str]) -> str:
    """Go's `%q` of a []string: `["a" "b"]`."""
    import json

    return "[" + " ".join(json.dumps(s) for s in items) + "]"


class Applier:
    """Carries a BatchPlan out on the project's containers.

    `rebuild(services)` rebuilds images and recreates those services (the CLI passes
    the `up --build --no-deps` path); messages go to `out` as Compose prints them.
    """

    def __init__(self, engine: Engine, project: str, data: Mapping[str, Any], out: IO[str],
                 rebuild: Callable[[list[str]], None] | None = None) -> None:
        self.engine = engine
        self.project = project
        self.data = data
        self.out = out
        self.rebuild_fn = rebuild

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def containers(self, service: str) -> list[Container]:
        from compose.observe import project_containers

        return [c for c in project_containers(self.engine, self.project, all=False)
                if c.labels.get(L.SERVICE) == service and c.state.status == "running"]

    def handle(self, plan: BatchPlan) -> None:
        """Apply a batch; an error is reported as a warning and the watch goes on."""
        try:
            self.apply(plan)
        except Exception as exc:  # the next batch may well succeed: keep watching
            self.say(f"WARN: Error handling changed files: {exc}")

    def apply(self, plan: BatchPlan) -> None:
        """Rebuild, then sync, then restart, then exec (Compose's order). A failed
        rebuild is reported and ends the batch."""
        if plan.rebuild:
            services = sorted(plan.rebuild)
            self.say(f"Rebuilding service(s) {go_quote_list(services)} after changes "
                     "were detected...")
            try:
                if self.rebuild_fn is None:
                    raise ComposeError("rebuild is not available")
                self.rebuild_fn(services)
            except Exception as exc:  # a failed build must not end the watch
                self.say(f"Build failed. Error: {exc}")
                return
            self.say(f"service(s) {go_quote_list(services)} successfully built")
        for service in sorted(plan.sync):
            mappings = plan.sync[service]
            self.say(f'Syncing service "{service}" after {len(mappings)} changes were '
                     "detected")
            for c in self.containers(service):
                self.sync(c, mappings)
        if plan.restart:
            services = self.with_restart_dependents(sorted(plan.restart))
            for service in services:
                for c in self.containers(service) or self.stopped(service):
                    self.engine.container_restart(c.id)
            self.say(f"service(s) {go_quote_list(sorted(plan.restart))} restarted")
        for service in sorted(plan.exec):
            for rule in plan.exec[service]:
                assert rule.exec is not None
                for c in self.containers(service):
                    self.run_hook(c, rule.exec)

    def stopped(self, service: str) -> list[Container]:
        from compose.observe import project_containers

        return [c for c in project_containers(self.engine, self.project, all=True)
                if c.labels.get(L.SERVICE) == service]

    def with_restart_dependents(self, services: list[str]) -> list[str]:
        """`services` plus those declaring `depends_on: {svc: {restart: true}}` on one."""
        chosen = list(services)
        changed = True
        all_services = self.data.get("services") or {}
        while changed:
            changed = False
            for name, svc in all_services.items():
                if name not in chosen and any(
                        dep in chosen and (cond or {}).get("restart")
                        for dep, cond in (svc.get("depends_on") or {}).items()):
                    chosen.append(name)
                    changed = True
        return chosen

    def _exec(self, c: Container, cmd: tuple[str, ...]) -> int:
        from engine.api import ExecSpec

        return self.engine.container_exec(c.id, ExecSpec(cmd=cmd))

    def sync(self, c: Container, mappings: list[PathMapping]) -> None:
        """Copy what exists, `rm -rf` what is gone; parent directories are made first."""
        dirs: list[str] = []
        files: list[PathMapping] = []
        gone: list[str] = []
        for m in mappings:
            if not m.container:
                continue
            if not os.path.lexists(m.host):
                gone.append(m.container)
            elif os.path.isdir(m.host) and not os.path.islink(m.host):
                dirs.append(m.container)
            else:
                files.append(m)
        parents = sorted({*dirs, *(os.path.dirname(m.container) for m in files)} - {"/", ""})
        if parents and self._exec(c, ("mkdir", "-p", *parents)) != 0:
            self.say(f"WARN: could not create {', '.join(parents)} in {c.name}")
        for m in files:
            try:
                self.engine.container_copy_to(c.id, m.host, m.container)
            except FileNotFoundError:
                gone.append(m.container)  # removed between the event and the copy
            except Exception as exc:
                self.say(f"WARN: could not sync {m.host} to {c.name}:{m.container}: {exc}")
        if gone and self._exec(c, ("rm", "-rf", *sorted(set(gone)))) != 0:
            self.say(f"WARN: could not remove {', '.join(sorted(gone))} in {c.name}")

    def run_hook(self, c: Container, hook: ExecHook) -> None:
        from engine.api import ExecSpec

        spec = ExecSpec(cmd=hook.command, user=hook.user, working_dir=hook.working_dir,
                        env=hook.environment, privileged=hook.privileged)
        code = self.engine.container_exec(c.id, spec)
        if code != 0:
            self.say(f"WARN: exec {' '.join(hook.command)} in {c.name} exited with "
                     f"code {code}")

    def initial_sync(self, rules: list[Rule]) -> None:
        for rule in rules:
            if rule.initial_sync and rule.action in SYNC_ACTIONS:
                mappings = initial_sync_mappings(rule)
                for c in self.containers(rule.service):
                    self.sync(c, mappings)


def prune_replaced(engine: Engine, before: Mapping[str, str]) -> list[str]:
    """Remove the images `before` (ref -> id) named that a rebuild left dangling and no
    container uses; the ids removed."""
    from engine.api import NotFound

    used = {c.image_id for c in engine.container_list(all=True)}
    removed = []
    for ref, old in before.items():
        try:
            if engine.image_inspect(ref).id == old:
                continue
        except NotFound:
            pass
        dangling = [i for i in engine.image_list() if i.id == old and not i.repo_tags]
        if dangling and old not in used:
            try:
                engine.image_remove(old)
                removed.append(old)
            except Exception:  # best effort: an image still in use stays
                continue
    return removed


def watch_loop(paths: list[str], on_batch: Callable[[list[str]], None], *,
               on_ready: Callable[[], None] = lambda: None,
               debouncer: Debouncer | None = None, stop: Any = None,
               tick_ms: int = 100) -> None:
    """Feed file events on `paths` (watchfiles) through the debouncer and call
    `on_batch` with each batch until `stop` (a threading.Event) is set; `on_ready` is
    called once the watcher is in place. Ctrl-C raises KeyboardInterrupt to the caller."""
    import threading

    import watchfiles

    if not paths:  # nothing exists to watch: wait for Ctrl-C (or `stop`) all the same
        on_ready()
        (stop or threading.Event()).wait()
        return
    debouncer = debouncer or Debouncer()
    ready = False
    for changes in watchfiles.watch(*paths, watch_filter=None, debounce=tick_ms * 4,
                                    step=min(50, tick_ms), rust_timeout=tick_ms,
                                    yield_on_timeout=True, stop_event=stop,
                                    ignore_permission_denied=True):
        if not ready:  # the first yield comes from a watcher that is already running
            ready = True
            on_ready()
        debouncer.add(path for _change, path in changes)
        batch = debouncer.due()
        if batch:
            on_batch(batch)
