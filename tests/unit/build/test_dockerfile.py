"""The Dockerfile parser and Docker's word/variable rules (no root needed)."""

from __future__ import annotations

import pytest

from engine.api import BuildError
from engine.build.dockerfile import parse
from engine.build.words import WordError, expand, split_words


def test_directives_comments_continuations_and_forms() -> None:
    df = parse("# syntax=docker/dockerfile:1\n"
               "# escape=\\\n"
               "ARG BASE=busybox\n"
               "FROM $BASE AS Build\n"
               "# a comment\n"
               "RUN echo a \\\n"
               "  # comment inside a continuation\n"
               "\n"
               "  && echo b\n"
               'CMD ["sh", "-c", "echo hi"]\n'
               "ENTRYPOINT echo shell form\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    assert [a.rest for a in df.global_args] == ["BASE=busybox"]
    stage = df.stages[0]
    assert (stage.name, stage.base, stage.line) == ("build", "$BASE", 4)
    run, cmd, entry = stage.instructions
    assert (run.cmd, run.line, run.rest) == ("RUN", 6, "echo a   && echo b")
    assert cmd.json_args == ("sh", "-c", "echo hi")
    assert entry.json_args is None and entry.rest == "echo shell form"


def test_backtick_escape_directive() -> None:
    df = parse("# escape=`\nFROM scratch\nLABEL a=1 `\n  b=2\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].rest == "a=1   b=2"


def test_directive_only_at_top() -> None:
    df = parse("FROM scratch\n# escape=`\nLABEL a=1 \\\n b=2\n")
    assert df.escape == "\\" and df.directives == {}
    assert df.stages[0].instructions[0].rest == "a=1  b=2"


def test_heredoc_and_flags() -> None:
    df = parse("FROM scratch\n"
               "RUN --mount=type=cache,target=/c --network=none <<EOF\n"
               "echo one\n"
               "echo $X\n"
               "EOF\n"
               "COPY --from=0 --chown=1:2 --chmod=640 --link a b /d/\n"
               "COPY <<-'END' /f\n"
               "\tliteral $X\n"
               "\tEND\n")
    run, cp, inline = df.stages[0].instructions
    assert run.flag_all("mount") == ["type=cache,target=/c"] and run.flag("network") == "none"
    assert run.heredocs[0].content == "echo one\necho $X\n" and run.heredocs[0].expand
    assert cp.flag("from") == "0" and cp.flag("chown") == "1:2" and cp.flag("link") == "true"
    assert inline.heredocs[0].content == "literal $X\n" and not inline.heredocs[0].expand


def test_stages_by_name_and_index() -> None:
    df = parse("FROM busybox AS one\nFROM one AS two\nFROM scratch\n")
    assert df.stage_by_ref("ONE") is df.stages[0]
    assert df.stage_by_ref("1") is df.stages[1]
    assert df.stage_by_ref("two", before=1) is None
    assert df.stages[2].label == "stage-2"


@pytest.mark.parametrize(("text", "message"), [
    ("FROM scratch\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
    ("RUN echo\nFROM scratch\n", "Dockerfile:1: RUN instruction before the first FROM"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM scratch\nCOPY onlyone\n", "Dockerfile:2: COPY requires at least two arguments"),
    ("FROM scratch\nCOPY --bogus=1 a b\n", "Dockerfile:2: unknown flag: --bogus"),
    ("FROM scratch\nSHELL /bin/bash\n", "Dockerfile:2: SHELL requires the arguments to be in"),
    ("FROM scratch\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc EOF"),
    ("FROM scratch\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
    ("FROM scratch\nHEALTHCHECK BOGUS x\n", "Dockerfile:2: Unknown type in HEALTHCHECK"),
    ("FROM scratch\nONBUILD FROM x\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD"),
    ("FROM a AS x\nFROM b AS x\n", "Dockerfile:2: duplicate stage name"),
    ("# only a comment\n", "has no FROM instruction"),
])
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(BuildError) as err:
        parse(text)
    assert message in str(err.value)


def test_expand_rules() -> None:
    env = {"A": "x", "EMPTY": ""}
    assert expand("$A-${A}-${B:-dflt}-${EMPTY:-e}-${EMPTY-e}", env) == "x-x-dflt-e-"
    assert expand("${A:+set}${B:+set}${EMPTY+set}", env) == "setset"
    assert expand("'$A' \"$A\" \\$A", env) == "$A x $A"
    assert expand("${B:-${A}y}", env) == "xy"
    with pytest.raises(WordError):
        expand("${B:?is required}", env)
    with pytest.raises(WordError):
        expand("'open", env)


def test_split_words_keeps_quotes() -> None:
    assert split_words('a=1 b="two words" c=\'x y\'') == ['a=1', 'b="two words"', "c='x y'"]
