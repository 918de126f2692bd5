"""Whole plans as text: literal canonical projects + observed states -> golden plans."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from compose.errors import CycleError, PlanError
from compose.labels import service_hash
from compose.observe import ObservedContainer, ObservedState
from compose.plan import DownOptions, UpOptions, normalize_ref, plan_down, plan_up

IMAGES = {"busybox:latest": "sha256:bb"}


def svc(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"command": None, "entrypoint": None, "image": "busybox",
                            "networks": {"default": None}}
    base.update(extra)
    return base


def project(**services: dict[str, Any]) -> dict[str, Any]:
    return {"name": "demo", "networks": {"default": {"name": "demo_default", "ipam": {}}},
            "services": services,
            "volumes": {"data": {"name": "demo_data"}}}


WEB_API_DB = project(
    db=svc(healthcheck={"test": ["CMD", "true"], "interval": "1s"},
           volumes=[{"type": "volume", "source": "data", "target": "/data", "volume": {}}]),
    api=svc(depends_on={"db": {"condition": "service_healthy", "required": True,
                               "restart": True}}),
    web=svc(depends_on={"api": {"condition": "service_started", "required": True}},
            ports=[{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}]),
)


def running(data: dict[str, Any], *, status: str = "running",
            **numbers: int) -> ObservedState:
    """Every service of `data` up to date with `numbers[service]` (default 1) replicas."""
    containers = tuple(
        ObservedContainer(name=f"demo-{name}-{n}", service=name, number=n,
                          config_hash=service_hash(s), status=status, image_id="sha256:bb")
        for name, s in data["services"].items() for n in range(1, numbers.get(name, 1) + 1))
    return ObservedState("demo", containers, frozenset({"demo_default"}),
                         frozenset({"demo_data"}), dict(IMAGES),
                         owned_networks=frozenset({"demo_default"}),
                         owned_volumes=frozenset({"demo_data"}))


def test_fresh_project_plans_everything_in_dependency_order() -> None:
    observed = ObservedState("demo", images=dict(IMAGES))
    assert str(plan_up(WEB_API_DB, observed)) == """\
[] -> #1 network:default, CreateNetwork, not found
[] -> #2 volume:data, CreateVolume, not found
[1,2] -> #3 service:db:1, CreateContainer, no existing container
[3] -> #4 service:db:1, StartContainer, created
[4] -> #5 service:db, WaitHealthy, required by api
[1,3] -> #6 service:api:1, CreateContainer, no existing container
[5,6] -> #7 service:api:1, StartContainer, created
[1,6] -> #8 service:web:1, CreateContainer, no existing container
[7,8] -> #9 service:web:1, StartContainer, created
"""


def test_nothing_changed_gives_an_empty_plan_and_says_so() -> None:
    plan = plan_up(WEB_API_DB, running(WEB_API_DB))
    assert str(plan) == ""
    assert not plan
    assert plan.describe() == "Nothing to do: the project is up to date.\n"


def test_one_changed_service_is_recreated_and_restart_dependents_restarted() -> None:
    changed = project(**{**WEB_API_DB["services"],
                         "db": {**WEB_API_DB["services"]["db"], "environment": {"X": "1"}}})
    assert str(plan_up(changed, running(WEB_API_DB))) == """\
[] -> #1 service:db:1, RecreateContainer, config hash changed
[1] -> #2 service:db:1, StartContainer, recreated
[2] -> #3 service:db, WaitHealthy, required by api
[3] -> #4 service:api:1, RestartContainer, dependency recreated (depends_on.restart)
"""


def test_change_of_a_leaf_touches_only_it() -> None:
    changed = project(**{**WEB_API_DB["services"],
                         "web": {**WEB_API_DB["services"]["web"], "command": ["httpd"]}})
    assert str(plan_up(changed, running(WEB_API_DB))) == """\
