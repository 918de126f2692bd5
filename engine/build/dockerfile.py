"""The Dockerfile parser: directives, comments, continuations, heredocs, exec/shell forms,
flags, and the split into stages. Variable substitution happens later, in the executor,
because its values depend on the stage being built (see words.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.api import BuildError

INSTRUCTIONS = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                "HEALTHCHECK", "SHELL")
FLAGS: dict[str, tuple[str, ...]] = {
    "FROM": ("platform",),
    "RUN": ("mount", "network", "security"),
    "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "link", "keep-git-dir", "checksum", "exclude"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}
BOOL_FLAGS = ("link", "parents", "keep-git-dir")
DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
HEREDOC_RE = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # False when the delimiter was quoted


@dataclass(frozen=True)
class Instruction:
    cmd: str  # upper case
    line: int  # 1-based line of the instruction's first line
    rest: str  # the arguments after the flags, continuations joined
    flags: tuple[tuple[str, str], ...] = ()
    json_args: tuple[str, ...] | None = None  # exec (JSON) form
    heredocs: tuple[Heredoc, ...] = ()
    source: str = ""  # the instruction as written (for history and progress)

    def flag(self, name: str, default: str | None = None) -> str | None:
        values = self.flag_all(name)
        return values[-1] if values else default

    def flag_all(self, name: str) -> list[str]:
        return [v for k, v in self.flags if k == name]


@dataclass
class Stage:
    index: int
    name: str | None  # lower-cased `AS name`
    base: str  # FROM argument, not yet expanded
    platform: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass
class Dockerfile:
    directives: dict[str, str]
    escape: str
    global_args: list[Instruction]
    stages: list[Stage]
    filename: str = "Dockerfile"

    def stage_by_ref(self, ref: str, before: int | None = None) -> Stage | None:
        """The stage named `ref` (case-insensitive) or with index `ref`."""
        limit = len(self.stages) if before is None else before
        for st in self.stages[:limit]:
            if st.name is not None and st.name == ref.lower():
                return st
        if ref.isdigit() and int(ref) < limit:
            return self.stages[int(ref)]
        return None


def fail(filename: str, line: int, message: str) -> BuildError:
    return BuildError(f"{filename}:{line}: {message}")


def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text; raises BuildError `Dockerfile:LINE: ...` when malformed."""
    lines = text.replace("\r\n", "\n").split("\n")
    directives, start = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise fail(filename, 1, f"invalid escape token '{escape}' does not validate")
    instructions = list(_instructions(lines, start, escape, filename))
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for ins in instructions:
        if ins.cmd == "FROM":
            stages.append(_stage(ins, len(stages), filename, stages))
        elif not stages:
            if ins.cmd != "ARG":
                raise fail(filename, ins.line, f"{ins.cmd} instruction before the first FROM "
                           "(no build stage in current context)")
            global_args.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise fail(filename, max(1, len(lines)), "the Dockerfile has no FROM instruction "
                   "(file with no instructions)")
    return Dockerfile(directives, escape, global_args, stages, filename)


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = DIRECTIVE_RE.match(line.strip())
        if not m or m.group(1).lower() in found:
            return found, i
        found[m.group(1).lower()] = m.group(2)
    return found, len(lines)


def _instructions(lines: list[str], start: int, escape: str,
                  filename: str) -> Iterator[Instruction]:
    i = start
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i
        parts: list[str] = []
        while True:
            body = lines[i].rstrip()
            if body.endswith(escape):
                parts.append(body[:-1])
                i += 1
                while i < len(lines) and (not lines[i].strip()
                                          or lines[i].strip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                continue
            parts.append(body)
            i += 1
            break
        joined = "".join(parts).strip()
        ins, i = _instruction(joined, first + 1, lines, i, filename)
        yield ins


def _instruction(text: str, line: int, lines: list[str], i: int,
                 filename: str) -> tuple[Instruction, int]:
    word, _, rest = text.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest
    cmd = word.upper()
    if cmd not in INSTRUCTIONS:
        raise fail(filename, line, f"unknown instruction: {word}")
    rest = rest.strip()
    flags: list[tuple[str, str]] = []
    if cmd in FLAGS or cmd == "ONBUILD":
        allowed = FLAGS.get(cmd, ())
        while rest.startswith("--"):
            token, _, after = rest.partition(" ")
            name, eq, value = token[2:].partition("=")
            if name not in allowed:
                raise fail(filename, line, f"unknown flag: --{name}")
            if not eq:
                if name not in BOOL_FLAGS:
                    raise fail(filename, line, f"flag --{name} needs a value (--{name}=...)")
                value = "true"
            flags.append((name, value))
            rest = after.strip()
    heredocs: list[Heredoc] = []
    if cmd in ("RUN", "COPY", "ADD"):
        for m in HEREDOC_RE.finditer(rest):
            content, i = _heredoc_body(lines, i, m.group(3), bool(m.group(1)), filename, line)
            heredocs.append(Heredoc(m.group(3), content, expand=not m.group(2)))
    json_args = json_form(rest) if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "VOLUME",
                                            "COPY", "ADD", "HEALTHCHECK") else None
    ins = Instruction(cmd=cmd, line=line, rest=rest, flags=tuple(flags),
                      json_args=json_args, heredocs=tuple(heredocs), source=text)
    _check_arguments(ins, filename)
    return ins, i


