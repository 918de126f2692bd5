"""Every case of the shared conformance corpus, run in-process through the loader.

For each case (README "How a test should compare"): the project is copied without the
bookkeeping files to D = <tmp>/<case>, loaded with the case's flags and environment
({PATH, HOME, **env}) from D/<workdir>, and
- ok cases: the JSON form equals expected.json (any variant) structurally, and the
  YAML form, parsed, equals expected.yaml parsed; then both renderings must also be
  byte-identical to the reference's (the YAML file's final newline aside);
- error cases: loading fails with a compose error whose message names the same
  problem as the reference's (key words of its last line).
Deviations from the reference are listed in DEVIATIONS with the reason; none is skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from compose.cli.main import _global_parser
from compose.errors import ComposeError
from compose.loader import LoadOptions, load
from compose.loader.render import render_json, render_yaml
from tests.support.corpus import CONFORMANCE

CORPUS = CONFORMANCE
CASES = CORPUS / "cases"
PLACEHOLDER = "${CASE_DIR}"
HOME = "/tmp/pcconf-home"
META = re.compile(r"^(case\.json|command\.txt|expected.*)$")

# case -> (what the reference does, what pycompose does, why)
DEVIATIONS: dict[str, tuple[str, str, str]] = {
    "dc-fixtures-build-test-ssh": (
        "fails with --format json only: 'json: error calling MarshalJSON for type "
        "types.SSHKey' (the YAML run succeeds)",
        "prints the JSON form of the same model the YAML run shows",
        "a marshalling bug of the reference (README: oracle bug)"),
}

# Words of the reference's message that pycompose's message must also contain, where
# pycompose words the same problem differently (it adds file:line:col and key paths).
ERROR_KEYS: dict[str, list[str]] = {
    "cg-loader-extends-base": ["services.nil", "mapping"],
    "dc-fixtures-wrong-composefile": ["wrongField"],
    "dc-testdata-TestUpContainerNameConflict": ["container_name"],
    "cg-loader-multi-extends-include": ["container name", "imported"],
    "dc-fixtures-logs-test--cat": ["volumes[0]", "between colons"],
}
_PREFIXES = re.compile(r"^(error while interpolating \S+: |validating \S+: )")


def _case_names() -> list[str]:
    if not CASES.is_dir():
        return []
    return sorted(p.name for p in CASES.iterdir() if (p / "case.json").is_file())


def copy_case(name: str, base: Path) -> Path:
    src = CASES / name
    dest = base / name
    if dest.exists():
        shutil.rmtree(dest)

    def ignore(directory: str, names: list[str]) -> list[str]:
        if Path(directory) == src:
            return [n for n in names if META.match(n)]
        return []

    shutil.copytree(src, dest, ignore=ignore, symlinks=True)
    return dest


def options_for(case: dict[str, Any], fixed: Path, args: list[str]) -> LoadOptions:
    """LoadOptions from the case's argv (global flags, `config`, config flags)."""
    at = args.index("config")
    glob = _global_parser().parse_args(args[:at])
    services = tuple(a for a in args[at + 1:] if not a.startswith("-") and a != "json")
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": HOME,
               **case.get("env", {})}
    return LoadOptions(files=tuple(glob.files), project_name=glob.project_name,
                       project_directory=glob.project_directory,
                       profiles=tuple(glob.profiles), env_files=tuple(glob.env_files),
                       services=services, workdir=str(fixed / (case.get("workdir") or ".")),
                       environ=environ, warn=lambda _: None)


def _expected(path: Path, fixed: Path) -> str:
    return path.read_text(encoding="utf-8").replace(PLACEHOLDER, str(fixed))


def _variants(case_dir: Path, stem: str, suffix: str) -> list[Path]:
    found = [case_dir / f"{stem}{suffix}"]
    found += sorted(case_dir.glob(f"{stem}.variant-*{suffix}"))
    return [p for p in found if p.is_file()]


def _error_lines(case_dir: Path, fixed: Path) -> list[str]:
    text = _expected(case_dir / "expected-error.txt", fixed)
    text = text.split("\n\n# the YAML run")[0]
    body = text.split("\n", 2)[2] if text.count("\n") >= 2 else text
    variants = re.split(r"^--- variant \d+\n", body, flags=re.M)
    return [v.strip().splitlines()[-1] for v in variants if v.strip()]