[] -> #1 service:web:1, RecreateContainer, config hash changed
[1] -> #2 service:web:1, StartContainer, recreated
"""


def test_changes_outside_the_hash_do_not_recreate() -> None:
    changed = project(**{**WEB_API_DB["services"],
                         "web": {**WEB_API_DB["services"]["web"], "profiles": ["x"],
                                 "pull_policy": "missing"}})
    assert str(plan_up(changed, running(WEB_API_DB))) == ""


def test_image_change_recreates() -> None:
    observed = running(WEB_API_DB)
    observed.images["busybox:latest"] = "sha256:new"
    text = str(plan_up(WEB_API_DB, observed, UpOptions(services=("db",))))
    assert text == """\
[] -> #1 service:db:1, RecreateContainer, image changed
[1] -> #2 service:db:1, StartContainer, recreated
"""


def test_stopped_containers_are_started_without_recreation() -> None:
    data = project(one=svc())
    assert str(plan_up(data, running(data, status="exited"))) == \
        "[] -> #1 service:one:1, StartContainer, container is exited\n"


def test_scale_up_adds_replicas_without_touching_the_first() -> None:
    data = project(one=svc())
    plan = plan_up(data, running(data), UpOptions(scale={"one": 3}))
    assert str(plan) == """\
[] -> #1 service:one:2, CreateContainer, scale up to 3
[1] -> #2 service:one:2, StartContainer, created
[] -> #3 service:one:3, CreateContainer, scale up to 3
[3] -> #4 service:one:3, StartContainer, created
"""


def test_scale_down_removes_highest_numbers() -> None:
    data = project(one=svc(scale=1))
    assert str(plan_up(data, running(data, one=3))) == """\
[] -> #1 service:one:2, RemoveContainer, scale down to 1
[] -> #2 service:one:3, RemoveContainer, scale down to 1
"""


def test_scale_down_drops_stale_replicas_first_and_reuses_numbers() -> None:
    data = project(one=svc(deploy={"replicas": 2}))
    observed = running(data, one=3)
    stale = ObservedContainer("demo-one-1", "one", 1, "old", "running", image_id="sha256:bb")
    observed = ObservedState("demo", (stale,) + observed.containers[1:], observed.networks,
                             observed.volumes, observed.images)
    assert str(plan_up(data, observed)) == \
        "[] -> #1 service:one:1, RemoveContainer, scale down to 2\n"
    gone = ObservedState("demo", observed.containers[2:], observed.networks,
                         observed.volumes, observed.images)
    assert str(plan_up(data, gone)) == """\
[] -> #1 service:one:1, CreateContainer, scale up to 2
[1] -> #2 service:one:1, StartContainer, created
"""


def test_force_recreate_and_no_recreate() -> None:
    data = project(one=svc())
    assert str(plan_up(data, running(data), UpOptions(recreate="force"))) == """\
[] -> #1 service:one:1, RecreateContainer, --force-recreate
[1] -> #2 service:one:1, StartContainer, recreated
"""
    changed = project(one=svc(command=["true"]))
    assert str(plan_up(changed, running(data), UpOptions(recreate="never"))) == ""
    assert str(plan_up(changed, running(data, status="exited"),
                       UpOptions(recreate="never"))) == \
        "[] -> #1 service:one:1, StartContainer, container is exited\n"


def test_orphans_warn_or_are_removed() -> None:
    data = project(one=svc())
    observed = running(project(one=svc(), gone=svc()))
    plan = plan_up(data, observed)
    assert str(plan) == ""
    assert plan.warnings[0].startswith("Found orphan containers (demo-gone-1)")
    assert plan_up(data, observed, UpOptions(ignore_orphans=True)).warnings == ()
    plan = plan_up(data, observed, UpOptions(remove_orphans=True))
    assert str(plan) == ("[] -> #1 container:demo-gone-1, RemoveOrphan, "
                         "orphan: service gone is not in the project\n")


def test_oneoff_containers_are_not_orphans() -> None:
    data = project(one=svc())
    observed = running(data)
    run = ObservedContainer("demo-one-run-abc", "one", 1, "h", oneoff=True)
    observed = ObservedState("demo", observed.containers + (run,), observed.networks,
                             observed.volumes, observed.images)
    assert not plan_up(data, observed).warnings


def test_no_deps_and_targets() -> None:
    observed = ObservedState("demo", images=dict(IMAGES))
    text = str(plan_up(WEB_API_DB, observed, UpOptions(services=("api",), no_deps=True)))
    assert text == """\