def _heredoc_body(lines: list[str], i: int, name: str, strip_tabs: bool, filename: str,
                  line: int) -> tuple[str, int]:
    body: list[str] = []
    while i < len(lines):
        current = lines[i].lstrip("\t") if strip_tabs else lines[i]
        i += 1
        if current == name:
            return "".join(b + "\n" for b in body), i
        body.append(current)
    raise fail(filename, line, f"unterminated heredoc {name}")


def json_form(rest: str) -> tuple[str, ...] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _check_arguments(ins: Instruction, filename: str) -> None:
    cmd, rest = ins.cmd, ins.rest
    if cmd in ("ONBUILD",):
        inner = rest.split(None, 1)[0].upper() if rest else ""
        if not inner:
            raise fail(filename, ins.line, "ONBUILD requires at least one argument")
        if inner in ("ONBUILD", "FROM", "MAINTAINER"):
            raise fail(filename, ins.line, f"{inner} isn't allowed as an ONBUILD trigger")
        return
    if not rest and cmd not in ("CMD", "ENTRYPOINT", "RUN"):
        raise fail(filename, ins.line, f"{cmd} requires at least one argument")
    if cmd == "RUN" and not rest:
        raise fail(filename, ins.line, "RUN requires at least one argument")
    if cmd in ("COPY", "ADD") and ins.json_args is None and not ins.heredocs and len(
            rest.split()) < 2:
        raise fail(filename, ins.line, f"{cmd} requires at least two arguments, "
                   "but only one was provided. Destination could not be determined")
    if cmd == "SHELL" and not ins.json_args:
        raise fail(filename, ins.line, "SHELL requires the arguments to be in JSON form")
    if cmd == "ENV" and "=" not in rest.split()[0] and len(rest.split(None, 1)) < 2:
        raise fail(filename, ins.line, "ENV must have two arguments")
    if cmd in ("USER", "WORKDIR", "STOPSIGNAL") and len(rest.split()) > 1 and cmd != "WORKDIR":
        raise fail(filename, ins.line, f"{cmd} requires exactly one argument")
    if cmd == "HEALTHCHECK":
        kind = rest.split(None, 1)[0].upper()
        if kind not in ("CMD", "NONE"):
            raise fail(filename, ins.line, "Unknown type in HEALTHCHECK (try CMD)")
        if kind == "NONE" and len(rest.split()) > 1:
            raise fail(filename, ins.line, "HEALTHCHECK NONE takes no arguments")


def _stage(ins: Instruction, index: int, filename: str, earlier: list[Stage]) -> Stage:
    words = ins.rest.split()
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise fail(filename, ins.line, "FROM requires either one or three arguments")
    name = words[2].lower() if len(words) == 3 else None
    if name is not None:
        if not re.match(r"^[a-z][a-z0-9-_.]*$", name):
            raise fail(filename, ins.line, f"invalid name for build stage: {words[2]!r}, name "
                       "can't start with a number or contain symbols")
        if any(s.name == name for s in earlier):
            raise fail(filename, ins.line, f"duplicate stage name {name!r}")
    return Stage(index=index, name=name, base=words[0], platform=ins.flag("platform"),
                 line=ins.line)


def parse_onbuild(trigger: str, line: int, filename: str) -> Instruction:
    """One ONBUILD trigger (the text after ONBUILD) as an instruction."""
    ins, _ = _instruction(trigger.strip(), line, [], 0, filename)
    return ins
