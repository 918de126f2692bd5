"""The build executor: runs the stages a target needs (independent ones in parallel), one
instruction at a time. A step that changes files becomes a layer (RUN: the overlay upper
dir of its container; COPY/ADD/WORKDIR: the entries written); metadata-only steps change
the config. Every step goes through the cache (cache.py) unless disabled."""

from __future__ import annotations

import copy
import posixpath
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import BuildError, BuildSpec, EngineError, NotFound, Progress
from engine.build import copyops
from engine.build.cache import BuildCache, chain
from engine.build.context import BuildContext, find_sources
from engine.build.dockerfile import Dockerfile, Instruction, Stage, json_form, parse_onbuild
from engine.build.fstree import DirTree, LayeredTree, Tree
from engine.build.layertar import LayerWriter, diff_upper
from engine.build.words import WordError, expand, split_words

DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
PLATFORM_ARGS = {"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64",
                 "TARGETVARIANT": "", "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux",
                 "BUILDARCH": "amd64", "BUILDVARIANT": ""}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXPANDING = ("ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
             "WORKDIR", "ONBUILD", "ARG")


def now() -> str:
    from engine.images.importer import now_rfc3339

    return now_rfc3339()


@dataclass
class State:
    """A stage's image so far."""

    config: dict[str, Any]
    diff_ids: list[str]
    history: list[dict[str, Any]]
    key: str
    author: str = ""
    args: dict[str, str | None] = field(default_factory=dict)  # declared in this stage
    cmd_set: bool = False

    def record(self) -> dict[str, Any]:
        return {"config": self.config, "diff_ids": self.diff_ids, "history": self.history,
                "author": self.author}

    def after(self, record: dict[str, Any], key: str) -> State:
        return State(config=record["config"], diff_ids=list(record["diff_ids"]),
                     history=list(record["history"]), key=key,
                     author=record.get("author", ""), args=dict(self.args),
                     cmd_set=self.cmd_set)


