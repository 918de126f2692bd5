"""`.dockerignore` patterns (moby/patternmatcher rules) and COPY source lookup in a context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.api import BuildError
from engine.build.context import BuildContext, find_sources, parse_ignore


def excluded(patterns: str, path: str) -> bool:
    return parse_ignore(patterns).excluded(path)


@pytest.mark.parametrize(("patterns", "path", "expected"), [
    (".git", ".git/config", True),           # a parent matching excludes children
    ("*.log", "a.log", True),
    ("*.log", "sub/a.log", False),           # * does not cross /
    ("**/*.log", "sub/deep/a.log", True),
    ("**/*.log", "a.log", True),
    ("*.log\n!keep.log", "keep.log", False),  # exception
    ("!keep.log\n*.log", "keep.log", True),   # last match wins
    ("/abs", "abs", True),                     # leading / is ignored
    ("./x/../y", "y", True),                   # patterns are cleaned
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[a-c]x", "bx", True),
    ("[!a]x", "ax", False),
    ("# comment\n\n  spaced.txt  ", "spaced.txt", True),
    ("docs\n!docs/keep.md", "docs/keep.md", False),
    ("node_modules/**", "node_modules/x/y", True),
])
def test_patterns(patterns: str, path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "etc").mkdir(parents=True)
    (ctx / "ok.txt").write_text("ok")
    (ctx / "secret.txt").write_text("secret")
    (ctx / "etc" / "hostname").write_text("ctx-etc-hostname")
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink("/etc/hostname", ctx / "abs_link")
    os.symlink("../outside.txt", ctx / "rel_escape")
    os.symlink("/etc", ctx / "abs_dir")
    (ctx / ".dockerignore").write_text("secret.txt\n")
    return ctx


def test_sources_resolve_inside_the_context(context: Path) -> None:
    tree = BuildContext(context).tree
    assert find_sources(tree, "ok.txt") == [["ok.txt"]]
    assert find_sources(tree, "abs_link") == [["etc", "hostname"]]  # scoped, not the host's
    assert find_sources(tree, "abs_dir/hostname") == [["etc", "hostname"]]
    assert find_sources(tree, "/ok.txt") == [["ok.txt"]]
    assert find_sources(tree, ".dockerignore") == [[".dockerignore"]]
    assert sorted(find_sources(tree, "*.txt")) == [["ok.txt"]]


@pytest.mark.parametrize(("src", "message"), [
    ("../outside.txt", "forbidden path outside the build context: ../outside.txt"),
    ("a/../../x", "forbidden path outside the build context"),
    ("rel_escape", "not found"),
    ("secret.txt", "excluded by .dockerignore"),
    ("nothing*", "no source files were specified"),
])
def test_sources_refused(context: Path, src: str, message: str) -> None:
    with pytest.raises(BuildError) as err:
        find_sources(BuildContext(context).tree, src)
    assert message in str(err.value)


def test_dockerfile_specific_ignore_file(context: Path) -> None:
    (context / "Dockerfile.dockerignore").write_text("ok.txt\n")
    ctx = BuildContext(context, str(context / "Dockerfile"))
    with pytest.raises(BuildError):
        find_sources(ctx.tree, "ok.txt")
    assert find_sources(ctx.tree, "secret.txt") == [["secret.txt"]]


def test_dockerignore_can_exclude_itself(context: Path) -> None:
    (context / ".dockerignore").write_text(".dockerignore\n")
    with pytest.raises(BuildError):
        find_sources(BuildContext(context).tree, ".dockerignore")
