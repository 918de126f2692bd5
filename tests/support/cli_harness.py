"""In-process CLI harness for tests: a project directory as cwd with a given engine behind
`pycompose`, and `run_cli` to run a command and collect (exit code, stdout, stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compose.cli.context import Context
from compose.cli.main import main
from engine.api import Engine

# The environment variables that would otherwise pick the project, its files or its output.
COMPOSE_ENV = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PROGRESS",
               "COMPOSE_REMOVE_ORPHANS")


def serve_project(monkeypatch: pytest.MonkeyPatch, project: Path, compose: str,
                  engine: Engine) -> Path:
    """`project` (created if missing) with `compose` as its compose.yaml becomes the cwd,
    COMPOSE_* variables of our environment are hidden, and the CLI uses `engine`."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "compose.yaml").write_text(compose)
    monkeypatch.chdir(project)
    for var in COMPOSE_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(Context, "engine_factory", lambda: engine)
    return project


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`pycompose ARGV` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
