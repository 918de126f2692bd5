"""Executing plans against the in-memory engine: order, parallelism, conditions."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from compose.apply import Executor, wait_ready
from compose.convert import ProjectInfo
from compose.errors import ApplyError
from compose.observe import observe
from compose.plan import DownOptions, UpOptions, plan_down, plan_up
from compose.progress import PlainRenderer, QuietRenderer
from engine.api import Container, Engine
from tests.support.memengine import MemEngine

HEALTH = {"test": ["CMD", "true"], "interval": "1s"}


def svc(**extra: Any) -> dict[str, Any]:
    return {"command": None, "entrypoint": None, "image": "busybox",
            "networks": {"default": None}, **extra}


def project(**services: dict[str, Any]) -> dict[str, Any]:
    return {"name": "demo", "networks": {"default": {"name": "demo_default", "ipam": {}}},
            "volumes": {"data": {"name": "demo_data"}}, "services": services}


@pytest.fixture
def engine() -> MemEngine:
    e = MemEngine()
    e.add_image("busybox:latest")
    return e


def up(engine: Engine, data: dict[str, Any], options: UpOptions | None = None,
       **executor: Any) -> None:
    plan = plan_up(data, observe(engine, data["name"]), options)
    Executor(engine, ProjectInfo(data["name"]), data, poll=0.01, **executor).run(plan)


def healthy_on_start(engine: MemEngine, c: Container) -> None:
    """Containers with a health check turn healthy right after they start."""
    if c.spec.healthcheck:
        threading.Timer(0.05, engine.set_health, (c.name, "healthy")).start()


def test_up_creates_everything_and_respects_dependency_order(engine: MemEngine) -> None:
    engine.on_start = healthy_on_start
    data = project(db=svc(healthcheck=HEALTH, volumes=[
        {"type": "volume", "source": "data", "target": "/d", "volume": {}}]),
        api=svc(depends_on={"db": {"condition": "service_healthy"}}),
        web=svc(depends_on={"api": {"condition": "service_started"}}))
    up(engine, data)
    assert engine.names() == ["demo-api-1", "demo-db-1", "demo-web-1"]
    starts = [ref for call, ref in engine.calls if call == "container_start"]
    assert starts == ["demo-db-1", "demo-api-1", "demo-web-1"]
    assert engine.calls[:2] in ([("network_create", "demo_default"),
                                 ("volume_create", "demo_data")],
                                [("volume_create", "demo_data"),
                                 ("network_create", "demo_default")])
    # api was created only once db was healthy
    api_created = engine.calls.index(("container_create", "demo-api-1"))
    assert engine.calls.index(("container_start", "demo-db-1")) < api_created
    # a second up finds nothing to do
    assert not plan_up(data, observe(engine, "demo"))


def test_unhealthy_dependency_fails_naming_it(engine: MemEngine) -> None:
    engine.on_start = lambda e, c: c.spec.healthcheck and threading.Timer(
        0.05, e.set_health, (c.name, "unhealthy")).start()
    data = project(db=svc(healthcheck=HEALTH),
                   api=svc(depends_on={"db": {"condition": "service_healthy"}}))
    with pytest.raises(ApplyError, match="container demo-db-1 is unhealthy"):
        up(engine, data)
    # as Compose: every container is created up front; only starting waits on conditions
    assert engine.container_inspect("demo-api-1").state.status == "created"


def test_exited_dependency_and_missing_healthcheck_fail(engine: MemEngine) -> None:
    engine.on_start = lambda e, c: c.name == "demo-db-1" and e.set_exited(c.name, 3)
    data = project(db=svc(healthcheck=HEALTH),
                   api=svc(depends_on={"db": {"condition": "service_healthy"}}))
    with pytest.raises(ApplyError, match=r"container demo-db-1 exited \(3\)"):
        up(engine, data)
    other = MemEngine()
    other.add_image("busybox")
    data = project(db=svc(), api=svc(depends_on={"db": {"condition": "service_healthy"}}))
    with pytest.raises(ApplyError, match="demo-db-1 has no healthcheck configured"):
        up(other, data)


def test_optional_dependency_failure_only_warns(engine: MemEngine) -> None:
    data = project(db=svc(), api=svc(depends_on={
        "db": {"condition": "service_healthy", "required": False}}))
    up(engine, data)
    assert engine.names() == ["demo-api-1", "demo-db-1"]


def test_completed_successfully(engine: MemEngine) -> None:
    engine.on_start = lambda e, c: c.name == "demo-init-1" and threading.Timer(
        0.05, e.set_exited, (c.name, 0)).start()
    data = project(init=svc(), app=svc(depends_on={
        "init": {"condition": "service_completed_successfully"}}))
    up(engine, data)
    assert engine.container_inspect("demo-app-1").state.status == "running"
    failing = MemEngine()
    failing.add_image("busybox")
    failing.on_start = lambda e, c: c.name == "demo-init-1" and e.set_exited(c.name, 2)
    with pytest.raises(ApplyError, match="service init didn't complete successfully: exit 2"):
        up(failing, data)


def test_levels_run_in_parallel(engine: MemEngine) -> None:
    barrier = threading.Barrier(3, timeout=5)
    engine.on_start = lambda e, c: barrier.wait()  # all three must be starting at once
    up(engine, project(a=svc(), b=svc(), c=svc()))
    assert len(engine.names()) == 3


def test_recreate_replaces_the_container_and_keeps_the_name(engine: MemEngine) -> None:
    up(engine, project(one=svc()))
    first = engine.container_inspect("demo-one-1").id
    up(engine, project(one=svc(command=["sleep", "1"])))
    again = engine.container_inspect("demo-one-1")
    assert again.id != first and again.spec.command == ("sleep", "1")
    assert again.state.status == "running"


def test_scale_and_orphans(engine: MemEngine) -> None:
    up(engine, project(one=svc(), two=svc()), UpOptions(scale={"one": 3}))
    assert engine.names() == ["demo-one-1", "demo-one-2", "demo-one-3", "demo-two-1"]
    up(engine, project(one=svc()), UpOptions(remove_orphans=True))
    assert engine.names() == ["demo-one-1"]


def test_wait_timeout_and_wait_ready(engine: MemEngine) -> None:
    data = project(db=svc(healthcheck=HEALTH),
                   api=svc(depends_on={"db": {"condition": "service_healthy"}}))
    with pytest.raises(ApplyError, match="timeout waiting for demo-db-1"):
        up(engine, data, wait_timeout=0.1)
    engine.set_health("demo-db-1", "healthy")
    up(engine, data)
    wait_ready(engine, "demo", {"db", "api"}, QuietRenderer(), timeout=1, poll=0.01)
    engine.set_health("demo-db-1", "unhealthy")
    with pytest.raises(ApplyError, match="demo-db-1 is unhealthy"):
        wait_ready(engine, "demo", {"db"}, QuietRenderer(), timeout=1, poll=0.01)


def test_first_failure_stops_new_work(engine: MemEngine) -> None:
    data = project(a=svc(image="missing"), b=svc(depends_on={"a": {}}))
    engine.pullable.clear()
    with pytest.raises(ApplyError, match="image:missing: pull access denied"):
        up(engine, data)
    assert engine.names() == []


def test_down_removes_containers_networks_and_volumes_with_v(engine: MemEngine,
                                                             capsys: Any) -> None:
    data = project(db=svc(volumes=[{"type": "volume", "source": "data", "target": "/d"}]),
                   web=svc(depends_on={"db": {}}))
    up(engine, data)
    plan = plan_down(data, observe(engine, "demo"))
    import sys

    Executor(engine, ProjectInfo("demo"), data, PlainRenderer(sys.stdout)).run(plan)
    assert engine.names() == [] and engine.network_list() == []
    assert [v.name for v in engine.volume_list()] == ["demo_data"]
    out = capsys.readouterr().out
    assert out.index("Container demo-web-1  Removed") < \
        out.index("Container demo-db-1  Removing")
    assert " Network demo_default  Removed" in out
    up(engine, data)
    plan = plan_down(data, observe(engine, "demo"), DownOptions(volumes=True))
    Executor(engine, ProjectInfo("demo"), data).run(plan)
    assert engine.volume_list() == []


def test_memengine_implements_the_engine_protocol() -> None:
    assert isinstance(MemEngine(), Engine)


def test_renderers() -> None:
    import io
    import json as jsonlib

    from compose.progress import renderer_for

    plain = io.StringIO()
    r = renderer_for("auto", plain)  # not a terminal: plain
    r.event("Container demo-a-1", "Starting")
    r.event("Container demo-a-1", "Started", done=True)
    r.warn("careful")
    assert plain.getvalue() == (" Container demo-a-1  Starting\n"
                                " Container demo-a-1  Started\nWARN[0000] careful\n")
    out = io.StringIO()
    r = renderer_for("json", out)
    r.event("Network demo_default", "Created", done=True)
    record = jsonlib.loads(out.getvalue())
    assert record["id"] == "Network demo_default" and record["status"] == "Done"
    assert record["text"] == "Created" and isinstance(record["elapsed"], float)
    tty = io.StringIO()
    r = renderer_for("tty", tty, "Running")
    r.event("Container demo-a-1", "Starting")
    r.event("Container demo-b-1", "Error", error=True, text="boom")
    r.event("Container demo-a-1", "Started", done=True)
    r.close()
    last = tty.getvalue().split("\x1b[3F")[-1]
    lines = [line.removeprefix("\x1b[2K") for line in last.splitlines()]
    assert lines[0] == "[+] Running 2/2"
    assert lines[1].startswith(" ✔ Container demo-a-1  Started") and lines[1].endswith("s")
    assert lines[2].startswith(" ✘ Container demo-b-1  Error boom")
    quiet = io.StringIO()
    renderer_for("quiet", quiet).event("x", "y", done=True)
    assert quiet.getvalue() == ""


def test_pull_and_build_report_progress(engine: MemEngine, capsys: Any) -> None:
    import sys

    engine.pullable.add("redis")
    data = project(cache=svc(image="redis"),
                   app={"build": {"context": "/src"}, "command": None, "entrypoint": None,
                        "networks": {"default": None}})
    up(engine, data, renderer=PlainRenderer(sys.stdout))
    out = capsys.readouterr().out
    assert " Image redis  Pulling sha256:0123456789ab Pull complete\n" in out
    assert " Image redis  Pulled\n" in out
    assert " Image demo-app  Building #1 DONE FROM busybox\n" in out
    assert engine.container_inspect("demo-app-1").image == "demo-app"
    engine.build_failures.add("demo-app")
    with pytest.raises(ApplyError, match="image:demo-app: Dockerfile:1: RUN false"):
        up(engine, data, UpOptions(build="always"))


def test_image_label_carries_the_image_id(engine: MemEngine) -> None:
    up(engine, project(one=svc()))
    c = engine.container_inspect("demo-one-1")
    assert c.image_id.startswith("sha256:")
    assert c.labels["com.docker.compose.image"] == c.image_id


def test_a_failure_ends_waits_in_flight_instead_of_hanging(engine: MemEngine) -> None:
    def on_start(e: MemEngine, c: Container) -> None:
        if c.name == "demo-bad-1":
            import time

            time.sleep(0.2)  # the wait on db is polling by now
            raise RuntimeError("start failed")

    engine.on_start = on_start  # db never turns healthy: only the failure can end the run
    data = project(db=svc(healthcheck=HEALTH), bad=svc(),
                   api=svc(depends_on={"db": {"condition": "service_healthy"}}))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            up(engine, data)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        worker.join(timeout=5)
        assert not worker.is_alive(), "up kept waiting on db after another service failed"
        assert len(errors) == 1 and "start failed" in str(errors[0])
    finally:
        engine.set_health("demo-db-1", "healthy")  # lets a hung run end
        worker.join(timeout=5)


def test_down_v_keeps_a_volume_still_in_use_with_a_warning(engine: MemEngine) -> None:
    import io

    from engine.api import ContainerSpec, Mount

    data = project(db=svc(volumes=[{"type": "volume", "source": "data", "target": "/d"}]))
    up(engine, data)
    engine.container_create(ContainerSpec(image="busybox", name="other",
                                          mounts=(Mount("volume", "/d", "demo_data"),)))
    out = io.StringIO()
    renderer = PlainRenderer(out)
    plan = plan_down(data, observe(engine, "demo"), DownOptions(volumes=True))
    Executor(engine, ProjectInfo("demo"), data, renderer).run(plan)  # as Compose: no error
    assert engine.names() == ["other"] and engine.network_list() == []
    assert [v.name for v in engine.volume_list()] == ["demo_data"]
    assert " Volume demo_data  Resource is still in use" in out.getvalue()
