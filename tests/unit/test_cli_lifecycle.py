"""Lifecycle commands in-process, with the real loader and the in-memory engine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import Container, ExecSpec
from tests.support.cli_harness import run_cli, serve_project
from tests.support.memengine import MemEngine

COMPOSE = """\
services:
  db:
    image: busybox
    command: sleep 1000
    healthcheck: {test: ["CMD", "true"], interval: 1s}
    volumes: [data:/data]
  web:
    image: busybox
    command: httpd -f -p 80
    ports: ["8080:80"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data: {}
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemEngine]:
    """A project directory `demo` as cwd, and the in-memory engine behind the CLI."""
    mem = MemEngine()
    mem.add_image("busybox:latest")
    mem.on_start = lambda e, c: c.spec.healthcheck and e.set_health(c.name, "healthy")
    serve_project(monkeypatch, tmp_path / "demo", COMPOSE, mem)
    yield mem


cli = run_cli


def test_up_ps_and_idempotent_second_up(engine: MemEngine, capsys: pytest.CaptureFixture[str]) \
        -> None:
    code, out, err = cli(capsys, "up", "-d")
    assert code == 0, err
    assert " Container demo-db-1  Healthy" in err
    assert err.index("Container demo-db-1  Healthy") < err.index("Container demo-web-1  Starting")
    assert engine.names() == ["demo-db-1", "demo-web-1"]
    code, out, err = cli(capsys, "up", "-d")
    assert code == 0 and "Nothing to do: the project is up to date." in err
    assert " Container demo-web-1  Running" in err
    code, out, _ = cli(capsys, "ps")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS",
                                "PORTS"]
    assert lines[1].startswith("demo-db-1") and "(healthy)" in lines[1]
    assert "0.0.0.0:8080->80/tcp" in lines[2]
    _, out, _ = cli(capsys, "ps", "--services")
    assert out == "db\nweb\n"
    _, out, _ = cli(capsys, "ps", "-q")
    assert out.split() == [engine.container_inspect(n).id for n in ("demo-db-1", "demo-web-1")]
    _, out, _ = cli(capsys, "ps", "--format", "json", "web")
    record = json.loads(out)
    assert record["Name"] == "demo-web-1" and record["Service"] == "web"
    assert record["State"] == "running" and record["Publishers"][0]["PublishedPort"] == 8080


def test_dry_run_prints_the_plan_and_changes_nothing(engine: MemEngine,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "up", "--dry-run", "-d")
    assert code == 0
    assert out.splitlines()[0] == "[] -> #1 network:default, CreateNetwork, not found"
    assert "[4] -> #5 service:db, WaitHealthy, required by web" in out
    assert engine.names() == [] and engine.network_list() == []


