"""What the build steps share: a stage's `State` (config, layers, history, cache key),
the constants of Docker's build environment, and `StepBase`, the executor's common
helpers (variable expansion, cache lookup and commit, layer storing)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import BuildError, BuildSpec, EngineError, NotFound, Progress
from engine.build.cache import BuildCache, chain
from engine.build.context import BuildContext
from engine.build.dockerfile import Dockerfile, Instruction, Stage
from engine.build.layertar import LayerWriter
from engine.build.words import WordError, expand

DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
PLATFORM_ARGS = {"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64",
                 "TARGETVARIANT": "", "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux",
                 "BUILDARCH": "amd64", "BUILDVARIANT": ""}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


class StepBase:
    """Helpers every instruction handler uses; the attributes are set by Executor."""

    engine: Any
    spec: BuildSpec
    df: Dockerfile
    context: BuildContext
    report: Callable[[Progress], None]
    build_args: dict[str, str]
    cache: BuildCache
    results: dict[int, State]
    global_env: dict[str, str]
    extra_contexts: dict[str, str]

    def _expand(self, text: str, env: dict[str, str], ins: Instruction | None = None) -> str:
        try:
            return expand(text, env, self.df.escape)
        except WordError as e:
            line = ins.line if ins is not None else 0
            raise BuildError(f"{self.df.filename}:{line}: {e}") from None

    def _stage_ref(self, ref: str, before: int) -> Stage | None:
        return self.df.stage_by_ref(ref, before)

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
