"""discover(): compose files, project directory, environment, profiles, project name.

Behaviours marked (oracle) were checked against `docker compose` v2.40.3.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compose.errors import FileNotFound, InterpolationError, UsageError
from compose.loader.discover import (
    discover,
    interpolation_environment,
    normalize_project_name,
    resolve_project_name,
    validate_project_name,
)

SERVICE = "services:\n  s:\n    image: x\n"


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_default_file_and_override(tmp_path: Path) -> None:
    make(tmp_path, {"compose.yaml": SERVICE, "compose.override.yaml": SERVICE})
    found = discover(workdir=str(tmp_path), environ={"HOME": "/h"})
    assert found.config_files == (str(tmp_path / "compose.yaml"),
                                  str(tmp_path / "compose.override.yaml"))
    assert found.working_dir == str(tmp_path)
    assert found.environment == {"HOME": "/h", "PWD": str(tmp_path)}
    assert found.warnings == ()


def test_several_default_names_warn_and_pick_the_first(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"compose.yaml": SERVICE, "docker-compose.yml": SERVICE})
    warnings: list[str] = []
    found = discover(workdir=str(tmp_path), environ={}, warn=warnings.append)
    assert found.config_files == (str(tmp_path / "compose.yaml"),)
    assert warnings == [
        "Found multiple config files with supported names: "
        f"{tmp_path / 'compose.yaml'}, {tmp_path / 'docker-compose.yml'}",
        f"Using {tmp_path / 'compose.yaml'}"]


def test_search_walks_up_and_sets_the_project_directory(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"proj/docker-compose.yml": SERVICE, "proj/.env": "X=parent\n",
                    "proj/sub/deeper/.keep": ""})
    found = discover(workdir=str(tmp_path / "proj/sub/deeper"), environ={})
    assert found.config_files == (str(tmp_path / "proj/docker-compose.yml"),)
    assert found.working_dir == str(tmp_path / "proj")
    assert found.environment["X"] == "parent"
    assert resolve_project_name(found, [None]) == "proj"


def test_dotenv_of_the_working_directory_is_read_first(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"compose.yaml": SERVICE, ".env": "X=parent\nY=parent\n",
                    "sub/.env": "X=sub\nCOMPOSE_ENV_FILES=none.env\n"})
    found = discover(workdir=str(tmp_path / "sub"), environ={})
    assert (found.environment["X"], found.environment["Y"]) == ("sub", "parent")
    assert found.env_files == (str(tmp_path / "sub/.env"), str(tmp_path / ".env"))


def test_env_files_are_relative_to_the_working_directory(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"x.env": "X=cwd\n", "sub/x.env": "X=sub\n", "sub/compose.yaml": SERVICE})
    found = discover(workdir=str(tmp_path), environ={}, project_directory="sub",
                     env_files=["x.env"])
    assert found.environment["X"] == "cwd"
    found = discover(workdir=str(tmp_path), environ={"COMPOSE_ENV_FILES": "x.env"},
                     project_directory="sub")
    assert found.environment["X"] == "cwd"


def test_no_compose_file(tmp_path: Path) -> None:  # (oracle)
    with pytest.raises(FileNotFound, match="no configuration file provided: not found"):
        discover(workdir=str(tmp_path), environ={})


def test_explicit_files_skip_overrides_and_set_the_directory(tmp_path: Path) -> None:
    make(tmp_path, {"compose.yaml": SERVICE, "compose.override.yaml": SERVICE,
                    "sub/a.yaml": SERVICE, "sub/.env": "X=sub\n", ".env": "X=cwd\n"})
    found = discover(workdir=str(tmp_path), environ={}, files=["sub/a.yaml", "compose.yaml"])
    assert found.config_files == (str(tmp_path / "sub/a.yaml"), str(tmp_path / "compose.yaml"))
    assert found.working_dir == str(tmp_path / "sub")
    assert found.environment["X"] == "sub"
    stdin = discover(workdir=str(tmp_path), environ={}, files=["-"])
    assert stdin.config_files == ("-",) and stdin.working_dir == str(tmp_path)


def test_project_directory_flag(tmp_path: Path) -> None:
    make(tmp_path, {"sub/compose.yaml": SERVICE, "sub/.env": "X=sub\n", ".env": "X=cwd\n"})
    found = discover(workdir=str(tmp_path), environ={}, project_directory="sub")
    assert found.config_files == (str(tmp_path / "sub/compose.yaml"),)
    assert found.working_dir == str(tmp_path / "sub")
    assert found.environment["X"] == "sub"


def test_compose_file_from_dotenv_with_separator(tmp_path: Path) -> None:
    make(tmp_path, {"a.yaml": SERVICE, "b.yaml": SERVICE,
                    ".env": "COMPOSE_PATH_SEPARATOR=,\nCOMPOSE_FILE=a.yaml,b.yaml\n"})
    found = discover(workdir=str(tmp_path), environ={})
    assert found.config_files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    shell = discover(workdir=str(tmp_path), environ={"COMPOSE_FILE": "b.yaml"})
    assert shell.config_files == (str(tmp_path / "b.yaml"),)
    flag = discover(workdir=str(tmp_path), environ={"COMPOSE_FILE": "b.yaml"}, files=["a.yaml"])
    assert flag.config_files == (str(tmp_path / "a.yaml"),)


def test_env_file_flags(tmp_path: Path) -> None:
    make(tmp_path, {"compose.yaml": SERVICE, ".env": "X=dotenv\n", "a.env": "X=a\n"})
    found = discover(workdir=str(tmp_path), environ={}, env_files=["a.env"])
    assert found.environment["X"] == "a" and found.env_files == (str(tmp_path / "a.env"),)
    with pytest.raises(FileNotFound, match="couldn't find env file"):
        discover(workdir=str(tmp_path), environ={}, env_files=["missing.env"])


def test_profiles(tmp_path: Path) -> None:  # (oracle: items are trimmed, empties dropped)
    make(tmp_path, {"compose.yaml": SERVICE, ".env": "COMPOSE_PROFILES=debug\n"})
    assert discover(workdir=str(tmp_path), environ={}).profiles == ("debug",)
    assert discover(workdir=str(tmp_path), environ={"COMPOSE_PROFILES": " a , ,b"}).profiles \
        == ("a", "b")
    assert discover(workdir=str(tmp_path), environ={"COMPOSE_PROFILES": "a"},
                    profiles=["x"]).profiles == ("x",)


@pytest.mark.parametrize(("raw", "normal"), [
    ("My_Project.Dir 2", "my_projectdir2"), ("--x", "x"), ("_a-b_", "a-b_"), ("ÄB", "b"),
])
def test_normalize_project_name(raw: str, normal: str) -> None:
    assert normalize_project_name(raw) == normal


def test_invalid_explicit_names_are_errors(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"compose.yaml": SERVICE})
    message = ('invalid project name "Bad Name": must consist only of lowercase alphanumeric '
               "characters, hyphens, and underscores as well as start with a letter or number")
    with pytest.raises(UsageError) as caught:
        discover(workdir=str(tmp_path), environ={}, project_name="Bad Name")
    assert str(caught.value) == message
    with pytest.raises(UsageError, match='invalid project name "Bad"'):
        discover(workdir=str(tmp_path), environ={"COMPOSE_PROJECT_NAME": "Bad"})
    assert validate_project_name("ok-1_x") == "ok-1_x"


def test_project_name_precedence(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"My Dir/compose.yaml": SERVICE, "My Dir/.env": "PN=from-dotenv\n"})
    workdir = str(tmp_path / "My Dir")

    def name(environ: dict[str, str], names: list[object], flag: str | None = None) -> str:
        found = discover(workdir=workdir, environ=environ, project_name=flag)
        return resolve_project_name(found, names)

    assert name({"COMPOSE_PROJECT_NAME": "env"}, ["top"], "flag") == "flag"
    assert name({"COMPOSE_PROJECT_NAME": "env"}, ["top"]) == "env"
    assert name({"COMPOSE_PROJECT_NAME": ""}, ["${PN:-x}"]) == "from-dotenv"
    assert name({}, ["first", None, "MyApp"]) == "myapp"
    assert name({}, [None]) == "mydir"
    assert name({}, [None], "flag") == "flag"


def test_name_interpolation_errors_name_the_key(tmp_path: Path) -> None:
    make(tmp_path, {"compose.yaml": SERVICE})
    found = discover(workdir=str(tmp_path), environ={})
    with pytest.raises(InterpolationError) as caught:
        resolve_project_name(found, ["${PN:?set PN}"])
    assert str(caught.value) == ("error while interpolating name: "
                                 "required variable PN is missing a value: set PN")


def test_symlinked_directory_keeps_its_logical_name(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"real/compose.yaml": SERVICE})
    (tmp_path / "link").symlink_to(tmp_path / "real")
    warnings: list[str] = []
    found = discover(workdir=str(tmp_path / "real"), environ={"PWD": str(tmp_path / "link")})
    assert found.working_dir == str(tmp_path / "link")
    assert found.environment["PWD"] == str(tmp_path / "link")
    assert resolve_project_name(found, [None], warn=warnings.append) == "link"
    assert warnings == ['project has been loaded without an explicit name from a symlink. '
                        'Using name "link"']
    assert resolve_project_name(found, ["named"], warn=warnings.append) == "named"
    assert len(warnings) == 1
    elsewhere = discover(workdir=str(tmp_path / "real"), environ={"PWD": str(tmp_path)})
    assert elsewhere.working_dir == str(tmp_path / "real")  # a stale $PWD is ignored


def test_interpolation_environment_carries_the_resolved_name(tmp_path: Path) -> None:  # (oracle)
    make(tmp_path, {"compose.yaml": SERVICE})
    found = discover(workdir=str(tmp_path), environ={"COMPOSE_PROJECT_NAME": "fromenv"},
                     project_name="flag")
    env = interpolation_environment(found, resolve_project_name(found, []))
    assert env["COMPOSE_PROJECT_NAME"] == "flag"
    assert found.environment["COMPOSE_PROJECT_NAME"] == "fromenv"
