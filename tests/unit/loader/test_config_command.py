"""`pycompose config` flags, in-process through the CLI entry point; outputs checked
against the reference on the same project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compose.cli.main import main
from tests.unit.loader.loadhelp import write

PROJECT = {
    "compose.yaml": """\
        services:
          web:
            image: "web:${TAG:-1}"
            depends_on: [db]
            volumes: [data:/data]
            profiles: [front]
          db:
            image: postgres
            environment: [PASSWORD=$$secret]
          builder:
            build: .
        volumes:
          data: {}
          unused: {}
        """,
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(tmp_path, PROJECT)
    monkeypatch.chdir(tmp_path)
    for key in ("COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME", "TAG"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["-p", "t", *argv])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_json_format(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--profile", "front", "config", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert sorted(data["services"]) == ["builder", "db", "web"]
    assert data["services"]["web"]["image"] == "web:1"
    assert data["services"]["db"]["environment"] == {"PASSWORD": "$$secret"}
    assert data["volumes"] == {"data": {"name": "t_data"}}  # unused volume dropped
    assert not out.endswith("\n")


def test_yaml_is_the_default(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config")
    assert code == 0
    assert out.startswith("name: t\nservices:\n  builder:\n    build:\n")
    assert "      PASSWORD: $$secret\n" in out


@pytest.mark.parametrize("args, expected", [
    (["config", "--services"], "builder\ndb\n"),
    (["--profile", "front", "config", "--services"], "builder\ndb\nweb\n"),
    (["config", "--profiles"], "front\n"),
    (["--profile", "*", "config", "--volumes"], "data\n"),
    (["config", "--networks"], "default\n"),
    (["config", "--images"], "t-builder\npostgres\n"),
    (["config", "-q"], ""),
])
def test_listings(project: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                  expected: str) -> None:
    code, out, _ = run(capsys, *args)
    assert (code, out) == (0, expected)


def test_variables_table(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "--variables")
    assert code == 0
    assert out == ("NAME                REQUIRED            DEFAULT VALUE       ALTERNATE VALUE\n"
                   "TAG                 false               1                   \n")


def test_environment(project: Path, capsys: pytest.CaptureFixture[str],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAG", "7")
    code, out, _ = run(capsys, "config", "--environment")
    assert code == 0
    assert "TAG=7\n" in out and "COMPOSE_PROJECT_NAME=t\n" in out


def test_output_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "--format", "json", "-o", "out.json")
    assert (code, out) == (0, "")
    assert json.loads((project / "out.json").read_text())["name"] == "t"


def test_no_interpolate_prints_the_bare_model(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "--no-interpolate", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["services"]["web"]["image"] == "web:${TAG:-1}"
    assert data["services"]["db"]["environment"] == ["PASSWORD=$$secret"]


def test_error_is_one_line_and_exit_1(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "compose.yaml").write_text("services:\n  a:\n    image: x\n    bogus: 1\n")
    code, out, err = run(capsys, "config")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "bogus" in err


def test_infinite_number_cannot_be_json(project: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # (oracle) the reference fails with "json: unsupported value: +Inf" and prints `.inf`
    # in YAML
    (project / "compose.yaml").write_text("x-a:\n  b: .inf\n  c: -.inf\n  d: .nan\n"
                                          "services:\n  a:\n    image: x\n")
    code, out, err = run(capsys, "config", "--format", "json")
    assert (code, out) == (1, "")
    assert err.strip() == "x-a.b: json: unsupported value: +Inf"
    code, out, err = run(capsys, "config")
    assert code == 0 and "  b: .inf\n  c: -.inf\n  d: .nan\n" in out
    code, _, err = run(capsys, "config", "--no-interpolate", "--format", "json")
    assert code == 1 and "unsupported value: +Inf" in err


def test_floats_are_written_as_go_writes_them(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # (oracle) yaml.v3: strconv 'g' shortest; encoding/json: positional between 1e-6
    # and 1e21, else exponent without a leading zero
    (project / "compose.yaml").write_text(
        "x-a:\n  b: 1000000.0\n  c: 123456789.5\n  d: 1.5\n  e: 1e-7\n"
        "  f: 12345678901234567890123.0\n  g: 0.00001\nservices:\n  a:\n    image: x\n")
    code, out, _ = run(capsys, "config")
    assert code == 0
    assert ("  b: 1e+06\n  c: 1.234567895e+08\n  d: 1.5\n  e: 1e-07\n"
            "  f: 1.2345678901234568e+22\n  g: 1e-05\n") in out
    code, out, _ = run(capsys, "config", "--format", "json")
    assert code == 0
    assert ('"b": 1000000,\n    "c": 123456789.5,\n    "d": 1.5,\n    "e": 1e-7,\n'
            '    "f": 1.2345678901234568e+22,\n    "g": 0.00001\n') in out


def test_shared_published_port_is_a_warning(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # (oracle) the reference's `config` accepts it; binding fails only at `up`
    (project / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    ports: ['8080:80']\n"
        "  b:\n    image: x\n    ports: ['8080:81']\n")
    code, out, err = run(capsys, "config")
    assert code == 0 and "services:" in out
    assert 'compose.yaml:7:13: services.b.ports[0]: published port 8080/tcp is already used' \
        in err


def test_bad_format_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "config", "--format", "toml")
    assert code == 1 and "invalid choice" in err


def test_hash_matches_the_reference(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the values `docker compose config --hash` prints for this project
    code, out, _ = run(capsys, "--profile", "front", "config", "--hash", "web,db")
    assert code == 0
    assert out == ("db 9f31851c072dc55c22ddd7b5b1ee76cb09156b2afe45e3f5e76db2d31cb56947\n"
                   "web 4f7d28c1fd101311afb5639134dfa237e80e5d4092751e63d07e90cba4c4cb7a\n")


def test_hash_ignores_env_file_contents_and_format(project: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # as the reference: hashed before env files are read; an entry is its path
    (project / "a.env").write_text("A=1\n")
    base = "services:\n  s:\n    image: x\n    env_file:\n      - path: a.env\n"
    hashes = []
    for extra in ("", "        format: raw\n"):
        (project / "compose.yaml").write_text(base + extra)
        code, out, _ = run(capsys, "config", "--hash", "s")
        assert code == 0
        hashes.append(out)
    (project / "a.env").write_text("A=2\n")
    code, out, _ = run(capsys, "config", "--hash", "s")
    assert hashes[0] == hashes[1] == out


def test_fast_indented_json_writes_what_json_dumps_writes() -> None:
    from compose.loader.render import _indented_json
    from tests.support.corpus import CONFORMANCE

    odd = {"a": [1, 2.5, True, None, {"é\u2028<x>": "\x00\n\"\\"}], "b": {}, "c": [],
           "d": [[], {}], 3: "a non-string key: json.dumps writes this one"}
    trees = [odd, *(json.loads(path.read_text())
                    for path in sorted(CONFORMANCE.glob("cases/*/expected.json"))[:80])]
    for tree in trees:
        assert _indented_json(tree) == json.dumps(tree, ensure_ascii=False, indent=2)