[] -> #1 network:default, CreateNetwork, not found
[1] -> #2 service:api:1, CreateContainer, no existing container
[2] -> #3 service:api:1, StartContainer, created
"""
    text = str(plan_up(WEB_API_DB, observed, UpOptions(services=("api",), no_start=True)))
    assert "service:web" not in text and "StartContainer" not in text
    assert "service:db:1, CreateContainer" in text


def test_completed_successfully_and_optional_dependencies() -> None:
    data = project(init=svc(), app=svc(depends_on={
        "init": {"condition": "service_completed_successfully", "required": True},
        "extra": {"condition": "service_started", "required": False}}))
    plan = plan_up(data, ObservedState("demo", frozenset(), frozenset({"demo_default"}),
                                       images=dict(IMAGES)))
    assert str(plan) == """\
[] -> #1 service:init:1, CreateContainer, no existing container
[1] -> #2 service:init:1, StartContainer, created
[2] -> #3 service:init, WaitCompleted, required by app
[1] -> #4 service:app:1, CreateContainer, no existing container
[3,4] -> #5 service:app:1, StartContainer, created
"""
    assert plan.warnings == ("service app: optional dependency extra is not enabled",)


def test_images_are_pulled_or_built_once() -> None:
    data = project(a=svc(image="redis"), b=svc(image="redis"),
                   c={"build": {"context": "/src", "dockerfile": "Dockerfile"},
                      "command": None, "entrypoint": None, "networks": {"default": None}})
    observed = ObservedState("demo", (), frozenset({"demo_default"}))
    text = str(plan_up(data, observed, UpOptions(no_start=True)))
    assert text == """\
[] -> #1 image:redis, PullImage, image not found
[] -> #2 image:demo-c, BuildImage, image not found
[1] -> #3 service:a:1, CreateContainer, no existing container
[1] -> #4 service:b:1, CreateContainer, no existing container
[2] -> #5 service:c:1, CreateContainer, no existing container
"""
    with pytest.raises(PlanError, match="pull policy is never"):
        plan_up(data, observed, UpOptions(pull="never"))
    with pytest.raises(PlanError, match="--no-build"):
        plan_up(data, observed, UpOptions(build="never", services=("c",)))


def test_errors_name_the_problem() -> None:
    with pytest.raises(PlanError, match="no such service: nope"):
        plan_up(WEB_API_DB, running(WEB_API_DB), UpOptions(services=("nope",)))
    with pytest.raises(PlanError, match="cannot be scaled"):
        plan_up(project(one=svc(container_name="x")), ObservedState("demo"),
                UpOptions(scale={"one": 2}))
    with pytest.raises(CycleError, match="dependency cycle detected: a -> b -> a"):
        plan_up(project(a=svc(depends_on={"b": {}}), b=svc(depends_on={"a": {}})),
                ObservedState("demo"))
    ext = project(one=svc())
    ext["networks"]["default"]["external"] = True
    with pytest.raises(PlanError, match="network demo_default declared as external"):
        plan_up(ext, ObservedState("demo", images=dict(IMAGES)))


def test_down_removes_dependents_first_and_keeps_volumes() -> None:
    assert str(plan_down(WEB_API_DB, running(WEB_API_DB))) == """\
[] -> #1 service:web:1, RemoveContainer, down
[1] -> #2 service:api:1, RemoveContainer, down
[2] -> #3 service:db:1, RemoveContainer, down
[1,2,3] -> #4 network:default, RemoveNetwork, down
"""
    text = str(plan_down(WEB_API_DB, running(WEB_API_DB), DownOptions(volumes=True)))
    assert text.endswith("[1,2,3] -> #5 volume:data, RemoveVolume, down --volumes\n")


def test_down_keeps_a_same_named_network_that_is_not_the_projects() -> None:
    shared = project(one=svc())
    shared["networks"]["default"]["name"] = "shared"
    observed = replace(running(shared), networks=frozenset({"shared"}),
                       owned_networks=frozenset())
    assert str(plan_down(shared, observed)) == """\
