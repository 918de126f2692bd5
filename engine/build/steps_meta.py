"""The metadata-only instructions (ARG, ENV, LABEL, MAINTAINER, CMD, ENTRYPOINT, SHELL,
USER, STOPSIGNAL, EXPOSE, VOLUME, ONBUILD, HEALTHCHECK): each changes only the image
config and adds an empty-layer history entry."""

from __future__ import annotations

from typing import Any

from engine.api import BuildError, EngineError, Progress
from engine.build.cache import chain
from engine.build.dockerfile import Instruction, Stage, json_form
from engine.build.state import DEFAULT_SHELL, State, StepBase
from engine.build.words import split_words


class MetadataSteps(StepBase):
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
            else:  # a global ARG (or platform arg) re-declared in the stage: its value
                value = self.global_env.get(name)
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
