"""The typed model: every ok conformance case builds a Project and round-trips exactly.

`data/model-full.json` is the reference's `config --format json` output for
`data/model-full.compose.yaml`, a file that sets every service key of the schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from compose.model import Port, Project, seconds
from tests.support.corpus import CONFORMANCE

DATA = Path(__file__).resolve().parent / "data"
CASES = CONFORMANCE / "cases"


def load_expected(case: Path) -> dict[str, Any]:
    text = (case / "expected.json").read_text().replace("${CASE_DIR}", str(case))
    tree: dict[str, Any] = json.loads(text)
    return tree


def ok_cases() -> list[Path]:
    return [c.parent for c in sorted(CASES.glob("*/case.json"))
            if json.loads(c.read_text())["status"] == "ok"]


def test_every_ok_conformance_case_builds_and_round_trips() -> None:
    cases = ok_cases()
    assert len(cases) > 250
    for case in cases:
        tree = load_expected(case)
        project = Project.from_tree(tree)
        assert project.to_tree() == tree, case.name
        assert project.name == tree["name"]
        for name, service in project.services.items():
            raw = tree["services"][name]
            assert service.name == name
            assert service.image == raw.get("image")
            assert service.command == raw.get("command")
            assert service.entrypoint == raw.get("entrypoint")
            assert (service.environment or {}) == raw.get("environment", {})
            assert [p.target for p in service.ports or []] == \
                [p["target"] for p in raw.get("ports", [])]
            assert [m.target for m in service.volumes or []] == \
                [v["target"] for v in raw.get("volumes", [])]
            assert sorted(service.depends_on or {}) == sorted(raw.get("depends_on", {}))
            assert sorted(service.networks or {}) == sorted(raw.get("networks", {}))


def full() -> Project:
    tree = json.loads((DATA / "model-full.json").read_text())
    return Project.from_tree(tree)


def test_every_service_key_is_typed_and_round_trips() -> None:
    tree = json.loads((DATA / "model-full.json").read_text())
    project = Project.from_tree(tree)
    assert project.to_tree() == tree
    web = project.service("web")
    assert web.model_extra == {}, "every key the reference prints is a declared field"
    assert web.mem_limit == 536870912 and web.shm_size == 67108864
    assert web.deploy and web.deploy.resources and web.deploy.resources.limits
    assert web.deploy.resources.limits.memory == 536870912
    assert web.deploy.resources.limits.cpus == 0.5
    assert web.healthcheck and web.healthcheck.test == ["CMD-SHELL", "curl -f http://localhost"]
    assert seconds(web.healthcheck.interval) == 90 and seconds(None, 30.0) == 30.0
    assert web.healthcheck.interval_seconds == 90 and web.healthcheck.timeout_seconds == 10
    assert web.healthcheck.start_period_seconds == 3600
    assert web.healthcheck.start_interval_seconds == 0.5
    assert web.stop_grace_seconds == 90 and web.healthcheck.retries_or_default == 3
    assert web.depends_on and web.depends_on["db"].condition == "service_healthy"
    assert web.depends_on["db"].restart is True and web.depends_on["db"].required is True
    assert web.ports and web.ports[1].host_ip == "127.0.0.1"
    assert web.ports[0].published_range() == (8080, 8080)
    assert web.volumes and web.volumes[3].tmpfs and web.volumes[3].tmpfs.size == 1048576
    assert web.environment == {"X": "1", "Y": None, "Z": ""} and web.env() == {"X": "1", "Z": ""}
    assert web.ulimits and web.ulimits["nproc"] == 65535
    assert web.build and web.build.context and web.build.context.endswith("/ctx")
    assert web.replicas == 1 and web.container_name == "webc"
    assert project.networks and project.networks["back"].external is True
    assert project.networks["front"].ipam and project.networks["front"].ipam.config
    assert project.networks["front"].ipam.config[0].subnet == "172.16.238.0/24"
    assert project.secrets and project.secrets["s1"].file
    assert project.extensions == {"x-top": 1}


def test_extension_and_unknown_keys_are_kept() -> None:
    tree = {"name": "p", "x-top": {"a": 1},
            "services": {"s": {"image": "i", "x-svc": [1], "future_key": "v",
                               "ports": [{"target": 80, "x-p": True}]}}}
    project = Project.from_tree(tree)
    assert project.to_tree() == tree
    assert project.services["s"].extensions == {"x-svc": [1]}
    assert project.services["s"].model_extra == {"x-svc": [1], "future_key": "v"}


def test_models_are_frozen_and_typed() -> None:
    project = full()
    with pytest.raises(ValidationError):
        project.services["web"].image = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Port.model_validate({"target": "eighty"})


def test_replicas_from_scale_or_deploy() -> None:
    project = Project.from_tree({"name": "p", "services": {
        "a": {"image": "i", "scale": 3}, "b": {"image": "i", "deploy": {"replicas": 2}},
        "c": {"image": "i"}, "d": {"image": "i", "scale": 0, "deploy": {"replicas": 5}}}})
    assert [project.services[n].replicas for n in "abcd"] == [3, 2, 1, 0]
    c = project.services["c"]
    assert c.stop_grace_seconds == 10 and c.healthcheck is None
    assert project.service_names() == ["a", "b", "c", "d"]


def test_unknown_service_is_a_config_error() -> None:
    from compose.errors import ConfigError

    with pytest.raises(ConfigError, match="no such service: nope"):
        full().service("nope")


def test_healthcheck_defaults_and_disable() -> None:
    from compose.model import Healthcheck

    check = Healthcheck.model_validate({"test": ["CMD", "true"]})
    assert (check.interval_seconds, check.timeout_seconds, check.start_period_seconds,
            check.start_interval_seconds, check.retries_or_default) == (30, 30, 0, 5, 3)
    assert not check.disabled
    assert Healthcheck.model_validate({"test": ["NONE"]}).disabled
    assert Healthcheck.model_validate({"disable": True}).disabled


def test_projects_loaded_by_the_real_loader_build_a_model(tmp_path: Path) -> None:
    from compose.loader import LoadOptions, load

    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx\n    ports: ['8080:80']\n"
        "    mem_limit: 512m\n    depends_on: [db]\n    healthcheck:\n"
        "      test: curl -f http://localhost\n      interval: 90s\n"
        "  db:\n    image: postgres\n    volumes: [data:/var/lib/postgresql/data]\n"
        "volumes:\n  data: {}\n")
    loaded = load(LoadOptions(project_name="demo", workdir=str(tmp_path),
                              environ={"PATH": "/usr/bin"}))
    project = loaded.model()
    assert project.to_tree() == loaded.data
    web = project.service("web")
    assert web.mem_limit == 536870912 and web.ports and web.ports[0].published == "8080"
    assert web.healthcheck and web.healthcheck.interval_seconds == 90
    assert project.graph().order() == ["db", "web"]
    assert project.volumes and project.volumes["data"].name == "demo_data"


def test_every_sample_project_builds_a_model() -> None:
    from compose.loader import LoadOptions, load

    samples = sorted(p for p in (Path(__file__).resolve().parents[2] / "samples").glob("*/")
                     if any((p / n).is_file() for n in ("compose.yaml", "compose.yml",
                                                         "docker-compose.yml")))
    for directory in samples:
        loaded = load(LoadOptions(workdir=str(directory), environ={"PATH": "/usr/bin"}))
        project = loaded.model()
        assert project.to_tree() == loaded.data, directory.name
        order = project.graph().order()
        assert sorted(order) == project.service_names()
        for name, service in project.services.items():
            assert all(order.index(dep) < order.index(name) for dep in service.dependencies)
