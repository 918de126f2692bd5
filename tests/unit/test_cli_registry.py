"""`pycompose pull|push` choices (skips, dependencies, failures) on the in-memory engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_harness import run_cli, serve_project
from tests.support.memengine import MemEngine

COMPOSE = """\
services:
  web:
    image: registry.example/web:1
    build: .
    depends_on: [db]
  db:
    image: postgres:16
  cache:
    image: redis:7
    pull_policy: never
  tool:
    build: .
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemEngine]:
    mem = MemEngine()
    serve_project(monkeypatch, tmp_path / "demo", COMPOSE, mem)
    yield mem


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--progress", "plain", *argv)


def pulled(engine: MemEngine) -> list[str]:
    return sorted(ref for call, ref in engine.calls if call == "image_pull")


def test_pull_skips_and_warns_for_buildable(engine: MemEngine,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    engine.pullable = {"postgres:16"}
    code, _, err = cli(capsys, "pull")
    assert code == 0, err
    assert pulled(engine) == ["postgres:16", "registry.example/web:1"]
    assert " db  Pulled" in err
    assert " cache  Skipped - No image to be pulled" in err
    assert " tool  Skipped - No image to be pulled" in err
    assert "WARN[0000] web: pull access denied" in err  # buildable: only a warning


def test_pull_failure_exits_1_unless_ignored(engine: MemEngine,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "pull", "db")
    assert code == 1 and err.strip().splitlines()[-1].startswith("pull access denied")
    code, _, err = cli(capsys, "pull", "--ignore-pull-failures", "db")
    assert code == 0 and "WARN[0000] db: pull access denied" in err


def test_pull_include_deps_and_policy_missing(engine: MemEngine,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    engine.pullable = {"postgres:16", "registry.example/web:1"}
    engine.add_image("postgres:16")
    code, _, err = cli(capsys, "pull", "--policy", "missing", "--include-deps", "web")
    assert code == 0, err
    assert pulled(engine) == ["registry.example/web:1"]
    assert " db  Skipped - Image is already present locally" in err
    code, _, err = cli(capsys, "pull", "-q", "web")
    assert code == 0 and err == ""
    assert pulled(engine) == ["registry.example/web:1"] * 2


def test_push_only_services_with_build_and_image(engine: MemEngine,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    engine.add_image("registry.example/web:1")
    code, _, err = cli(capsys, "push")
    assert code == 0, err
    assert " web  Pushed" in err
    assert " db  Skipped" in err and " tool  Skipped" in err
    engine.image_remove("registry.example/web:1")
    code, _, err = cli(capsys, "push", "web")
    assert code == 1 and "registry.example/web:1" in err
