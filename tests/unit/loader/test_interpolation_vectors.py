"""Every vector of conformance/interpolation.json, run in-process through the loader core.

Each template is written into a compose file exactly as the corpus says (placement),
parsed by `parse_yaml`, and interpolated by `interpolate_tree` with the environment that
`discover` builds (OS env + PWD + COMPOSE_PROJECT_NAME from `-p interp`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compose.errors import InterpolationError
from compose.loader.discover import discover, interpolation_environment, resolve_project_name
from compose.loader.environment import environment_mapping, resolve_environment
from compose.loader.interpolate import interpolate_tree
from compose.loader.yamlload import parse_yaml
from tests.support.corpus import CONFORMANCE

CORPUS = CONFORMANCE / "interpolation.json"
VECTORS: list[dict[str, Any]] = json.loads(CORPUS.read_text())["vectors"]
PATH_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/pcconf-home"}


def _quoted(text: str) -> str:
    if any(ord(c) < 32 for c in text):
        return json.dumps(text, ensure_ascii=False)
    return "'" + text.replace("'", "''") + "'"


def _compose_text(template: str, placement: str) -> str:
    entry = {
        "value": f"V: {_quoted(template)}",
        "key": f"{_quoted(template)}: v",
        "list": f"- {_quoted('V=' + template)}",
        "list_raw": f"- {_quoted(template)}",
    }[placement]
    return f"services:\n  s:\n    image: x\n    environment:\n      {entry}\n"


def _run(vector: dict[str, Any], directory: Path) -> tuple[Any, list[str]]:
    placement = vector.get("placement", "value")
    compose = directory / "compose.yaml"
    compose.write_text(_compose_text(vector["template"], placement), encoding="utf-8")
    warnings: list[str] = []
    found = discover(workdir=str(directory), environ={**PATH_ENV, **vector["env"]},
                     project_name="interp", warn=warnings.append)
    env = interpolation_environment(found, resolve_project_name(found, []))
    tree, source = parse_yaml(compose.read_text(encoding="utf-8"), str(compose))
    tree = interpolate_tree(tree, env, source=source, warn=warnings.append)
    environment = tree["services"]["s"]["environment"]
    if placement == "value":
        return environment["V"], warnings
    if placement == "key":
        (key,) = environment.keys()
        return key, warnings
    mapping = resolve_environment(environment_mapping(environment), env.get)
    if placement == "list":
        return mapping["V"], warnings
    return mapping, warnings


def _substitute_case_dir(value: Any, directory: Path) -> Any:
    if isinstance(value, str):
        return value.replace("${CASE_DIR}", str(directory))
    return value


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_interpolation_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    if "expected_error" in vector:
        with pytest.raises(InterpolationError) as caught:
            _run(vector, tmp_path)
        error = caught.value
        expected = vector["expected_error"]
        assert error.file == str(tmp_path / "compose.yaml") and error.line == 5
        assert str(error).startswith(f"{tmp_path / 'compose.yaml'}:5:")
        if expected.startswith("invalid interpolation format"):
            # The oracle's three lines become one: the path, the template, the hint.
            template = expected.split("You may need to escape any $ with another $.\n", 1)[1]
            assert error.message == (
                "invalid interpolation format for services.s.environment.V: "
                f"{json.dumps(template, ensure_ascii=False)} "
                "(you may need to escape any $ with another $)")
            assert "\n" not in str(error)
        else:
            assert error.message == expected
        return
    value, warnings = _run(vector, tmp_path)
    assert value == _substitute_case_dir(vector["expected"], tmp_path)
    assert warnings == vector.get("warnings", [])


def test_corpus_is_complete() -> None:
    assert len(VECTORS) == 157
