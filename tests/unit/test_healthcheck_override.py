"""A service `healthcheck:` without `test` keeps the image's test and overrides only the
timings it gives (as Docker merges them); without any test at all there is no check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from compose.apply import has_healthcheck, healthy_or_error
from compose.convert import ProjectInfo, container_spec
from compose.errors import ApplyError
from engine.api import Healthcheck
from tests.support.memengine import MemEngine

INFO = ProjectInfo("demo", "/src", ("/src/compose.yaml",), (), "0.1.0")


def project(**services: dict[str, Any]) -> dict[str, Any]:
    return {"name": "demo", "networks": {"default": {"name": "demo_default", "ipam": {}}},
            "volumes": {}, "services": services}


def svc(**extra: Any) -> dict[str, Any]:
    return {"command": None, "entrypoint": None, "image": "busybox",
            "networks": {"default": None}, **extra}


def test_timings_without_test_keep_the_image_test() -> None:
    data = project(db=svc(healthcheck={"interval": "1s", "retries": 5}))
    spec = container_spec(INFO, data, "db", 1)
    assert spec.healthcheck == Healthcheck(test=(), interval=1.0, retries=5)


def test_timings_over_an_image_without_test_are_no_healthcheck() -> None:
    engine = MemEngine()
    engine.add_image("busybox")
    spec = container_spec(INFO, project(db=svc(healthcheck={"interval": "1s"})), "db", 1)
    db = engine.container_create(replace(spec, networks=()))
    assert db.spec.healthcheck is not None and not has_healthcheck(engine, db)
    with pytest.raises(ApplyError, match="has no healthcheck configured"):
        healthy_or_error(replace(db, state=replace(db.state, status="running", health=None)),
                         has_healthcheck(engine, db))
