"""Every vector of conformance/dotenv.json, both readings, against environment.py.

`expected`: the text is the project's `.env`; `project_environment` gives the
interpolation environment (the OS value wins for keys the OS also sets).
`as_env_file`: the same text is a service's `env_file: [vars.env]` (no `.env`);
`service_environment` gives the container environment.

Documented deviation (all error vectors): compose-go counts lines only after values and
bare keys, so it says `line 2` for an unterminated quote opened on line 1; pycompose
reports the line where the statement starts, as `file:line:` in front of the message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compose.errors import LoadError
from compose.loader.discover import discover
from compose.loader.environment import EnvFileRef, project_environment, service_environment
from tests.support.corpus import CONFORMANCE

CORPUS = CONFORMANCE / "dotenv.json"
VECTORS: list[dict[str, Any]] = json.loads(CORPUS.read_text())["vectors"]
PATH_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/pcconf-home"}
IDS = [v["id"] for v in VECTORS]


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _error_tail(expected: str, filename: str) -> str:
    """The oracle's message without `failed to read <file>: ` and `line N: `."""
    tail = expected.split(f"/{filename}: ", 1)[1]
    if tail.startswith("line "):
        tail = tail.split(": ", 1)[1]
    return tail


def _defined(result: dict[str, str], vector: dict[str, Any]) -> dict[str, str]:
    """The keys the file defines (plus `keys`), as interpolation sees them."""
    os_env = vector.get("os_env", {})
    wanted = set(vector.get("expected", {})) | set(vector.get("keys", []))
    return {k: v for k, v in result.items()
            if k in wanted or (k not in os_env and k not in PATH_ENV and k != "PWD")}


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_dotenv_as_project_env(vector: dict[str, Any], tmp_path: Path) -> None:
    _write(tmp_path / ".env", vector["env_file_text"])
    os_env = {**PATH_ENV, **vector.get("os_env", {})}
    if "expected_error" in vector:
        with pytest.raises(LoadError) as caught:
            project_environment(os_env, str(tmp_path))
        assert caught.value.file == str(tmp_path / ".env")
        assert caught.value.line is not None
        assert caught.value.message == _error_tail(vector["expected_error"], ".env")
        return
    result = project_environment(os_env, str(tmp_path))
    assert _defined(result, vector) == vector["expected"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_dotenv_through_discover(vector: dict[str, Any], tmp_path: Path) -> None:
    """The same `.env`, found by `discover` next to compose.yaml."""
    _write(tmp_path / ".env", vector["env_file_text"])
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    os_env = {**PATH_ENV, **vector.get("os_env", {})}
    if "expected_error" in vector:
        with pytest.raises(LoadError):
            discover(workdir=str(tmp_path), environ=os_env)
        return
    found = discover(workdir=str(tmp_path), environ=os_env)
    assert _defined(found.environment, vector) == vector["expected"]
    assert found.env_files == (str(tmp_path / ".env"),)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_dotenv_as_service_env_file(vector: dict[str, Any], tmp_path: Path) -> None:
    _write(tmp_path / "vars.env", vector["env_file_text"])
    project_env = {**PATH_ENV, **vector.get("os_env", {})}
    refs = [EnvFileRef(str(tmp_path / "vars.env"))]
    wanted = vector["as_env_file"]
    if "expected_error" in wanted:
        with pytest.raises(LoadError) as caught:
            service_environment(None, refs, project_env)
        assert caught.value.file == str(tmp_path / "vars.env")
        assert caught.value.message == _error_tail(wanted["expected_error"], "vars.env")
        return
    assert service_environment(None, refs, project_env) == wanted["expected"]


def test_corpus_is_complete() -> None:
    assert len(VECTORS) == 80
