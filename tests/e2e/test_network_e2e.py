"""The real `pycompose` on the built-in engine with bridges and service-name DNS."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Project

pytestmark = [pytest.mark.root, pytest.mark.e2e]


def test_health_gated_start_and_service_dns(project: Callable[[str], Project]) -> None:
    p = project("health")
    result = p.run("up", "-d", check=True)
    err = result.stderr
    assert err.index("Container health-db-1  Healthy") < \
        err.index("Container health-web-1  Starting")
    # web fetched from db by name at its very start, which only works if db was serving
    assert p.run("exec", "-T", "web", "cat", "/tmp/seen", check=True).stdout == "db-ok\n"
    states = {json.loads(line)["Service"]: json.loads(line)["Status"]
              for line in p.run("ps", "--format", "json", check=True).stdout.splitlines()}
    assert states["db"].endswith("(healthy)") and states["web"].startswith("Up")
    result = p.run("down", "-t", "0", check=True)
    assert "Network health_default  Removed" in result.stderr
