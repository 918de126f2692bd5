"""The real `pycompose` on the built-in engine: lifecycle without networking."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Project

pytestmark = [pytest.mark.root, pytest.mark.e2e]


def ps(p: Project, *args: str) -> list[dict[str, object]]:
    out = p.run("ps", "--format", "json", *args, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_unhealthy_dependency_fails_up_naming_it(project: Callable[[str], Project]) -> None:
    p = project("unhealthy")
    result = p.run("up", "-d")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "container unhealthy-db-1 is unhealthy"
    assert "Traceback" not in result.stderr
    # as Docker Compose: app's container is created up front but never started
    assert [(c["Service"], c["State"]) for c in ps(p, "-a")
            if c["Service"] == "app"] == [("app", "created")]


def test_idempotent_up_scale_orphans_and_volumes(project: Callable[[str], Project]) -> None:
    p = project("lifecycle")
    p.run("up", "-d", "--scale", "worker=3", check=True)
    first = {c["Name"]: c["ID"] for c in ps(p)}
    assert sorted(first) == ["lifecycle-app-1", "lifecycle-worker-1", "lifecycle-worker-2",
                             "lifecycle-worker-3"]
    again = p.run("up", "-d", "--scale", "worker=3", check=True)
    assert "Nothing to do: the project is up to date." in again.stderr
    assert {c["Name"]: c["ID"] for c in ps(p)} == first
    p.run("up", "-d", check=True)  # back to the model's one worker
    assert sorted(c["Name"] for c in ps(p)) == ["lifecycle-app-1", "lifecycle-worker-1"]
    assert {c["Name"]: c["ID"] for c in ps(p)}["lifecycle-worker-1"] == \
        first["lifecycle-worker-1"]

    compose = p.directory / "compose.yaml"
    compose.write_text(compose.read_text().split("  worker:")[0] + "volumes:\n  data: {}\n")
    result = p.run("up", "-d", check=True)
    assert "Found orphan containers (lifecycle-worker-1)" in result.stderr
    p.run("up", "-d", "--remove-orphans", check=True)
    assert [c["Name"] for c in ps(p)] == ["lifecycle-app-1"]

    engine = p.engine()
    p.run("down", "-t", "0", check=True)
    assert engine.container_list(all=True) == []
    assert [v.name for v in engine.volume_list()] == ["lifecycle_data"]
    p.run("up", "-d", check=True)
    assert p.run("exec", "-T", "app", "cat", "/data/hello").stdout == "started\n"
    p.run("down", "-v", "-t", "0", check=True)
    assert engine.volume_list() == []


def test_recreate_only_the_changed_service(project: Callable[[str], Project]) -> None:
    p = project("lifecycle")
    p.run("up", "-d", check=True)
    before = {c["Service"]: c["ID"] for c in ps(p)}
    compose = p.directory / "compose.yaml"
    compose.write_text(compose.read_text().replace('command: ["sleep", "1000"]',
                                                   'command: ["sleep", "1001"]'))
    dry = p.run("up", "-d", "--dry-run", check=True)
    assert dry.stdout == ("[] -> #1 service:worker:1, RecreateContainer, config hash changed\n"
                          "[1] -> #2 service:worker:1, StartContainer, recreated\n")
    p.run("up", "-d", check=True)
    after = {c["Service"]: c["ID"] for c in ps(p)}
    assert after["app"] == before["app"] and after["worker"] != before["worker"]


def test_run_rm_and_exec_exit_codes(project: Callable[[str], Project]) -> None:
    p = project("lifecycle")
    result = p.run("run", "--rm", "-T", "worker", "sh", "-c", "echo one-off; exit 4")
    assert result.returncode == 4, result.stderr
    assert result.stdout == "one-off\n"
    assert p.engine().container_list(all=True) == []  # no deps, and the run was removed
    p.run("up", "-d", "app", check=True)
    assert p.run("exec", "-T", "app", "sh", "-c", "exit 3").returncode == 3
    assert p.run("exec", "-T", "app", "true").returncode == 0
    missing = p.run("exec", "-T", "worker", "true")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'service "worker" is not running'


def test_abort_on_container_exit_and_exit_code_from(project: Callable[[str], Project]) -> None:
    p = project("abort")
    result = p.run("up", "--exit-code-from", "quick", "--no-color")
    assert result.returncode == 7, result.stderr
    assert "quick-1 | quick says hi" in result.stdout
    assert "quick-1 exited with code 7" in result.stdout
    assert "Aborting on container exit..." in result.stdout
    assert "long-1 exited with code 143" in result.stdout  # stopped by the abort
    assert {c["Service"]: c["State"] for c in ps(p, "-a")} == {"quick": "exited",
                                                               "long": "exited"}
    result = p.run("up", "--abort-on-container-exit")
    assert result.returncode == 0


def test_ctrl_c_stops_an_attached_up(project: Callable[[str], Project]) -> None:
    p = project("abort")
    (p.directory / "compose.yaml").write_text(
        (p.directory / "compose.yaml").read_text().replace("exit 7", "exec sleep 1000"))
    proc = p.popen("up", "--no-color")
    try:
        deadline = time.monotonic() + 30
        while len([c for c in ps(p) if c["State"] == "running"]) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Gracefully stopping..." in err and "Traceback" not in err
    assert "long-1  | long is up\n" in out  # prefixes padded to the widest name
    assert {c["State"] for c in ps(p, "-a")} == {"exited"}


def test_logs_follow_across_restart_and_recreation(project: Callable[[str], Project]) -> None:
    p = project("abort")
    p.run("up", "-d", "long", check=True)
    proc = p.popen("logs", "-f", "--no-color", "long")
    try:
        lines: list[str] = []
        assert proc.stdout is not None

        def read_until(count: int) -> None:
            while sum("long is up" in line for line in lines) < count:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                assert line, "logs -f ended early"
                lines.append(line)

        read_until(1)
        p.run("restart", "-t", "0", "long", check=True)
        read_until(2)
        p.run("up", "-d", "--force-recreate", "-t", "0", "long", check=True)
        read_until(3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lines == ["long-1 | long is up\n"] * 3


def test_second_ctrl_c_kills(project: Callable[[str], Project]) -> None:
    p = project("abort")
    # sleep as PID 1 without init ignores SIGTERM: a graceful stop would take 10 s
    (p.directory / "compose.yaml").write_text(
        "services:\n  stubborn:\n    image: pycompose-busybox\n    network_mode: none\n"
        '    command: ["sleep", "1000"]\n')
    proc = p.popen("up", "--no-color")
    try:
        deadline = time.monotonic() + 30
        while not [c for c in ps(p) if c["State"] == "running"]:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert took < 5, f"the second Ctrl-C took {took:.1f}s"
    assert "Container abort-stubborn-1  Killed" in err
    assert {c["State"] for c in ps(p, "-a")} == {"exited"}


def test_build_then_recreate_only_when_the_image_changed(
        project: Callable[[str], Project]) -> None:
    p = project("build")
    result = p.run("up", "-d", check=True)
    assert "Image build-app  Built" in result.stderr
    first = ps(p)[0]["ID"]
    assert p.run("exec", "-T", "app", "cat", "/version", check=True).stdout == "v1\n"
    p.run("up", "-d", "--build", check=True)  # the build cache gives the same image
    assert ps(p)[0]["ID"] == first
    dockerfile = p.directory / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("v1", "v2"))
    result = p.run("up", "-d", "--build", check=True)
    assert "Container build-app-1  Recreated" in result.stderr
    assert p.run("exec", "-T", "app", "cat", "/version", check=True).stdout == "v2\n"
    result = p.run("down", "--rmi", "local", "-t", "0", check=True)
    assert "Image build-app  Removed" in result.stderr
    assert [t for i in p.engine().image_list() for t in i.repo_tags
            if "build-app" in t] == []
