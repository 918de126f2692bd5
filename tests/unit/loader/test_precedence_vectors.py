"""Every vector of conformance/precedence.json, through the whole pipeline in-process.

Each vector's files are written under a temporary directory, its flags are mapped to
`LoadOptions`, and `compose.loader.load` runs with the vector's environment (on top of
PATH and HOME, as the oracle ran). Observed JSON pointers are read from `data` (what
`config --format json` prints) with every `$` doubled, as the renderer writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compose.errors import ComposeError
from compose.loader import LoadOptions, load
from tests.support.corpus import CONFORMANCE

CORPUS = CONFORMANCE / "precedence.json"
VECTORS: list[dict[str, Any]] = json.loads(CORPUS.read_text())["vectors"]
PATH_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/pcconf-home"}
FLAGS = {"-p": "project_name", "--project-name": "project_name", "-f": "files",
         "--file": "files", "--env-file": "env_files", "--profile": "profiles",
         "--project-directory": "project_directory"}


def _options(vector: dict[str, Any], case_dir: Path, warnings: list[str]) -> LoadOptions:
    values: dict[str, Any] = {"files": [], "env_files": [], "profiles": []}
    args = list(vector["args"])
    while args:
        flag, value = args.pop(0), args.pop(0)
        field = FLAGS[flag]
        if isinstance(values.get(field), list):
            values[field].append(value)
        else:
            values[field] = value
    return LoadOptions(
        files=tuple(values.pop("files")), env_files=tuple(values.pop("env_files")),
        profiles=tuple(values.pop("profiles")), services=tuple(vector.get("config_args", ())),
        workdir=str(case_dir / vector.get("workdir", ".")),
        environ={**PATH_ENV, **vector["env"]}, warn=warnings.append, **values)


def _rendered(value: Any) -> Any:
    """`$` doubled in every string, as `config` prints the tree."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {_rendered(k): _rendered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    return value


def _pointer(tree: Any, pointer: str) -> Any:
    node = tree
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _observe(data: dict[str, Any], observed: str) -> Any:
    if observed.startswith("keys:"):
        return sorted(_pointer(data, observed[len("keys:"):]))
    return _pointer(data, observed)


def _case_dir(value: Any, case_dir: Path) -> Any:
    text = json.dumps(value).replace("${CASE_DIR}", str(case_dir))
    return json.loads(text)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_precedence_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    case_dir = tmp_path / vector.get("dirname", "proj")
    for name, text in vector["files"].items():
        path = case_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    warnings: list[str] = []
    options = _options(vector, case_dir, warnings)
    if "expected_error" in vector:
        with pytest.raises(ComposeError) as caught:
            load(options)
        expected = _case_dir(vector["expected_error"], case_dir)
        assert expected.split(": invalid compose project")[0] in str(caught.value)
        return
    data = _rendered(load(options).data)
    for observed, value in _case_dir(vector["expected"], case_dir).items():
        assert _observe(data, observed) == value, observed
    for observed in vector.get("expected_absent", []):
        with pytest.raises((KeyError, IndexError)):
            _observe(data, observed)
    for message in _case_dir(vector.get("warnings", []), case_dir):
        assert message in warnings


def test_corpus_is_complete() -> None:
    assert len(VECTORS) == 59