[] -> #1 service:one:1, RemoveContainer, down
"""


def test_down_v_removes_the_services_anonymous_volumes_but_not_the_orphans() -> None:
    observed = running(project(one=svc(), gone=svc()))
    plan = plan_down(project(one=svc()), observed,
                     DownOptions(volumes=True, remove_orphans=True))
    removals = {op.target: op.remove_volumes for op in plan.operations if op.target.startswith(
        "demo-")}
    assert removals == {"demo-one-1": True, "demo-gone-1": False}


def test_a_wait_is_optional_only_when_every_dependent_says_so() -> None:
    health = {"test": ["CMD", "true"]}
    data = project(db=svc(healthcheck=health),
                   a=svc(depends_on={"db": {"condition": "service_healthy", "required": False}}),
                   b=svc(depends_on={"db": {"condition": "service_healthy", "required": True}}))
    plan = plan_up(data, ObservedState("demo", images=dict(IMAGES)))
    [wait] = [op for op in plan.operations if op.type.name == "WAIT_HEALTHY"]
    assert wait.cause == "required by a, b" and wait.required
    optional = project(db=svc(healthcheck=health), a=svc(
        depends_on={"db": {"condition": "service_healthy", "required": False}}))
    plan = plan_up(optional, ObservedState("demo", images=dict(IMAGES)))
    assert [op.required for op in plan.operations if op.type.name == "WAIT_HEALTHY"] == [False]


def test_down_without_a_model_removes_what_carries_the_label() -> None:
    observed = running(project(one=svc(), two=svc()))
    labelled = tuple(replace(c, depends_on=("one",)) if c.service == "two" else c
                     for c in observed.containers)
    observed = ObservedState("demo", labelled, observed.networks, observed.volumes,
                             observed.images, owned_networks=frozenset({"demo_default"}))
    assert str(plan_down(None, observed)) == """\
[] -> #1 service:two:1, RemoveContainer, down
[1] -> #2 service:one:1, RemoveContainer, down
[1,2] -> #3 network:demo_default, RemoveNetwork, down
"""


def test_reference_normalisation() -> None:
    assert normalize_ref("busybox") == "docker.io/library/busybox:latest"
    assert normalize_ref("me/app:1") == "docker.io/me/app:1"
    assert normalize_ref("localhost:5000/app") == "localhost:5000/app:latest"
    assert normalize_ref("reg.io/a/b@sha256:00") == "reg.io/a/b@sha256:00"


def test_only_keeps_a_renumbered_sub_plan() -> None:
    from compose.plan import OpType

    data = project(a=svc(image="redis"), b=svc(depends_on={"a": {}}))
    plan = plan_up(data, ObservedState("demo", (), frozenset({"demo_default"}), images=IMAGES))
    assert str(plan.only(OpType.PULL_IMAGE)) == "[] -> #1 image:redis, PullImage, image not found\n"
    assert str(plan.only(OpType.START_CONTAINER)) == """\
[] -> #1 service:a:1, StartContainer, created
[1] -> #2 service:b:1, StartContainer, created
"""


def test_containers_are_created_up_front_and_only_starts_wait() -> None:
    """As Compose: a dependent's container is created once its dependency's container
    exists (new or recreated: it may join its namespaces); only its start waits."""
    data = project(db=svc(healthcheck={"test": ["CMD", "true"], "interval": "1s"}),
                   app=svc(network_mode="service:db",
                           depends_on={"db": {"condition": "service_healthy",
                                              "required": True}}))
    changed = project(db={**data["services"]["db"], "environment": {"X": "1"}},
                      app=data["services"]["app"])
    observed = running(data)
    observed = replace(observed, containers=tuple(c for c in observed.containers
                                                  if c.service == "db"))
    assert str(plan_up(changed, observed)) == """\
[] -> #1 service:db:1, RecreateContainer, config hash changed
[1] -> #2 service:db:1, StartContainer, recreated
[2] -> #3 service:db, WaitHealthy, required by app
[1] -> #4 service:app:1, CreateContainer, no existing container
[3,4] -> #5 service:app:1, StartContainer, created
"""
