"""`docker inspect` shape of container records, and the bundle's spec round trip."""

from __future__ import annotations

import json

from engine.api import (
    Container,
    ContainerSpec,
    ContainerState,
    Health,
    Healthcheck,
    HealthLog,
    Mount,
    NetworkAttachment,
    PortBinding,
    PublishedPort,
    RestartPolicy,
    Ulimit,
)
from engine.runtime.bundle import spec_from_dict, spec_to_dict


def record() -> Container:
    spec = ContainerSpec(
        image="busybox", name="web", command=("httpd", "-f"), env=(("A", "1"),),
        labels=(("com.docker.compose.service", "web"),), init=True,
        restart=RestartPolicy("on-failure", 3), healthcheck=Healthcheck(("CMD", "true"), 0.5),
        mounts=(Mount("volume", "/data", "vol"), Mount("bind", "/etc/x", "/src", True)),
        ports=(PortBinding(80, host_port="8080"),), ulimits=(Ulimit("nofile", 10, 20),))
    state = ContainerState(
        status="running", pid=42, restart_count=2,
        health=Health("healthy", 0, (HealthLog("s", "e", 0, "ok\n"),)))
    return Container(
        id="a" * 64, name="web", created="2026-01-01T00:00:00Z", image="busybox",
        image_id="sha256:" + "b" * 64, spec=spec, state=state,
        networks=(NetworkAttachment("p_default", "n" * 64, "10.1.0.2", 24, "10.1.0.1",
                                    "02:42:0a:01:00:02", ("web",)),),
        ports=(PublishedPort(80, "tcp", "0.0.0.0", 8080),))


def test_inspect_shape() -> None:
    data = json.loads(json.dumps(record().inspect()))
    assert data["Name"] == "/web" and data["Path"] == "httpd" and data["Args"] == ["-f"]
    assert data["State"]["Running"] and data["State"]["Pid"] == 42
    assert data["State"]["Health"] == {"Status": "healthy", "FailingStreak": 0, "Log": [
        {"Start": "s", "End": "e", "ExitCode": 0, "Output": "ok\n"}]}
    assert data["RestartCount"] == 2
    assert data["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                   "MaximumRetryCount": 3}
    assert data["Config"]["Healthcheck"]["Interval"] == 500_000_000
    assert data["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0",
                                                           "HostPort": "8080"}]
    assert data["NetworkSettings"]["Networks"]["p_default"]["IPAddress"] == "10.1.0.2"
    assert [m["Type"] for m in data["Mounts"]] == ["volume", "bind"]
    assert data["Mounts"][1]["RW"] is False


def test_spec_round_trips_through_json() -> None:
    spec = record().spec
    assert spec_from_dict(json.loads(json.dumps(spec_to_dict(spec)))) == spec