def _words(line: str) -> list[str]:
    """Distinctive words of a message: quoted names and long words."""
    line = _PREFIXES.sub("", line)
    quoted = re.findall(r'"([^"]+)"|\'([^\']+)\'', line)
    names = [a or b for a, b in quoted]
    words = [w for w in re.findall(r"[A-Za-z_][\w.-]{5,}", line)
             if w.lower() not in {"service", "services", "invalid", "compose", "project",
                                  "validating", "specified", "directory"}]
    return names or words[:3]


def check_case(name: str, base: Path) -> None:
    case_dir = CASES / name
    case = json.loads((case_dir / "case.json").read_text())
    fixed = copy_case(name, base)
    if case["status"] == "error" and name not in DEVIATIONS:
        with pytest.raises(ComposeError) as info:
            load(options_for(case, fixed, case["json_args"]))
        message = str(info.value)
        lines = _error_lines(case_dir, fixed)
        keys = ERROR_KEYS.get(name)
        if keys is not None:
            assert all(k in message for k in keys), (message, keys)
        else:
            assert any(all(w in message for w in _words(line)) for line in lines), \
                (message, lines)
        return
    loaded = load(options_for(case, fixed, case["json_args"]))
    json_text = render_json(loaded.data)
    got_json = json.loads(json_text)
    json_texts = [_expected(p, fixed) for p in _variants(case_dir, "expected", ".json")]
    variants = [json.loads(text) for text in json_texts]
    if name in DEVIATIONS:
        assert not variants
    else:
        assert any(got_json == v for v in variants), _diff(got_json, variants[0])
        # the renderer aims at the reference's exact bytes, not only its structure
        assert json_text in json_texts
    yaml_loaded = load(options_for(case, fixed, case["yaml_args"]))
    yaml_text = render_yaml(yaml_loaded.data)
    got_yaml = yaml.safe_load(io.StringIO(yaml_text))
    yaml_texts = [_expected(p, fixed) for p in _variants(case_dir, "expected", ".yaml")]
    expected_yaml = [yaml.safe_load(text) for text in yaml_texts]
    assert any(got_yaml == v for v in expected_yaml), _diff(got_yaml, expected_yaml[0])
    assert yaml_text.rstrip("\n") in [t.rstrip("\n") for t in yaml_texts]


def _diff(got: Any, want: Any, path: str = "") -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want), key=str):
            if key not in got:
                return f"{path}.{key}: missing (want {want[key]!r})"
            if key not in want:
                return f"{path}.{key}: unexpected {got[key]!r}"
            if got[key] != want[key]:
                return _diff(got[key], want[key], f"{path}.{key}")
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if g != w:
                return _diff(g, w, f"{path}[{i}]")
    return f"{path}: got {got!r}, want {want!r}"


@pytest.fixture(scope="module")
def case_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.mark.skipif(not CASES.is_dir(), reason="conformance corpus not present")
@pytest.mark.parametrize("name", _case_names())
def test_case(name: str, case_base: Path) -> None:
    check_case(name, case_base)


@pytest.mark.skipif(not CASES.is_dir(), reason="conformance corpus not present")
def test_corpus_is_complete() -> None:
    names = _case_names()
    statuses = [json.loads((CASES / n / "case.json").read_text())["status"] for n in names]
    assert len(names) == 305
    assert statuses.count("error") == 33


@pytest.mark.skipif(not CASES.is_dir(), reason="conformance corpus not present")
def test_every_ok_case_builds_the_typed_model(case_base: Path) -> None:
    """The canonical tree is what the pydantic model (compose.model) is built from."""
    built = 0
    for name in _case_names():
        case = json.loads((CASES / name / "case.json").read_text())
        if case["status"] != "ok":
            continue
        fixed = copy_case(name, case_base / "model")
        project = load(options_for(case, fixed, case["yaml_args"])).model()
        assert sorted(project.services) == sorted(
            yaml.safe_load(_expected(CASES / name / "expected.yaml", fixed))["services"])
        built += 1
    assert built == 272
