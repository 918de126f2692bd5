"""The build executor: runs the stages a target needs (independent ones in parallel), one
instruction at a time through the handlers of steps_meta.py and steps_fs.py. A step that
changes files becomes a layer; metadata-only steps change the config. Every step goes
through the cache (cache.py) unless disabled."""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.api import BuildError, BuildSpec, Progress
from engine.build.cache import BuildCache, chain
from engine.build.context import BuildContext
from engine.build.dockerfile import Dockerfile, Instruction, Stage, parse_onbuild
from engine.build.state import DEFAULT_PATH, PLATFORM_ARGS, PROXY_ARGS, State
from engine.build.steps_fs import FilesystemSteps, mount_opts
from engine.build.steps_meta import MetadataSteps


class Executor(MetadataSteps, FilesystemSteps):
    """One build: the target's stages, in dependency order, each step through the cache."""

    def __init__(self, engine: Any, spec: BuildSpec, dockerfile: Dockerfile,
                 context: BuildContext, progress: Callable[[Progress], None]) -> None:
        self.engine = engine
        self.spec = spec
        self.df = dockerfile
        self.context = context
        self.report = progress
        self.build_args = dict(spec.args)
        self.cache = BuildCache(engine.store, engine._image_layers.exists)
        self.results: dict[int, State] = {}
        self.global_env = dict(PLATFORM_ARGS)
        for ins in dockerfile.global_args:
            for name, default in self._arg_pairs(ins, self.global_env):
                value = self.build_args.get(name, default)
                if value is not None:
                    self.global_env[name] = value
        self.extra_contexts = {k: v for k, v in spec.additional_contexts}

    # ------------------------------------------------------------- planning

    def target(self) -> Stage:
        if not self.spec.target:
            return self.df.stages[-1]
        stage = self.df.stage_by_ref(self.spec.target)
        if stage is None or stage.name is None:
            raise BuildError(f"failed to solve: target stage {self.spec.target!r} could not "
                             "be found")
        return stage

    def deps(self, stage: Stage) -> list[Stage]:
        out: list[Stage] = []
        base = self._stage_ref(self._expand(stage.base, self.global_env), stage.index)
        if base is not None:
            out.append(base)
        for ins in stage.instructions:
            refs = []
            if ins.cmd in ("COPY", "ADD") and ins.flag("from"):
                refs.append(ins.flag("from") or "")
            for m in ins.flag_all("mount"):
                opts = mount_opts(m)
                if opts.get("from"):
                    refs.append(opts["from"])
            for ref in refs:
                dep = self._stage_ref(self._expand(ref, self.global_env), stage.index)
                if dep is not None and dep is not stage:
                    out.append(dep)
        return out

    def run(self) -> State:
        target = self.target()
        needed: dict[int, Stage] = {}

        def visit(st: Stage) -> None:
            if st.index in needed:
                return
            needed[st.index] = st
            for d in self.deps(st):
                visit(d)

        visit(target)
        _preload_runtime()
        done: set[int] = set()
        while len(done) < len(needed):
            ready = [s for i, s in sorted(needed.items()) if i not in done
                     and all(d.index in done for d in self.deps(s))]
            if len(ready) == 1:
                self.results[ready[0].index] = self.build_stage(ready[0], len(needed) > 1)
            else:
                with ThreadPoolExecutor(max_workers=min(4, len(ready))) as pool:
                    futures = {s.index: pool.submit(self.build_stage, s, True) for s in ready}
                    for index, fut in futures.items():
                        self.results[index] = fut.result()
            done.update(s.index for s in ready)
        self._warn_unused_args(list(needed.values()))
        return self.results[target.index]

    def _warn_unused_args(self, stages: list[Stage]) -> None:
        declared = {n for ins in self.df.global_args for n, _ in self._arg_pairs(ins, {})}
        declared |= {n for st in stages for ins in st.instructions if ins.cmd == "ARG"
                     for n, _ in self._arg_pairs(ins, {})}
        unused = sorted(k for k in self.build_args if k not in declared
                        and k not in PROXY_ARGS)
        if unused:
            self.report(Progress(id="warning", status="WARN", text=(
                f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")))

    # ------------------------------------------------------------- stages

    def _use_cache(self, stage: Stage) -> bool:
        if self.spec.no_cache:
            return False
        return not (stage.name and stage.name in self.spec.no_cache_filter
                    or str(stage.index) in self.spec.no_cache_filter)

    def build_stage(self, stage: Stage, named: bool) -> State:
        base = self._expand(stage.base, self.global_env)
        prefix = f"{stage.label} " if named else ""
        total = len(stage.instructions) + 1
        step = f"[{prefix}1/{total}] FROM {base}" + (f" AS {stage.name}" if stage.name else "")
        self.report(Progress(id=step, status="START"))
        try:
            state = self._from(base, stage)
        except BuildError as e:
            raise BuildError(f"{self.df.filename}:{stage.line}: {e}", e.output) from None
        self.report(Progress(id=step, status="DONE"))
        triggers = list(state.config.pop("OnBuild", None) or [])
        use_cache = self._use_cache(stage)
        todo = [parse_onbuild(t, stage.line, self.df.filename) for t in triggers]
        todo += stage.instructions
        for n, ins in enumerate(todo):
            label = f"[{prefix}{min(n + 2, total)}/{total}] {ins.source}"
            state = self.step(state, ins, stage, label, use_cache)
        return state

    def _from(self, base: str, stage: Stage) -> State:
        empty = {"Env": [f"PATH={DEFAULT_PATH}"]}
        if base.lower() == "scratch":
            return State(config=empty, diff_ids=[], history=[], key=chain("scratch"))
        dep = self._stage_ref(base, stage.index)
        if dep is not None:
            s = self.results[dep.index]
            return State(config=copy.deepcopy(s.config), diff_ids=list(s.diff_ids),
                         history=list(s.history), key=chain(s.key, "stage"))
        image = self._image(base)
        config = self.engine._image_config(image.id)
        return State(config=copy.deepcopy(config.get("config") or {}),
                     diff_ids=list(image.diff_ids), history=list(config.get("history") or []),
                     key=chain("image", image.id))

    # ------------------------------------------------------------- steps

    def step(self, state: State, ins: Instruction, stage: Stage, label: str,
             use_cache: bool) -> State:
        handler = getattr(self, "_i_" + ins.cmd.lower())
        self.report(Progress(id=label, status="START"))
        try:
            result: State = handler(state, ins, stage, label, use_cache)
        except BuildError as e:
            if str(e).startswith(f"{self.df.filename}:"):
                raise
            raise BuildError(f"{self.df.filename}:{ins.line}: {e}", e.output) from None
        return result


def _preload_runtime() -> None:
    """Import what a step's forked monitor uses before stages run in threads: a child
    forked while another thread holds the import lock would block on its first import."""
    import importlib

    for name in ("engine.runtime.monitor", "engine.runtime.launcher",
                 "engine.runtime.rootfs", "engine.runtime.caps", "engine.runtime.cgroups",
                 "engine.runtime.bundle", "engine.runtime.user", "engine.runtime.limits",
                 "engine.runtime.health", "engine.runtime.nsexec", "engine.build.runner"):
        importlib.import_module(name)
