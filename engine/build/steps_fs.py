"""The instructions that change files: WORKDIR (creates a missing directory), COPY and
ADD (copyops.py), and RUN (a step container, runner.py) with its `--mount`s (bind from
the context, a stage or an image; cache; tmpfs)."""

from __future__ import annotations

import copy
import posixpath
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from engine.api import BuildError, EngineError, Progress
from engine.build import copyops
from engine.build.cache import chain
from engine.build.context import find_sources
from engine.build.dockerfile import Instruction, Stage
from engine.build.fstree import DirTree, LayeredTree, Tree
from engine.build.layertar import LayerWriter, diff_upper
from engine.build.state import DEFAULT_PATH, DEFAULT_SHELL, PROXY_ARGS, State, StepBase
from engine.build.words import split_words


class FilesystemSteps(StepBase):
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
            writer = LayerWriter(self.engine.store.ensure("build-cache", "tmp"))
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
            if dep.index not in self.results:
                raise BuildError(f"{self.df.filename}:{ins.line}: --from={ref}: the stage is "
                                 "named through a stage-local variable; use a global ARG")
            return LayeredTree(self.layer_dirs(self.results[dep.index].diff_ids)), \
                f"stage {ref}"
        if ref in self.extra_contexts:
            where = self.extra_contexts[ref]
            if where.startswith("docker-image://"):
                ref = where.removeprefix("docker-image://")
            elif "://" in where or where.startswith("service:"):
                raise BuildError(f"additional context {ref}={where}: only local directories "
                                 "and docker-image:// are supported")
            else:
                return DirTree(where), f"context {ref}"
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
        writer = LayerWriter(self.engine.store.ensure("build-cache", "tmp"))
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
        mounts = [mount_opts(m) for m in ins.flag_all("mount")]
        planned = self._mounts(state, ins, stage, mounts)
        key = chain(state.key, "RUN", args, sorted(arg_env.items()), network, mounts,
                    [m.digest() for m in planned])
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
        scratch: list[Path] = []

        def show(line: str) -> None:
            self.report(Progress(id=label, status="LOG", text=line))

        writer = LayerWriter(self.engine.store.ensure("build-cache", "tmp"))
        try:
            binds = [(m.host if m.kind == "cache" else self._materialize(m, scratch),
                      m.target, m.read_only and m.kind == "bind")
                     for m in planned if m.kind != "tmpfs"]
            step = RunStep(
                args=tuple(args), env=tuple(f"{k}={v}" for k, v in full_env.items()),
                cwd=state.config.get("WorkingDir") or "/", uid=user.uid, gid=user.gid,
                groups=user.groups, lowerdirs=tuple(str(d) for d in dirs),
                network="none" if network == "none" else "host", binds=tuple(binds),
                tmpfs=tuple(m.target for m in planned if m.kind == "tmpfs"),
                extra_hosts=self.spec.extra_hosts, shm_size=self.spec.shm_size)
            with StepContainer(self.engine.store) as ctr:
                code, output = ctr.run(step, show)
                if code != 0:
                    self.report(Progress(id=label, status="ERROR", text=output))
                    cmd = " ".join(args) if ins.json_args is None else str(list(args))
                    raise BuildError(
                        f"failed to solve: process \"{cmd}\" did not complete successfully: "
                        f"exit code: {code}", output)
                diff_upper(ctr.upper, LayeredTree(dirs), writer,
                           tuple(m.target for m in planned))
            diff_id = self._store(writer)
        finally:
            writer.close()
            for tmp in scratch:
                shutil.rmtree(tmp, ignore_errors=True)
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
                mounts: list[dict[str, str]]) -> list[Mount]:
        """The step's mounts; bind sources are located (not yet copied) here."""
        out: list[Mount] = []
        wd = state.config.get("WorkingDir") or "/"
        for opts in mounts:
            kind = opts.get("type", "bind")
            target = opts.get("target") or opts.get("dst") or opts.get("destination") or ""
            if not target:
                raise BuildError(f"{self.df.filename}:{ins.line}: mount needs a target")
            target = posixpath.join(wd, target)
            if kind == "cache":
                ident = opts.get("id") or target
                out.append(Mount("cache", target, host=str(self.cache.mount_dir(ident))))
            elif kind == "tmpfs":
                out.append(Mount("tmpfs", target))
            elif kind == "bind":
                source = opts.get("source") or opts.get("src") or "/"
                tree, what = self._mount_tree(state, ins, stage, opts.get("from"))
                if what == "build context" and not source.startswith("/") and \
                        _escapes(source):
                    raise BuildError(f"forbidden path outside the build context: {source}")
                parts = tree.resolve(source)
                if parts is None:
                    raise BuildError(f"{self.df.filename}:{ins.line}: mount source "
                                     f"{source!r} not found in the {what}")
                rw = opts.get("rw", opts.get("readwrite", "false")) in ("", "true", "1")
                out.append(Mount("bind", target, tree=tree, parts=parts, copy=rw or
                                 what != "build context", read_only=not rw))
            else:
                raise BuildError(f"{self.df.filename}:{ins.line}: unsupported mount type "
                                 f"{kind!r} (bind, cache, tmpfs)")
        return out

    def _mount_tree(self, state: State, ins: Instruction, stage: Stage,
                    ref: str | None) -> tuple[Tree, str]:
        if not ref:
            return self.context.tree, "build context"
        fake = Instruction(cmd="COPY", line=ins.line, rest="", flags=(("from", ref),))
        return self._source_tree(state, fake, stage)

    def _materialize(self, mount: Mount, scratch: list[Path]) -> str:
        """A host path holding the mount's source: the context path itself, or a copy."""
        import tempfile

        from engine.images.unpack import unpack_stream

        assert mount.tree is not None
        if not mount.copy and isinstance(mount.tree, DirTree):
            return str(mount.tree.root.joinpath(*mount.parts))
        tmp = Path(tempfile.mkdtemp(prefix="mount-", dir=self.engine.store.ensure("build-cache", "tmp")))
        scratch.append(tmp)
        writer = LayerWriter(tmp.parent)
        try:
            st = mount.tree.lstat(mount.parts)
            is_dir = st is not None and stat.S_ISDIR(st.st_mode)
            names = mount.tree.listdir(mount.parts) if is_dir else [mount.parts[-1]]
            for name in names:
                src = mount.parts + [name] if is_dir else mount.parts
                copyops.copy_tree(writer, mount.tree, src, [name], copyops.Owner(), None)
            unpack_stream(writer.finish(), tmp)
        finally:
            writer.close()
        return str(tmp) if is_dir else str(tmp / names[0])



@dataclass
class Mount:
    """One `RUN --mount`: a cache dir, a tmpfs, or a bind of a tree's path."""

    kind: str
    target: str
    host: str = ""
    tree: Tree | None = None
    parts: list[str] = field(default_factory=list)
    copy: bool = False
    read_only: bool = True

    def digest(self) -> str:
        if self.tree is None:
            return ""
        return copyops.content_digest([copyops.CopyItem(self.tree, self.parts, "")])


def _escapes(path: str) -> bool:
    from engine.build.fstree import escapes

    return escapes(path)


def mount_opts(text: str) -> dict[str, str]:
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
