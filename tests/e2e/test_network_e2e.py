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


def test_sample_webapp_through_its_published_port(project: Callable[[str], Project]) -> None:
    import shutil
    import socket
    import urllib.request
    from pathlib import Path

    p = project("health")  # only for the fixture's root and cleanup; the sample replaces it
    sample = Path(__file__).resolve().parents[2] / "samples" / "webapp"
    shutil.rmtree(p.directory)
    shutil.copytree(sample, p.directory)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p.env["WEB_PORT"] = str(port)
    p.run("up", "-d", "--wait", "--wait-timeout", "60", check=True)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/cgi-bin/status", timeout=10) as r:
        body = r.read().decode()
    assert body.startswith("web -> api says: heartbeat "), body
    result = p.run("down", "-v", "-t", "0", check=True)
    assert "Volume health_data  Removed" in result.stderr  # the copy's directory is `health`