class Executor:
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
        self.lock = threading.Lock()
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

    def _expand(self, text: str, env: dict[str, str], ins: Instruction | None = None) -> str:
        try:
            return expand(text, env, self.df.escape)
        except WordError as e:
            line = ins.line if ins is not None else 0
            raise BuildError(f"{self.df.filename}:{line}: {e}") from None

    def _stage_ref(self, ref: str, before: int) -> Stage | None:
        return self.df.stage_by_ref(ref, before)

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
                opts = _mount_opts(m)
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
        return self.results[target.index]

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
        state = self._from(base, stage)
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

    def _image(self, ref: str) -> Any:
        pull = getattr(self.engine, "image_pull", None)
        if self.spec.pull and pull is not None:
            try:
                return pull(ref)
            except EngineError as e:
                raise BuildError(f"failed to resolve source metadata for {ref}: {e}") from None
        try:
            return self.engine._image_resolve(ref)
        except NotFound:
            if pull is None:
                raise BuildError(f"failed to resolve source metadata for {ref}: "
                                 "image not found") from None
        try:
            return pull(ref)
        except EngineError as e:
            raise BuildError(f"failed to resolve source metadata for {ref}: {e}") from None

    def layer_dirs(self, diff_ids: list[str]) -> list[Path]:
        return [Path(self.engine._image_layers.path(d)) for d in diff_ids]

    def env_of(self, state: State) -> dict[str, str]:
        env = {k: v for k, v in state.args.items() if v is not None}
        for item in state.config.get("Env") or []:
            k, _, v = item.partition("=")
            env[k] = v
        return env

    # ------------------------------------------------------------- steps

    def step(self, state: State, ins: Instruction, stage: Stage, label: str,
             use_cache: bool) -> State:
        handler = getattr(self, "_i_" + ins.cmd.lower())
        self.report(Progress(id=label, status="START"))
        result: State = handler(state, ins, stage, label, use_cache)
        return result

    def _cached(self, state: State, key: str, label: str, use_cache: bool) -> State | None:
        if not use_cache:
            return None
        record = self.cache.get(key)
        if record is None:
            return None
        self.report(Progress(id=label, status="CACHED"))
        return state.after(record, key)

    def _commit(self, state: State, key: str, label: str, created_by: str,
                config: dict[str, Any] | None = None, diff_id: str | None = None,
                author: str | None = None) -> State:
        entry: dict[str, Any] = {"created": now(), "created_by": created_by,
                                 "comment": "buildkit.dockerfile.v0"}
        if diff_id is None:
            entry["empty_layer"] = True
        new = State(config=config if config is not None else state.config,
                    diff_ids=state.diff_ids + ([diff_id] if diff_id else []),
                    history=state.history + [entry], key=key,
                    author=state.author if author is None else author, args=dict(state.args),
                    cmd_set=state.cmd_set)
        self.cache.put(key, new.record())
        self.report(Progress(id=label, status="DONE"))
        return new

    def _meta(self, state: State, ins: Instruction, label: str, use_cache: bool,
              inputs: Any, change: Callable[[dict[str, Any]], None],
              created_by: str) -> State:
        key = chain(state.key, ins.cmd, inputs)
        hit = self._cached(state, key, label, use_cache)
        if hit is not None:
            return hit
        config = copy.deepcopy(state.config)
        change(config)
        return self._commit(state, key, label, created_by, config=config)

    def _store(self, writer: LayerWriter) -> str | None:
        if writer.count == 0:
            return None
        diff_id, _ = self.engine._image_store_layer(writer.finish())
        return str(diff_id)

    # ------------------------------------------------------------- metadata instructions

    def _arg_pairs(self, ins: Instruction, env: dict[str, str]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for word in split_words(ins.rest, self.df.escape):
            name, eq, default = word.partition("=")
            out.append((name, self._expand(default, env, ins) if eq else None))
        return out

    def _i_arg(self, state: State, ins: Instruction, stage: Stage, label: str,
               use_cache: bool) -> State:
        env = self.env_of(state)
        for name, default in self._arg_pairs(ins, env):
            if name in self.build_args:
                value: str | None = self.build_args[name]
            elif default is not None:
                value = default
            else:
                value = self.global_env.get(name) if any(
                    name == n for g in self.df.global_args
                    for n, _ in self._arg_pairs(g, {})) or name in PLATFORM_ARGS else None
            state.args[name] = value
        self.report(Progress(id=label, status="DONE"))
        return state

    def _i_env(self, state: State, ins: Instruction, stage: Stage, label: str,
               use_cache: bool) -> State:
        pairs = self._pairs(state, ins)

        def change(config: dict[str, Any]) -> None:
            env = [e for e in config.get("Env") or []]
            for k, v in pairs:
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            config["Env"] = env

        return self._meta(state, ins, label, use_cache, pairs, change,
                          "ENV " + " ".join(f"{k}={v}" for k, v in pairs))

    def _pairs(self, state: State, ins: Instruction) -> list[tuple[str, str]]:
        env = self.env_of(state)
        words = split_words(ins.rest, self.df.escape)
        if words and "=" not in words[0]:
            key, _, value = ins.rest.partition(" ") if " " in ins.rest else ins.rest.partition(
                "\t")
            return [(key, self._expand(value.strip(), env, ins))]
        pairs = []
        for w in words:
            k, eq, v = w.partition("=")
            if not eq:
                raise BuildError(f"{self.df.filename}:{ins.line}: {ins.cmd} names can not be "
                                 f"blank or must have a value: {w!r}")
            pairs.append((self._expand(k, env, ins), self._expand(v, env, ins)))
        return pairs

    def _i_label(self, state: State, ins: Instruction, stage: Stage, label: str,
                 use_cache: bool) -> State:
        pairs = self._pairs(state, ins)

        def change(config: dict[str, Any]) -> None:
            config["Labels"] = {**(config.get("Labels") or {}), **dict(pairs)}

        return self._meta(state, ins, label, use_cache, pairs, change,
                          "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))

    def _i_maintainer(self, state: State, ins: Instruction, stage: Stage, label: str,
                      use_cache: bool) -> State:
        key = chain(state.key, "MAINTAINER", ins.rest)
        hit = self._cached(state, key, label, use_cache)
        return hit or self._commit(state, key, label, f"MAINTAINER {ins.rest}",
                                   author=ins.rest)

    def _simple(self, state: State, ins: Instruction, label: str, use_cache: bool,
                field_name: str, value: Any) -> State:
        def change(config: dict[str, Any]) -> None:
            config[field_name] = value

        return self._meta(state, ins, label, use_cache, value, change,
                          f"{ins.cmd} {ins.rest}")

    def _command(self, state: State, ins: Instruction) -> list[str]:
        if ins.json_args is not None:
            return list(ins.json_args)
        shell = state.config.get("Shell") or DEFAULT_SHELL
        return list(shell) + [ins.rest]

    def _i_cmd(self, state: State, ins: Instruction, stage: Stage, label: str,
               use_cache: bool) -> State:
        new = self._simple(state, ins, label, use_cache, "Cmd", self._command(state, ins))
        new.cmd_set = True
        return new

    def _i_entrypoint(self, state: State, ins: Instruction, stage: Stage, label: str,
                      use_cache: bool) -> State:
        value = self._command(state, ins) if ins.rest else None
        reset = not state.cmd_set

        def change(config: dict[str, Any]) -> None:
            config["Entrypoint"] = value
            if reset:  # a CMD inherited from the base image does not survive ENTRYPOINT
                config["Cmd"] = None

        return self._meta(state, ins, label, use_cache, [value, reset], change,
                          f"ENTRYPOINT {value}")

    def _i_shell(self, state: State, ins: Instruction, stage: Stage, label: str,
                 use_cache: bool) -> State:
        return self._simple(state, ins, label, use_cache, "Shell", list(ins.json_args or ()))

    def _i_user(self, state: State, ins: Instruction, stage: Stage, label: str,
                use_cache: bool) -> State:
        return self._simple(state, ins, label, use_cache, "User",
                            self._expand(ins.rest, self.env_of(state), ins))

    def _i_stopsignal(self, state: State, ins: Instruction, stage: Stage, label: str,
                      use_cache: bool) -> State:
        return self._simple(state, ins, label, use_cache, "StopSignal",
                            self._expand(ins.rest, self.env_of(state), ins))

    def _i_expose(self, state: State, ins: Instruction, stage: Stage, label: str,
                  use_cache: bool) -> State:
        env = self.env_of(state)
        ports: list[str] = []
        for word in split_words(ins.rest, self.df.escape):
            spec = self._expand(word, env, ins)
            port, _, proto = spec.partition("/")
            proto = (proto or "tcp").lower()
            lo, _, hi = port.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()) or proto not in (
                    "tcp", "udp", "sctp"):
                raise BuildError(f"{self.df.filename}:{ins.line}: invalid port {spec!r}")
            ports += [f"{p}/{proto}" for p in range(int(lo), int(hi or lo) + 1)]

        def change(config: dict[str, Any]) -> None:
            config["ExposedPorts"] = {**(config.get("ExposedPorts") or {}),
                                      **{p: {} for p in ports}}

        return self._meta(state, ins, label, use_cache, ports, change,
                          "EXPOSE " + " ".join(ports))

    def _i_volume(self, state: State, ins: Instruction, stage: Stage, label: str,
                  use_cache: bool) -> State:
        env = self.env_of(state)
        raw = list(ins.json_args) if ins.json_args is not None else split_words(
            ins.rest, self.df.escape)
        vols = [self._expand(v, env, ins) for v in raw]
        if any(not v for v in vols):
            raise BuildError(f"{self.df.filename}:{ins.line}: VOLUME specified can not be an "
                             "empty string")

        def change(config: dict[str, Any]) -> None:
            config["Volumes"] = {**(config.get("Volumes") or {}), **{v: {} for v in vols}}

        return self._meta(state, ins, label, use_cache, vols, change, f"VOLUME {vols}")

    def _i_onbuild(self, state: State, ins: Instruction, stage: Stage, label: str,
                   use_cache: bool) -> State:
        trigger = ins.rest

        def change(config: dict[str, Any]) -> None:
            config["OnBuild"] = list(config.get("OnBuild") or []) + [trigger]

        return self._meta(state, ins, label, use_cache, trigger, change, f"ONBUILD {trigger}")

    def _i_healthcheck(self, state: State, ins: Instruction, stage: Stage, label: str,
                       use_cache: bool) -> State:
        from engine.images.importer import duration_ns

        kind, _, rest = ins.rest.partition(" ")
        hc: dict[str, Any]
        if kind.upper() == "NONE":
            hc = {"Test": ["NONE"]}
        else:
            rest = rest.strip()
            exec_form = json_form(rest)
            test = ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", rest]
            hc = {"Test": test}
            names = {"interval": "Interval", "timeout": "Timeout",
                     "start-period": "StartPeriod", "start-interval": "StartInterval"}
            try:
                for flag, key in names.items():
                    if ins.flag(flag):
                        hc[key] = duration_ns(ins.flag(flag) or "")
                if ins.flag("retries"):
                    hc["Retries"] = int(ins.flag("retries") or "0")
            except (ValueError, EngineError) as e:
                raise BuildError(f"{self.df.filename}:{ins.line}: {e}") from None
        return self._simple(state, ins, label, use_cache, "Healthcheck", hc)

    # ------------------------------------------------------------- filesystem steps

    def _i_workdir(self, state: State, ins: Instruction, stage: Stage, label: str,
                   use_cache: bool) -> State:
        path = self._expand(ins.rest, self.env_of(state), ins)
        wd = posixpath.normpath(posixpath.join(state.config.get("WorkingDir") or "/", path))
        key = chain(state.key, "WORKDIR", wd)
        hit = self._cached(state, key, label, use_cache)
        if hit is not None:
            return hit
        config = copy.deepcopy(state.config)
        config["WorkingDir"] = wd
        image = LayeredTree(self.layer_dirs(state.diff_ids))
        diff_id = None
        if image.resolve(wd) is None:
            writer = LayerWriter(self.engine.store.ensure("tmp"))
            try:
                copyops.write_parents(writer, image, copyops.dest_dir_parts(image, wd),
                                      copyops.Owner(), own_last=False)
                diff_id = self._store(writer)
            finally:
                writer.close()
        return self._commit(state, key, label, f"WORKDIR {wd}", config=config,
                            diff_id=diff_id)

    def _owner(self, state: State, ins: Instruction) -> copyops.Owner:
        spec = ins.flag("chown")
        if not spec:
            return copyops.Owner()
        from engine.runtime.user import parse_group, parse_passwd, read_image_file

        spec = self._expand(spec, self.env_of(state), ins)
        user, _, group = spec.partition(":")
        dirs = self.layer_dirs(state.diff_ids)
        uid = _lookup_id(user, [(e.name, e.uid) for e in parse_passwd(
            read_image_file(dirs, "etc/passwd"))], "user", ins, self.df.filename)
        gid = uid if not group else _lookup_id(group, [(g.name, g.gid) for g in parse_group(
            read_image_file(dirs, "etc/group"))], "group", ins, self.df.filename)
        return copyops.Owner(uid, gid)

    def _chmod(self, ins: Instruction) -> int | None:
        spec = ins.flag("chmod")
        if not spec:
            return None
        try:
            value = int(spec, 8)
        except ValueError:
            raise BuildError(f"{self.df.filename}:{ins.line}: invalid chmod parameter "
                             f"{spec!r}: must be octal") from None
        if not 0 <= value <= 0o7777:
            raise BuildError(f"{self.df.filename}:{ins.line}: invalid chmod {spec!r}")
        return value

    def _source_tree(self, state: State, ins: Instruction, stage: Stage) -> tuple[Tree, str]:
        ref = ins.flag("from")
        if not ref:
            return self.context.tree, "build context"
        ref = self._expand(ref, {**self.global_env, **self.env_of(state)}, ins)
        dep = self._stage_ref(ref, stage.index)
        if dep is not None:
            return LayeredTree(self.layer_dirs(self.results[dep.index].diff_ids)), \
                f"stage {ref}"
        if ref in self.extra_contexts:
            return DirTree(self.extra_contexts[ref]), f"context {ref}"
        image = self._image(ref)
        return LayeredTree(self.layer_dirs(list(image.diff_ids))), f"image {ref}"

    def _i_copy(self, state: State, ins: Instruction, stage: Stage, label: str,
                use_cache: bool) -> State:
        env = self.env_of(state)
        words = list(ins.json_args) if ins.json_args is not None else split_words(
            ins.rest, self.df.escape)
        if len(words) < 2:
            raise BuildError(f"{self.df.filename}:{ins.line}: {ins.cmd} requires at least two "
                             "arguments")
        words = [self._expand(w, env, ins) for w in words]
        srcs, dest = words[:-1], words[-1]
        if not dest.startswith("/"):
            dest = posixpath.join(state.config.get("WorkingDir") or "/", dest) + (
                "/" if dest.endswith("/") or dest in (".", "./") else "")
        for unsupported in ("parents", "exclude"):
            if ins.flag(unsupported):
                raise BuildError(f"{self.df.filename}:{ins.line}: {ins.cmd} --{unsupported} "
                                 "is not supported by the built-in builder")
        heredocs = {h.name: h for h in ins.heredocs}
        owner = self._owner(state, ins)
        chmod = self._chmod(ins)
        tree, what = self._source_tree(state, ins, stage)
        items: list[copyops.CopyItem] = []
        inline: list[tuple[str, bytes]] = []
        for src in srcs:
            name = src[2:].lstrip("-").strip("'\"") if src.startswith("<<") else ""
            if name in heredocs:
                h = heredocs[name]
                text = self._expand(h.content, env, ins) if h.expand else h.content
                inline.append((name, text.encode()))
                continue
            if ins.cmd == "ADD" and (src.startswith(("http://", "https://", "git@"))
                                     or src.endswith(".git")):
                raise BuildError(f"{self.df.filename}:{ins.line}: ADD {src}: remote sources "
                                 "need network access, which the built-in builder does "
                                 "not use; download it into the context first")
            for parts in find_sources(tree, src, what):
                items.append(copyops.CopyItem(tree, parts, src))
        multiple = len(items) + len(inline) > 1
        key = chain(state.key, ins.cmd, dest, owner.uid, owner.gid, chmod,
                    copyops.content_digest(items), [(n, c.decode()) for n, c in inline],
                    state.config.get("WorkingDir"))
        hit = self._cached(state, key, label, use_cache)
        if hit is not None:
            return hit
        image = LayeredTree(self.layer_dirs(state.diff_ids))
        writer = LayerWriter(self.engine.store.ensure("tmp"))
        try:
            plain: list[copyops.CopyItem] = []
            for item in items:
                stream = copyops.archive_reader(item.tree, item.parts) \
                    if ins.cmd == "ADD" else None
                if stream is None:
                    plain.append(item)
                    continue
                with stream:
                    copyops.extract(writer, image, stream, dest if dest.endswith("/")
                                    else dest + "/", owner)
            if plain:
                copyops.copy(writer, image, plain, dest, owner, chmod, multiple)
            for name, content in inline:
                copyops.inline_file(writer, image, content, name, dest, owner, chmod)
            diff_id = self._store(writer)
        except EngineError as e:
            if isinstance(e, BuildError):
                raise
            raise BuildError(f"{ins.cmd} failed: {e}") from None
        finally:
            writer.close()
        return self._commit(state, key, label, f"{ins.cmd} {' '.join(words)} # buildkit",
                            diff_id=diff_id)

    _i_add = _i_copy

    def _i_run(self, state: State, ins: Instruction, stage: Stage, label: str,
               use_cache: bool) -> State:
        from engine.build.runner import RunStep, StepContainer
        from engine.runtime.user import resolve_in_layers

        args = self._run_args(state, ins)
        env = {}
        for item in state.config.get("Env") or []:
            k, _, v = item.partition("=")
            env[k] = v
        arg_env = {k: v for k, v in state.args.items() if v is not None and k not in env}
        proxies = {k: v for k, v in self.build_args.items() if k in PROXY_ARGS
                   and k not in env}
        env.setdefault("PATH", DEFAULT_PATH)
        if (ins.flag("security") or "sandbox") != "sandbox":
            raise BuildError(f"{self.df.filename}:{ins.line}: RUN --security="
                             f"{ins.flag('security')} is not allowed by the built-in builder")
        network = (ins.flag("network") or self.spec.network or "default").lower()
        if network not in ("default", "none", "host"):
            raise BuildError(f"{self.df.filename}:{ins.line}: unsupported network mode "
                             f"{network!r} (default, none, host)")
        mounts = [_mount_opts(m) for m in ins.flag_all("mount")]
        key = chain(state.key, "RUN", args, sorted(arg_env.items()), network, mounts)
        hit = self._cached(state, key, label, use_cache)
        if hit is not None:
            return hit
        dirs = self.layer_dirs(state.diff_ids)
        try:
            user = resolve_in_layers(state.config.get("User") or None, (), dirs)
        except EngineError as e:
            raise BuildError(f"{self.df.filename}:{ins.line}: {e}") from None
        env.setdefault("HOME", user.home or "/")
        full_env = {**env, **arg_env, **proxies}
        binds, tmpfs = self._mounts(state, ins, stage, mounts)
        step = RunStep(args=tuple(args), env=tuple(f"{k}={v}" for k, v in full_env.items()),
                       cwd=state.config.get("WorkingDir") or "/", uid=user.uid, gid=user.gid,
                       groups=user.groups, lowerdirs=tuple(str(d) for d in dirs),
                       network="none" if network == "none" else "host", binds=tuple(binds),
                       tmpfs=tuple(tmpfs), extra_hosts=self.spec.extra_hosts,
                       shm_size=self.spec.shm_size)

        def show(line: str) -> None:
            self.report(Progress(id=label, status="LOG", text=line))

        writer = LayerWriter(self.engine.store.ensure("tmp"))
        try:
            with StepContainer(self.engine.store) as ctr:
                code, output = ctr.run(step, show)
                if code != 0:
                    self.report(Progress(id=label, status="ERROR", text=output))
                    cmd = " ".join(args) if ins.json_args is None else str(list(args))
                    raise BuildError(
                        f"failed to solve: process \"{cmd}\" did not complete successfully: "
                        f"exit code: {code}", output)
                diff_upper(ctr.upper, LayeredTree(dirs), writer)
            diff_id = self._store(writer)
        finally:
            writer.close()
        return self._commit(state, key, label, f"RUN {' '.join(args)} # buildkit",
                            diff_id=diff_id)

    def _run_args(self, state: State, ins: Instruction) -> list[str]:
        if ins.json_args is not None:
            return list(ins.json_args)
        shell = list(state.config.get("Shell") or DEFAULT_SHELL)
        if ins.heredocs:
            first = ins.heredocs[0]
            if ins.rest.strip().startswith("<<") and len(ins.rest.split()) == 1:
                return shell + [first.content]
            script = ins.rest + "\n" + "".join(f"{h.content}{h.name}\n" for h in ins.heredocs)
            return shell + [script]
        return shell + [ins.rest]

    def _mounts(self, state: State, ins: Instruction, stage: Stage,
                mounts: list[dict[str, str]]) -> tuple[list[tuple[str, str, bool]], list[str]]:
        binds: list[tuple[str, str, bool]] = []
        tmpfs: list[str] = []
        wd = state.config.get("WorkingDir") or "/"
        for opts in mounts:
            kind = opts.get("type", "bind")
            target = opts.get("target") or opts.get("dst") or opts.get("destination") or ""
            if not target:
                raise BuildError(f"{self.df.filename}:{ins.line}: mount needs a target")
            target = posixpath.join(wd, target)
            if kind == "cache":
                ident = opts.get("id") or target
                binds.append((str(self.cache.mount_dir(ident)), target, False))
            elif kind == "tmpfs":
                tmpfs.append(target)
            elif kind == "bind":
                if opts.get("from"):
                    raise BuildError(f"{self.df.filename}:{ins.line}: RUN --mount=type=bind"
                                     ",from=... is not supported yet; use COPY --from")
                source = opts.get("source") or opts.get("src") or "."
                if not source.startswith("/") and _escapes(source):
                    raise BuildError(f"forbidden path outside the build context: {source}")
                parts = self.context.tree.resolve(source)
                if parts is None:
                    raise BuildError(f"{self.df.filename}:{ins.line}: mount source {source!r} "
                                     "not found in the build context")
                rw = opts.get("rw", opts.get("readwrite", "false")) in ("", "true", "1")
                if rw:
                    raise BuildError(f"{self.df.filename}:{ins.line}: read-write bind mounts "
                                     "are not supported")
                binds.append((str(self.context.root.joinpath(*parts)), target, True))
            else:
                raise BuildError(f"{self.df.filename}:{ins.line}: unsupported mount type "
                                 f"{kind!r} (bind, cache, tmpfs)")
        return binds, tmpfs


def _preload_runtime() -> None:
    """Import what a step's forked monitor uses before stages run in threads: a child
    forked while another thread holds the import lock would block on its first import."""
    import importlib

    for name in ("engine.runtime.monitor", "engine.runtime.launcher",
                 "engine.runtime.rootfs", "engine.runtime.caps", "engine.runtime.cgroups",
                 "engine.runtime.bundle", "engine.runtime.user", "engine.runtime.limits",
                 "engine.runtime.health", "engine.runtime.nsexec", "engine.build.runner"):
        importlib.import_module(name)


def _escapes(path: str) -> bool:
    from engine.build.fstree import escapes

    return escapes(path)


def _mount_opts(text: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        opts[k.strip().lower()] = v.strip() if eq else ""
    return opts


def _lookup_id(ref: str, entries: list[tuple[str, int]], what: str, ins: Instruction,
               filename: str) -> int:
    if ref.isdigit():
        return int(ref)
    for name, ident in entries:
        if name == ref:
            return ident
    raise BuildError(f"{filename}:{ins.line}: unable to find {what} {ref!r} in the image "
                     f"(--chown)")
