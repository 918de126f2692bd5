"""Profiles (--profile, COMPOSE_PROFILES, `*`, services named on the command line) and
dependencies on disabled services; checked against the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from compose.errors import ConfigError
from tests.unit.loader.loadhelp import load_project

FILES = {"compose.yaml": """\
    services:
      web: {image: web, depends_on: [db]}
      db: {image: db, profiles: [data]}
      opt:
        image: opt
        profiles: [extra]
        depends_on:
          web: {condition: service_started}
          dbg: {condition: service_started, required: false}
      dbg: {image: dbg, profiles: [debug]}
    """}


def _services(tmp_path: Path, **options: object) -> list[str]:
    return sorted(load_project(tmp_path, FILES, **options).data["services"])  # type: ignore[arg-type]


def test_required_dependency_on_disabled_service_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='depends on undefined service "db"'):
        load_project(tmp_path, FILES)


@pytest.mark.parametrize("options, expected", [
    ({"profiles": ("data",)}, ["db", "web"]),
    ({"profiles": ("data", "extra")}, ["db", "opt", "web"]),
    ({"profiles": ("*",)}, ["db", "dbg", "opt", "web"]),
    ({"env": {"COMPOSE_PROFILES": "data,extra"}}, ["db", "opt", "web"]),
])
def test_active_services(tmp_path: Path, options: dict[str, object],
                         expected: list[str]) -> None:
    assert _services(tmp_path, **options) == expected


def test_optional_dependency_on_disabled_service_is_kept(tmp_path: Path) -> None:
    data = load_project(tmp_path, FILES, profiles=("data", "extra")).data
    assert data["services"]["opt"]["depends_on"]["dbg"] == {
        "condition": "service_started", "required": False}


def test_named_service_is_enabled_with_its_dependencies(tmp_path: Path) -> None:
    data = load_project(tmp_path, FILES, profiles=("data",), services=("opt",)).data
    assert sorted(data["services"]) == ["db", "opt", "web"]
    # a selection drops dependencies outside it, as the reference does
    assert list(data["services"]["opt"]["depends_on"]) == ["web"]


def test_unknown_named_service(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such service: nope"):
        load_project(tmp_path, FILES, profiles=("data",), services=("nope",))
