"""Environment sources: .env / --env-file precedence, env_file entries, environment:.

Behaviours marked (oracle) were checked against `docker compose config` v2.40.3.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compose.errors import FileNotFound, LoadError
from compose.loader.environment import (
    EnvFileRef,
    env_file_refs,
    environment_mapping,
    parse_dotenv,
    parse_raw_env,
    project_environment,
    read_env_file,
    service_environment,
)
from compose.loader.yamlload import parse_yaml


def test_os_environment_beats_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("X=dotenv\nY=dotenv\nREF=${Y}-ref\n")
    env = project_environment({"X": "shell"}, str(tmp_path))
    assert env == {"X": "shell", "Y": "dotenv", "REF": "dotenv-ref"}


def test_env_files_replace_dotenv_and_later_files_win(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("X=dotenv\nTAG=dotenv\n")
    (tmp_path / "a.env").write_text("X=a\nY=from-a\n")
    (tmp_path / "b.env").write_text("X=${Y}-b\n")
    env = project_environment({}, str(tmp_path), ["a.env", "b.env"])
    assert env == {"X": "from-a-b", "Y": "from-a"}


def test_compose_env_files_and_disable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("X=dotenv\n")
    (tmp_path / "a.env").write_text("X=a\n")
    assert project_environment({"COMPOSE_ENV_FILES": "a.env"}, str(tmp_path))["X"] == "a"
    assert "X" not in project_environment({"COMPOSE_DISABLE_ENV_FILE": "1"}, str(tmp_path))
    assert project_environment({}, str(tmp_path / "nowhere")) == {}


def test_missing_env_file_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFound) as caught:
        project_environment({}, str(tmp_path), ["missing.env"])
    assert caught.value.message == f"couldn't find env file: {tmp_path / 'missing.env'}"


def test_dotenv_grammar_corners() -> None:
    text = ('export A=1 # c\nB="multi\nline"\nC=\'${A}\'\nD="${A}\\t"\nE=a\\nb\n'
            'F: yaml\nG=\\$x\nH="\\$x"\nI="\\0101"\n')
    assert parse_dotenv(text) == {"A": "1", "B": "multi\nline", "C": "${A}", "D": "1\t",
                                  "E": "a\\nb", "F": "yaml", "G": "\\", "H": "$x", "I": "A"}
    assert parse_dotenv("B=2\nA") == {"B": "2", "": "A"}  # a last bare key without newline (oracle)


def test_export_without_a_statement_is_an_error() -> None:  # (oracle)
    with pytest.raises(LoadError, match="zero length string"):
        parse_dotenv("A=1\nexport ")


def test_dotenv_errors_are_located() -> None:
    with pytest.raises(LoadError) as caught:
        parse_dotenv("A=1\n\nB$=2\n", filename="/p/.env")
    assert (caught.value.file, caught.value.line) == ("/p/.env", 3)
    assert caught.value.message == 'unexpected character "$" in variable name "B$=2"'


def test_raw_format_is_verbatim(tmp_path: Path) -> None:  # (oracle)
    text = 'A="x" # c\nB=${X}\nF=a=b\r\n  I=  sp  \nC\nK=$$\n# comment\n\n'
    assert parse_raw_env(text, {"C": "fromos"}.get) == {
        "A": '"x" # c', "B": "${X}", "F": "a=b", "I": "  sp  ", "C": "fromos", "K": "$$"}
    # leading whitespace (CR included) is dropped; only blanks and tabs make a bad key (oracle)
    assert parse_raw_env("\t\rA=1\n\r}B\x0b=2\n") == {"A": "1", "}B\x0b": "2"}
    for bad, message in (("E = 2\n", "variable 'E ' contains whitespaces"),
                         ("=v\n", "no variable name on line '=v'")):
        with pytest.raises(LoadError, match=message):
            parse_raw_env(bad)
    (tmp_path / "f.env").write_text("A=1\n")
    with pytest.raises(LoadError, match='unsupported env_file format "foo"'):
        read_env_file(str(tmp_path / "f.env"), format="foo")


def test_invalid_utf8_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(LoadError) as caught:
        read_env_file(str(tmp_path / "bad.env"))
    assert caught.value.line == 2


def test_env_file_refs_short_and_long(tmp_path: Path) -> None:
    assert env_file_refs("a.env", str(tmp_path)) == [EnvFileRef(str(tmp_path / "a.env"))]
    refs = env_file_refs(["a.env", {"path": "sub/../b.env", "required": False, "format": "raw"}],
                         str(tmp_path))
    assert refs == [EnvFileRef(str(tmp_path / "a.env")),
                    EnvFileRef(str(tmp_path / "b.env"), required=False, format="raw")]
    assert env_file_refs(None, str(tmp_path)) == []
    assert env_file_refs("~/x.env", str(tmp_path), home="/home/u") == [EnvFileRef("/home/u/x.env")]


def test_environment_mapping_forms() -> None:
    assert environment_mapping(["A=1", "B=", "C", "D=x=y"]) == {
        "A": "1", "B": "", "C": None, "D": "x=y"}
    assert environment_mapping({"A": 1, "B": None, "C": True, "D": 1.5, "E": 1e3}) == {
        "A": "1", "B": None, "C": "true", "D": "1.5", "E": "1000"}
    # numbers are written as Go's fmt does (oracle)
    assert environment_mapping({"A": 1e6, "B": 123456.7, "C": 1234567.0, "E": 1e-05,
                                "G": 100000.0, "H": -0.0, "I": float("nan"), "J": 493}) == {
        "A": "1e+06", "B": "123456.7", "C": "1.234567e+06", "E": "1e-05", "G": "100000",
        "H": "-0", "I": "NaN", "J": "493"}


def test_service_environment_precedence(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("X=a\nY=a\nW=${FROMDOT}-suffix\nV\n")
    (tmp_path / "b.env").write_text("X=b\nZ=${Z}\n")
    refs = env_file_refs(["a.env", "b.env", {"path": "missing.env", "required": False}],
                         str(tmp_path))
    project_env = {"FROMDOT": "dot", "V": "shell-v", "P": "shell-p"}
    env = service_environment({"Z": "z", "P": None, "Q": None}, refs, project_env)
    assert env == {"X": "b", "Y": "a", "W": "dot-suffix", "V": "shell-v", "Z": "z",
                   "P": "shell-p", "Q": None}


def test_env_file_values_not_overridden_by_shell(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("X=from-env-file\n")
    env = service_environment(None, env_file_refs(["a.env"], str(tmp_path)), {"X": "shell"})
    assert env == {"X": "from-env-file"}


def test_missing_required_env_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    with pytest.raises(FileNotFound) as caught:
        service_environment(None, env_file_refs(["missing.env"], str(tmp_path)), {})
    assert caught.value.message == (f"env file {missing} not found: stat {missing}: "
                                    "no such file or directory")
    text = "services:\n  web:\n    image: x\n    env_file:\n      - missing.env\n"
    tree, source = parse_yaml(text, "/p/compose.yaml")
    refs = env_file_refs(tree["services"]["web"]["env_file"], str(tmp_path))
    with pytest.raises(FileNotFound) as located:
        service_environment(None, refs, {}, source=source, path=("services", "web"))
    assert str(located.value).startswith("/p/compose.yaml:5:9: services.web.env_file[0]: env file")


def test_later_env_file_sees_earlier_env_files(tmp_path: Path) -> None:  # (oracle)
    # the reference gives Q=$${NOT} (R's literal value), T=s1-x; a bare `S` in
    # `environment:` does not hide the earlier file's value
    (tmp_path / "a.env").write_text("R='${NOT}'\nS=s1\nW=fromfile\n")
    (tmp_path / "b.env").write_text("Q=${R:-d}\nT=${S}-x\nU=${W}\nV=${S2:-v}\n")
    refs = env_file_refs(["a.env", "b.env"], str(tmp_path))
    env = service_environment({"W": "fromenv", "S": None}, refs, {})
    assert env == {"R": "${NOT}", "Q": "${NOT}", "S": None, "T": "s1-x", "U": "fromenv",
                   "V": "v", "W": "fromenv"}
    assert service_environment(None, refs, {"S": "proj"})["T"] == "proj-x"


def test_unreadable_env_file_is_located_at_its_entry(tmp_path: Path) -> None:
    (tmp_path / "conf.env").mkdir()
    tree, source = parse_yaml("services:\n  web:\n    image: x\n    env_file: conf.env\n",
                              "/p/compose.yaml")
    refs = env_file_refs(tree["services"]["web"]["env_file"], str(tmp_path))
    with pytest.raises(LoadError) as located:
        service_environment(None, refs, {}, source=source, path=("services", "web"))
    assert str(located.value) == (f"/p/compose.yaml:4:15: services.web.env_file[0]: cannot "
                                  f"read env file {tmp_path / 'conf.env'}: is a directory")
