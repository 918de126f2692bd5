"""extends (same file, other files, chains, cycles) and include (env, project
directory, overrides, cycles); expected values checked against the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from compose.errors import ConfigError, CycleError
from tests.unit.loader.loadhelp import load_project

EXTENDS_CHAIN = {
    "compose.yaml": """\
        services:
          a:
            extends: b
          b:
            extends: {service: c}
          c:
            extends: {file: sub/base.yaml, service: d}
            environment: {FROM_C: "1"}
        """,
    "sub/base.yaml": """\
        services:
          d:
            image: d
            volumes: [./here:/here]
            extends: e
          e:
            command: echo e
            labels: [from=e]
        """,
}


def test_extends_chain_across_files(tmp_path: Path) -> None:
    services = load_project(tmp_path, EXTENDS_CHAIN).data["services"]
    expected = {
        "command": ["echo", "e"], "entrypoint": None, "environment": {"FROM_C": "1"},
        "image": "d", "labels": {"from": "e"}, "networks": {"default": None},
        "volumes": [{"type": "bind", "source": str(tmp_path / "sub" / "here"),
                     "target": "/here", "bind": {"create_host_path": True}}],
    }
    assert services == {"a": expected, "b": expected, "c": expected}


def test_extends_cycle_names_the_chain(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  a: {image: x, extends: b}\n  b: {extends: c}\n"
                             "  c: {extends: a}\n"}
    with pytest.raises(CycleError) as info:
        load_project(tmp_path, files)
    compose = tmp_path / "compose.yaml"
    assert str(info.value) == (f"{compose}:2:26: services.a.extends: "
                               f"Circular reference: a in {compose} extends b in {compose}"
                               f" extends c in {compose} extends a in {compose}")


def test_extends_unknown_service(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  a: {image: x, extends: nope}\n"}
    with pytest.raises(ConfigError, match='service "nope" not found'):
        load_project(tmp_path, files)


def test_extends_unknown_service_in_other_file(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  a: {image: x, extends: {file: o.yaml, service: z}}\n",
             "o.yaml": "services:\n  y: {image: y}\n"}
    with pytest.raises(ConfigError, match='service "z" not found in o.yaml'):
        load_project(tmp_path, files)


INCLUDE = {
    "compose.yaml": """\
        include:
          - lib/compose.yaml
          - path: [other/compose.yaml, other/override.yaml]
            env_file: other/custom.env
            project_directory: other
        services:
          main: {image: "main-${LIBVAR:-unset}", depends_on: [lib]}
        """,
    "lib/compose.yaml": """\
        services:
          lib: {image: "lib-${LIBVAR}", volumes: [./data:/data], env_file: lib.env}
        """,
    "lib/.env": "LIBVAR=fromlibdotenv\n",
    "lib/lib.env": "E=1\n",
    "other/compose.yaml": "services:\n  oth: {image: 'oth-${OTHVAR}', build: .}\n",
    "other/override.yaml": "services: {oth: {command: echo over}}\n",
    "other/custom.env": "OTHVAR=custom\n",
}


def test_include_uses_each_projects_dir_and_env(tmp_path: Path) -> None:
    services = load_project(tmp_path, INCLUDE).data["services"]
    assert services["main"]["image"] == "main-unset"  # the included .env stays inside
    assert services["lib"]["image"] == "lib-fromlibdotenv"
    assert services["lib"]["environment"] == {"E": "1"}
    assert services["lib"]["volumes"][0]["source"] == str(tmp_path / "lib" / "data")
    assert services["oth"]["image"] == "oth-custom"
    assert services["oth"]["command"] == ["echo", "over"]
    assert services["oth"]["build"]["context"] == str(tmp_path / "other")


def test_include_parent_environment_wins(tmp_path: Path) -> None:
    services = load_project(tmp_path, INCLUDE, env={"LIBVAR": "shell"}).data["services"]
    assert services["lib"]["image"] == "lib-shell"
    assert services["main"]["image"] == "main-shell"


def test_include_cycle(tmp_path: Path) -> None:
    files = {"compose.yaml": "include: [b.yaml]\nservices: {a: {image: a}}\n",
             "b.yaml": "include: [compose.yaml]\nservices: {b: {image: b}}\n"}
    with pytest.raises(CycleError, match="include cycle detected") as info:
        load_project(tmp_path, files)
    # located at the `include` entry that closes the cycle
    assert str(info.value).startswith(f"{tmp_path / 'b.yaml'}:1:11: include[0]: ")


NESTED = {
    "compose.yaml": "include:\n  - a/compose.yaml\nservices:\n"
                    "  top: {image: top, depends_on: [deep], volumes: [./t:/t]}\n",
    "a/compose.yaml": "include:\n  - b/compose.yaml\nservices:\n"
                      "  mid: {image: mid, volumes: [./m:/m]}\n",
    "a/b/compose.yaml": "services:\n  deep: {image: deep, volumes: [./d:/d], env_file: [d.env]}\n",
    "a/b/d.env": "D=1\n",
}


def test_no_path_resolution_keeps_paths_relative_to_the_project(tmp_path: Path) -> None:
    # as the reference: the main file's paths as written, included files' paths
    # relative to the project directory (resolved once, however deep the include)
    services = load_project(tmp_path, NESTED, resolve_paths=False).data["services"]
    assert services["top"]["volumes"][0]["source"] == "./t"
    assert services["mid"]["volumes"][0]["source"] == "a/m"
    assert services["deep"]["volumes"][0]["source"] == "a/b/d"
    assert services["deep"]["environment"] == {"D": "1"}


def test_include_conflicting_resource_is_an_error(tmp_path: Path) -> None:
    files = {"compose.yaml": "include: [inc.yaml]\nservices:\n  a: {image: main}\n"
                             "volumes:\n  vol: {driver: x}\n",
             "inc.yaml": "services:\n  b: {image: b, volumes: [vol:/v]}\nvolumes:\n  vol: {driver: y}\n"}
    with pytest.raises(ConfigError, match="volumes.vol conflicts with imported resource"):
        load_project(tmp_path, files)


def test_include_same_resource_on_both_sides_is_fine(tmp_path: Path) -> None:
    files = {"compose.yaml": "include: [inc.yaml]\nservices:\n  a: {image: a, volumes: [vol:/v]}\n"
                             "volumes:\n  vol: {driver: x}\n",
             "inc.yaml": "services:\n  b: {image: b, volumes: [vol:/w]}\nvolumes:\n  vol: {driver: x}\n"}
    data = load_project(tmp_path, files).data
    assert sorted(data["services"]) == ["a", "b"]
    assert data["volumes"] == {"vol": {"name": "t_vol", "driver": "x"}}


@pytest.mark.parametrize("text, where, message", [
    ("include: [5]\nservices: {a: {image: x}}\n", "1:11", "include[0]: must be a path"),
    ("include: [{path: [a, 5]}]\n", "1:18", "include[0].path: must be a string or a list"),
    ("services: {a: {image: x, extends: [1]}}\n", "1:35",
     "services.a.extends: must be a string or a mapping"),
    ("services: {a: {image: x, extends: {}}}\n", "1:35",
     "services.a.extends.service: `service` is required"),
    ("services: {a: {image: x, extends: nope}}\n", "1:35", 'service "nope" not found'),
])
def test_bad_include_or_extends_is_located(tmp_path: Path, text: str, where: str,
                                           message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path, {"compose.yaml": text})
    assert str(info.value).startswith(f"{tmp_path / 'compose.yaml'}:{where}: ")
    assert message in str(info.value)