def test_changed_service_alone_is_recreated(engine: MemEngine,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    db_id = engine.container_inspect("demo-db-1").id
    Path("compose.yaml").write_text(COMPOSE.replace("httpd -f -p 80", "httpd -f -p 81"))
    code, out, _ = cli(capsys, "up", "-d", "--dry-run")
    assert out == ("[] -> #1 service:db, WaitHealthy, required by web\n"
                   "[1] -> #2 service:web:1, RecreateContainer, config hash changed\n"
                   "[2] -> #3 service:web:1, StartContainer, recreated\n")
    code, _, err = cli(capsys, "up", "-d")
    assert code == 0 and "Container demo-web-1  Recreated" in err
    assert engine.container_inspect("demo-db-1").id == db_id


def test_unhealthy_dependency_fails_up_naming_it(engine: MemEngine,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    engine.on_start = lambda e, c: c.spec.healthcheck and e.set_health(c.name, "unhealthy")
    code, _, err = cli(capsys, "up", "-d")
    assert code == 1
    assert err.splitlines()[-1] == "container demo-db-1 is unhealthy"
    assert "Traceback" not in err


def test_scale_orphans_and_down(engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d", "--scale", "web=3")
    assert engine.names() == ["demo-db-1", "demo-web-1", "demo-web-2", "demo-web-3"]
    cli(capsys, "scale", "web=1")
    assert engine.names() == ["demo-db-1", "demo-web-1"]
    Path("compose.yaml").write_text(COMPOSE.split("  web:")[0] + "volumes:\n  data: {}\n")
    code, _, err = cli(capsys, "up", "-d")
    assert "Found orphan containers (demo-web-1)" in err
    cli(capsys, "up", "-d", "--remove-orphans")
    assert engine.names() == ["demo-db-1"]
    code, _, err = cli(capsys, "down")
    assert code == 0 and engine.names() == [] and engine.network_list() == []
    assert [v.name for v in engine.volume_list()] == ["demo_data"]
    cli(capsys, "up", "-d")
    cli(capsys, "down", "-v")
    assert engine.volume_list() == []
    code, _, err = cli(capsys, "down")
    assert code == 0 and 'No resource found to remove for project "demo"' in err


def test_stop_start_restart_kill_pause(engine: MemEngine,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    cli(capsys, "stop")
    assert [engine.container_inspect(n).state.status for n in engine.names()] == \
        ["exited", "exited"]
    stops = [r for call, r in engine.calls if call == "container_stop"]
    assert stops[-2:] == ["demo-web-1", "demo-db-1"]  # dependents first
    code, _, err = cli(capsys, "start")
    assert code == 0 and "Container demo-db-1  Started" in err
    starts = [r for call, r in engine.calls if call == "container_start"]
    assert starts[-2:] == ["demo-db-1", "demo-web-1"]
    cli(capsys, "restart", "web")
    assert engine.container_inspect("demo-web-1").state.restart_count == 1
    cli(capsys, "pause", "web")
    assert engine.container_inspect("demo-web-1").state.status == "paused"
    code, _, err = cli(capsys, "pause", "web")
    assert code == 1 and "already paused" in err
    cli(capsys, "unpause", "web")
    assert engine.container_inspect("demo-web-1").state.status == "running"
    cli(capsys, "kill", "-s", "SIGTERM", "web")
    assert engine.container_inspect("demo-web-1").state.exit_code == 143
    code, _, err = cli(capsys, "rm", "-f")
    assert code == 0 and engine.names() == ["demo-db-1"]
    cli(capsys, "rm", "-f", "-s", "db")
    assert engine.names() == []


def test_logs_prefixes_tail_and_no_prefix(engine: MemEngine,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    engine.add_log("demo-web-1", "GET /\n")
    engine.add_log("demo-web-1", "GET /x\n")
    engine.add_log("demo-db-1", "ready\n")
    code, out, _ = cli(capsys, "logs")
    assert out == "db-1  | ready\nweb-1 | GET /\nweb-1 | GET /x\n"
    _, out, _ = cli(capsys, "logs", "--no-log-prefix", "--tail", "1", "web")
    assert out == "GET /x\n"
    code, _, err = cli(capsys, "logs", "--tail", "many")
    assert code == 1 and "invalid value for --tail" in err


def test_logs_negative_tail_shows_everything_as_docker(
        engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    engine.add_log("demo-web-1", "GET /\n")
    engine.add_log("demo-web-1", "GET /x\n")
    _, out, _ = cli(capsys, "logs", "--no-log-prefix", "--tail", "-1", "web")
    assert out == "GET /\nGET /x\n"


def test_logs_follow_continues_across_recreation(engine: MemEngine) -> None:
    import io

    from compose.logmux import LogMux

    engine.add_image("busybox")
    out = io.StringIO()
    ctx_engine = engine
    cli_done = threading.Event()
    mux = LogMux(ctx_engine, out, color=False)

    def listed() -> list[Container]:
        return ctx_engine.container_list(all=True)

    from engine.api import ContainerSpec

    first = engine.container_create(ContainerSpec("busybox", "demo-a-1", labels=(
        ("com.docker.compose.project", "demo"),)))
    engine.container_start(first.id)
    engine.add_log(first.id, "one\n")
    watcher = threading.Thread(target=lambda: (mux.watch(listed), cli_done.set()))
    watcher.start()
    try:
        _wait_for(lambda: "one" in out.getvalue())
        engine.container_stop(first.id)
        engine.container_remove(first.id)
        second = engine.container_create(ContainerSpec("busybox", "demo-a-1", labels=(
            ("com.docker.compose.project", "demo"),)))
        engine.container_start(second.id)
        engine.add_log(second.id, "two\n")
        _wait_for(lambda: "two" in out.getvalue())
        engine.container_restart(second.id)
        engine.add_log(second.id, "three\n")
        _wait_for(lambda: "three" in out.getvalue())
    finally:
        mux.stop()
        watcher.join(5)
    assert out.getvalue() == "a-1 | one\na-1 | two\na-1 | three\n"


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_exec_propagates_exit_codes_and_env(engine: MemEngine,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[ExecSpec] = []

    def handler(c: Container, spec: ExecSpec) -> int:
        seen.append(spec)
        return int(spec.cmd[-1])

    engine.exec_handler = handler
    cli(capsys, "up", "-d")
    code, _, _ = cli(capsys, "exec", "-T", "-e", "A=1", "-u", "app", "web", "sh", "-c", "exit", "7")
    assert code == 7
    assert seen[0].cmd == ("sh", "-c", "exit", "7") and seen[0].env == (("A", "1"),)
    assert seen[0].user == "app" and not seen[0].tty
    cli(capsys, "stop", "web")
    code, _, err = cli(capsys, "exec", "-T", "web", "true")
    assert code == 1 and err.strip() == 'service "web" is not running'


def test_run_rm_leaves_nothing_and_returns_the_exit_code(
        engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    def finish(e: MemEngine, c: Container) -> None:
        if "-run-" in c.name:
            e.add_log(c.id, "hello from run\n")
            e.set_exited(c.id, 3)
        elif c.spec.healthcheck:
            e.set_health(c.name, "healthy")

    engine.on_start = finish
    code, out, err = cli(capsys, "run", "--rm", "-T", "web", "echo", "hello")
    assert code == 3, err
    assert "hello from run" in out
    assert engine.names() == ["demo-db-1"]  # the dependency was started, the run removed
    created = [r for call, r in engine.calls if call == "container_create"]
    assert created[-1].startswith("demo-web-run-") and len(created[-1]) == len("demo-web-run-") + 12
    code, out, _ = cli(capsys, "run", "-d", "--no-deps", "--name", "one-off", "web")
    assert code == 0 and out == "one-off\n"
    labels = engine.container_inspect("one-off").labels
    assert labels["com.docker.compose.oneoff"] == "True"
    _, out, _ = cli(capsys, "ps", "-a", "-q")
    assert engine.container_inspect("one-off").id in out.split()


def test_attached_up_streams_logs_and_aborts(engine: MemEngine,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def behave(e: MemEngine, c: Container) -> None:
        if c.spec.healthcheck:
            e.set_health(c.name, "healthy")
        else:
            e.add_log(c.id, "web says hi\n")
            threading.Timer(0.1, e.set_exited, (c.id, 4)).start()

    engine.on_start = behave
    code, out, err = cli(capsys, "up", "--exit-code-from", "web")
    assert code == 4, err
    assert "Attaching to db-1, web-1" in out
    assert "web-1 | web says hi" in out and "web-1 exited with code 4" in out
    assert "Aborting on container exit..." in out
    assert out.index("Aborting on container exit...") < out.index("db-1 exited with code 143")
    assert engine.container_inspect("demo-db-1").state.status == "exited"
    code, _, err = cli(capsys, "up", "-d", "--abort-on-container-exit")
    assert code == 1 and "are incompatible" in err


def test_bad_input_is_one_line_and_exit_1(engine: MemEngine,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["up", "-d", "nope"], ["logs", "nope"], ["up", "--scale", "web"],
                 ["up", "--build", "--no-build"], ["ps", "--filter", "name=x"],
                 ["exec", "web"], ["port", "web", "http"]):
        code, _, err = cli(capsys, *argv)
        assert code == 1, argv
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)


def test_small_commands(engine: MemEngine, capsys: pytest.CaptureFixture[str],
                        tmp_path: Path) -> None:
    cli(capsys, "up", "-d")
    _, out, _ = cli(capsys, "port", "web", "80")
    assert out == "0.0.0.0:8080\n"
    _, out, _ = cli(capsys, "top", "web")
    assert out.startswith("demo-web-1\nUID") and "httpd -f -p 80" in out
    _, out, _ = cli(capsys, "images")
    assert out.splitlines()[0].split() == ["CONTAINER", "REPOSITORY", "TAG", "IMAGE", "ID",
                                           "SIZE"]
    assert out.splitlines()[1].split()[:3] == ["demo-db-1", "busybox", "latest"]
    _, out, _ = cli(capsys, "ls")
    assert out.splitlines()[1].split()[:2] == ["demo", "running(2)"]
    _, out, _ = cli(capsys, "ls", "--format", "json")
    assert json.loads(out)[0]["Name"] == "demo"
    cli(capsys, "cp", str(tmp_path), "web:/srv")
    cli(capsys, "cp", "db:/data/x", str(tmp_path / "x"))
    assert [c[1:] for c in engine.copied] == [(str(tmp_path), "/srv"),
                                             ("/data/x", str(tmp_path / "x"))]
    _, out, _ = cli(capsys, "events", "--json", "--since", "0", "--until", "9999999999")
    actions = [json.loads(line)["action"] for line in out.splitlines()]
    assert actions[:2] == ["create", "start"]
    threading.Timer(0.1, engine.set_exited, ("demo-web-1", 5)).start()
    code, out, _ = cli(capsys, "wait", "web")
    assert code == 5
    cli(capsys, "create", "--force-recreate")
    assert engine.container_inspect("demo-web-1").state.status == "created"


RESTARTING = """\
services:
  db:
    image: busybox
  app:
    image: busybox
    depends_on:
      db: {condition: service_started, restart: true}
  other:
    image: busybox
    depends_on: [db]
"""


def test_restart_takes_restart_dependents_along(engine: MemEngine,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    Path("compose.yaml").write_text(RESTARTING)
    cli(capsys, "up", "-d")
    cli(capsys, "restart", "db")
    counts = {n: engine.container_inspect(n).state.restart_count for n in engine.names()}
    assert counts == {"demo-app-1": 1, "demo-db-1": 1, "demo-other-1": 0}
    cli(capsys, "restart", "--no-deps", "db")
    assert engine.container_inspect("demo-app-1").state.restart_count == 1


def test_no_start_then_start_brings_dependencies(engine: MemEngine,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "up", "--no-start")
    assert code == 0, err
    assert {engine.container_inspect(n).state.status for n in engine.names()} == {"created"}
    code, _, err = cli(capsys, "start", "web")
    assert code == 0, err
    assert {engine.container_inspect(n).state.status for n in engine.names()} == {"running"}
    code, _, err = cli(capsys, "start", "nope")
    assert code == 1 and err.strip() == "no such service: nope"


def test_up_wait(engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "up", "--wait")
    assert code == 0, err
    assert " Container demo-web-1  Running" in err and " Container demo-db-1  Healthy" in err
    engine.set_exited("demo-web-1", 1)
    code, _, err = cli(capsys, "up", "--wait", "--no-recreate", "--no-start")
    assert code == 0  # --no-start: nothing to wait for
    engine.on_start = lambda e, c: c.name == "demo-web-1" and e.set_exited(c.id, 2)
    code, _, err = cli(capsys, "up", "--wait")
    assert code == 1 and err.strip().splitlines()[-1] == "container demo-web-1 exited (2)"


def test_project_name_alone_is_enough_for_down_and_ps(
        engine: MemEngine, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cli(capsys, "up", "-d")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = cli(capsys, "ps")
    assert code == 1 and "Traceback" not in err
    code, out, _ = cli(capsys, "-p", "demo", "ps", "--format", "json")
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = cli(capsys, "-p", "demo", "down")
    assert code == 0, err
    assert engine.names() == [] and engine.network_list() == []
    assert [v.name for v in engine.volume_list()] == ["demo_data"]


def test_rm_asks_and_logs_since(engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    cli(capsys, "stop", "web")
    code, _, err = cli(capsys, "rm", "web")  # stdin is not a terminal under pytest
    assert code == 1 and "use -f" in err
    assert "demo-web-1" in engine.names()
    engine.add_log("demo-db-1", "old\n")
    code, out, _ = cli(capsys, "logs", "--since", "1h", "db")
    assert out == "db-1 | old\n"
    code, out, err = cli(capsys, "logs", "--since", "yesterday-ish", "db")
    assert code == 1 and "invalid value for --since" in err
    _, out, _ = cli(capsys, "events", "--since", "0", "--until", "9999999999", "db")
    db_id = engine.container_inspect("demo-db-1").id
    assert [line.split(" ", 2)[2] for line in out.splitlines()] == [
        f"container create {db_id} (name=demo-db-1)",
        f"container start {db_id} (name=demo-db-1)",
        f"container health_status: healthy {db_id} (name=demo-db-1)"]


def test_run_flags_shape_the_one_off(engine: MemEngine, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "yes")
    code, out, err = cli(capsys, "run", "-d", "--no-deps", "--name", "custom", "-e", "A=1",
                         "-e", "FROM_SHELL", "-l", "team=x", "-v", "./src:/src:ro",
                         "-v", "data:/data", "-p", "127.0.0.1:9000:90", "--service-ports",
                         "--entrypoint", "/bin/sh -c", "-u", "app", "-w", "/work",
                         "web", "echo hi")
    assert code == 0, err
    spec = engine.container_inspect("custom").spec
    assert spec.entrypoint == ("/bin/sh", "-c") and spec.command == ("echo hi",)
    assert dict(spec.env) == {"A": "1", "FROM_SHELL": "yes"}
    assert dict(spec.labels)["team"] == "x"
    assert dict(spec.labels)["com.docker.compose.oneoff"] == "True"
    assert [(m.type, m.source, m.target, m.read_only) for m in spec.mounts] == [
        ("bind", str(Path.cwd() / "src"), "/src", True), ("volume", "demo_data", "/data", False)]
    assert [(p.host_ip, p.host_port, p.container_port) for p in spec.ports] == [
        ("", "8080", 80), ("127.0.0.1", "9000", 90)]
    assert (spec.user, spec.working_dir, spec.restart.name) == ("app", "/work", "no")
    assert all(ep.aliases == () for ep in spec.networks)  # no --use-aliases
    code, _, err = cli(capsys, "run", "-d", "-v", "nonsense", "web")
    assert code == 1 and "invalid volume" in err


def test_attached_up_does_not_replay_what_ran_before(
        engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    engine.add_log("demo-web-1", "from an earlier run\n")
    threading.Timer(0.3, lambda: (engine.add_log("demo-web-1", "fresh\n"),
                                  engine.set_exited("demo-web-1", 0),
                                  engine.set_exited("demo-db-1", 0))).start()
    code, out, err = cli(capsys, "up", "--no-color")
    assert code == 0, err
    assert "web-1 | fresh" in out and "earlier run" not in out
    code, out, _ = cli(capsys, "logs", "--until", "1", "web")
    assert out == ""


def test_ps_templates(engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "up", "-d")
    _, out, _ = cli(capsys, "ps", "--format", "{{.Name}} {{.State}} {{.Health}}")
    assert out == "demo-db-1 running healthy\ndemo-web-1 running \n"
    _, out, _ = cli(capsys, "ps", "--format", "table {{.Service}}\\t{{.State}}", "web")
    assert out == "SERVICE\tSTATE\nweb\trunning\n"
    code, _, err = cli(capsys, "ps", "--format", "{{.Nope}}")
    assert code == 1 and "unknown field 'Nope'" in err


def test_up_build_recreates_only_when_the_image_changed(
        engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    Path("compose.yaml").write_text("services:\n  app:\n    build: .\n")
    code, _, err = cli(capsys, "up", "-d")
    assert code == 0, err
    assert "Image demo-app  Built" in err
    first = engine.container_inspect("demo-app-1").id
    code, _, err = cli(capsys, "up", "-d", "--build")  # a cache hit: same image id
    assert code == 0 and "Image demo-app  Built" in err
    assert engine.container_inspect("demo-app-1").id == first
    engine.build_generation += 1  # the sources changed
    code, _, err = cli(capsys, "up", "-d", "--build")
    assert code == 0 and "Container demo-app-1  Recreated" in err
    assert engine.container_inspect("demo-app-1").id != first
