"""The dashboard through Textual's Pilot: against the in-memory engine with the real
loader and commands, and (as root) against the built-in engine on a busybox project
brought up with the real `pycompose up -d`."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from textual.pilot import Pilot

from compose.cli.context import GlobalOptions
from engine.api import Engine, ExecSpec, Stats
from tests.support.cli_harness import serve_project
from tests.support.memengine import MemEngine
from tui.actions import ServiceActions, pycompose_argv
from tui.app import DashboardApp
from tui.data import DashboardSource
from tui.widgets.detail_pane import DetailPane
from tui.widgets.log_view import LogView
from tui.widgets.services_table import ServicesTable

COMPOSE = """\
services:
  db:
    image: busybox
    command: sleep 1000
    healthcheck: {test: ["CMD", "true"], interval: 1s}
  web:
    image: busybox
    command: httpd -f -p 80
    ports: ["8080:80"]
    depends_on: [db]
  app:
    build: ./app
    image: demo-app
  later:
    image: busybox
"""

Scenario = Callable[[DashboardApp, Pilot], Awaitable[None]]


@pytest.fixture
def mem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemEngine]:
    """Project `demo` (db, web, app up; `later` never created) on the in-memory engine."""
    engine = MemEngine()
    engine.add_image("busybox:latest")
    engine.on_start = lambda e, c: c.spec.healthcheck and e.set_health(c.name, "healthy")
    project = tmp_path / "demo"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text("FROM busybox\n")
    serve_project(monkeypatch, project, COMPOSE, engine)
    actions(engine).command("up", ["-d", "db", "web", "app"])
    yield engine


def actions(engine: Engine, files: tuple[str, ...] = ()) -> ServiceActions:
    return ServiceActions(GlobalOptions(files=files), engine, "demo")


def dashboard(engine: Engine, *, run_shell: Callable[[list[str]], int] | None = None,
              services: tuple[str, ...] = ("app", "db", "later", "web"),
              project: str = "demo", files: tuple[str, ...] = ()) -> DashboardApp:
    return DashboardApp(DashboardSource(engine, project, services),
                        ServiceActions(GlobalOptions(files=files), engine, project),
                        run_shell=run_shell or (lambda argv: 0), refresh=0.1)


def drive(app: DashboardApp, scenario: Scenario) -> None:
    async def main() -> None:
        async with app.run_test(size=(160, 45)) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


async def until(pilot: Pilot, check: Callable[[], object], what: str,
                timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def table(app: DashboardApp) -> ServicesTable:
    return app.screen.query_one(ServicesTable)


def logs(app: DashboardApp) -> LogView:
    return app.screen.query_one(LogView)


def row_of(app: DashboardApp, key: str):  # type: ignore[no-untyped-def]
    return table(app).rows_by_key.get(key)


async def select(pilot: Pilot, app: DashboardApp, key: str) -> None:
    await until(pilot, lambda: key in table(app).rows_by_key, f"row {key}")
    t = table(app)
    t.move_cursor(row=list(t.rows_by_key).index(key))
    await until(pilot, lambda: t.selected is not None and t.selected.key == key,
                f"{key} selected")


# ---------------------------------------------------------------------- in-memory engine


def test_table_shows_services_and_refreshes(mem: MemEngine) -> None:
    mem.set_stats("demo-web-1", Stats(12.5, 3 * 1024 * 1024, 1024 ** 3, 4))

    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        await until(pilot, lambda: len(table(app).rows_by_key) == 4, "four rows")
        t = table(app)
        assert list(t.rows_by_key) == ["demo-app-1", "demo-db-1", "service:later",
                                       "demo-web-1"]
        web = t.rows_by_key["demo-web-1"]
        assert (web.service, web.container, web.state) == ("web", "web-1", "running")
        assert web.ports == "0.0.0.0:8080->80/tcp"
        assert web.cpu_text == "12.50%" and web.memory_text == "3MiB / 1GiB"
        assert t.get_row("demo-web-1")[4:] == ["0.0.0.0:8080->80/tcp", "12.50%",
                                               "3MiB / 1GiB"]
        assert t.rows_by_key["demo-db-1"].health == "healthy"
        assert t.rows_by_key["service:later"].status == "Not created"
        # the next polls follow the engine: health and state changes show up
        mem.set_health("demo-db-1", "unhealthy")
        mem.set_exited("demo-web-1", 3)
        await until(pilot, lambda: row_of(app, "demo-db-1").health == "unhealthy",
                    "db unhealthy")
        await until(pilot, lambda: row_of(app, "demo-web-1").state == "exited", "web exited")
        assert row_of(app, "demo-web-1").status.startswith("Exited (3)")
        assert row_of(app, "demo-web-1").cpu_text == ""
        assert str(t.get_row("demo-db-1")[3]) == "unhealthy"

    drive(dashboard(mem), scenario)


def test_log_pane_follows_selection_all_and_search(mem: MemEngine) -> None:
    for i in range(3):
        mem.add_log("demo-web-1", f"GET /page{i} 200\n")
    mem.add_log("demo-db-1", "db ready\n")

    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        view = logs(app)
        await select(pilot, app, "demo-web-1")
        await until(pilot, lambda: len(view.lines) == 3, "web's three lines")
        assert view.lines == ["GET /page0 200", "GET /page1 200", "GET /page2 200"]
        mem.add_log("demo-web-1", "GET /late 404\n")  # followed live
        await until(pilot, lambda: view.lines[-1:] == ["GET /late 404"], "a live line")
        # `a`: every service, prefixed as `pycompose logs` does
        await pilot.press("a")
        await until(pilot, lambda: "db-1  | db ready" in view.lines, "all services")
        assert "web-1 | GET /page0 200" in view.lines
        await pilot.press("a")
        await until(pilot, lambda: view.lines and view.lines[0] == "GET /page0 200",
                    "back to web")
        # `/` opens the search box; matches are counted and highlighted as you type
        await pilot.press("slash")
        assert app.screen.focused is not None and app.screen.focused.id == "search"
        await pilot.press("p", "a", "g", "E")  # case-insensitive
        await until(pilot, lambda: view.pattern == "pagE", "the search text")
        assert view.matches == [0, 1, 2]
        styled = view._styled("GET /page1 200")
        assert [(span.start, span.end, str(span.style)) for span in styled.spans] == \
            [(5, 9, "black on yellow")]
        await pilot.press("enter")  # keeps the search, jumps to the first match
        await until(pilot, lambda: view.current == 0, "the first match")
        assert app.screen.focused is table(app)
        await pilot.press("n")
        assert view.current == 1
        await pilot.press("n", "n")
        assert view.current == 0  # wraps around
        await pilot.press("N")
        assert view.current == 2
        status = str(app.screen.query_one("#log-status").render())
        assert "search 'pagE': 3/3 matches" in status
        # `f` shows only the matching lines
        await pilot.press("f")
        assert view.filtering and view.shown == ["GET /page0 200", "GET /page1 200",
                                                 "GET /page2 200"]
        mem.add_log("demo-web-1", "GET /other 200\n")
        mem.add_log("demo-web-1", "GET /page9 200\n")
        await until(pilot, lambda: view.lines[-1] == "GET /page9 200", "new lines")
        assert view.shown[-1] == "GET /page9 200" and "GET /other 200" not in view.shown
        assert len(view.output.lines) == len(view.shown)
        await pilot.press("escape")
        assert not view.pattern and not view.filtering and view.matches == []
        assert "GET /other 200" in view.shown

    drive(dashboard(mem), scenario)


def test_log_pane_keeps_the_newest_lines_of_a_flood(mem: MemEngine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.widgets import log_view

    monkeypatch.setattr(log_view, "MAX_LINES", 50)

    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        view = logs(app)
        await select(pilot, app, "demo-web-1")
        await pilot.press("slash", "l", "i", "n", "e", " ", "1", "1", "enter")
        await until(pilot, lambda: view.pattern == "line 11", "the search text")
        for i in range(120):
            mem.add_log("demo-web-1", f"line {i}\n")
        await until(pilot, lambda: view.lines[-1:] == ["line 119"], "the last line")
        assert len(view.lines) == 50 and view.lines[0] == "line 70"
        assert view.shown == view.lines and len(view.output.lines) == 50
        assert [view.shown[i] for i in view.matches] == [f"line {i}" for i in range(110, 120)]

    drive(dashboard(mem), scenario)


def test_stop_start_restart_act_on_the_selected_service(mem: MemEngine) -> None:
    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        await select(pilot, app, "demo-web-1")
        await pilot.press("s")
        await until(pilot, lambda: row_of(app, "demo-web-1").state == "exited", "web stopped")
        assert ("container_stop", "demo-web-1") in mem.calls
        assert mem.container_inspect("demo-db-1").state.status == "running"
        await pilot.press("t")
        await until(pilot, lambda: row_of(app, "demo-web-1").state == "running",
                    "web started")
        await pilot.press("r")
        await until(pilot, lambda: row_of(app, "demo-web-1").restarts == 1, "web restarted")
        assert ("container_restart", "demo-web-1") in mem.calls
        detail = app.screen.query_one(DetailPane)
        await until(pilot, lambda: detail.last_action.startswith("restart web: done"),
                    "the outcome in the detail pane")
        assert "Started" in detail.last_action

    drive(dashboard(mem), scenario)


def test_rebuild_builds_and_recreates_and_reports_failures(mem: MemEngine) -> None:
    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        await select(pilot, app, "demo-app-1")
        before = mem.container_inspect("demo-app-1").id
        builds = mem.calls.count(("image_build", "demo-app"))
        mem.build_generation += 1  # a changed Dockerfile: a new image id
        await pilot.press("b")
        await until(pilot, lambda: mem.container_inspect("demo-app-1").id != before,
                    "app recreated")
        assert mem.calls.count(("image_build", "demo-app")) == builds + 1
        assert mem.container_inspect("demo-db-1").state.restart_count == 0
        # a failing build is reported in the UI; the app keeps running
        mem.build_failures.add("demo-app")
        detail = app.screen.query_one(DetailPane)
        await pilot.press("b")
        await until(pilot, lambda: "failed" in detail.last_action, "the failure")
        assert "Dockerfile:1: RUN false" in detail.last_action
        assert app.is_running

    drive(dashboard(mem), scenario)


def test_shell_runs_pycompose_exec_on_the_terminal(mem: MemEngine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from compose.cli.main import dispatch

    ran: list[list[str]] = []
    execs: list[tuple[str, ExecSpec]] = []
    mem.exec_handler = lambda c, spec: execs.append((c.name, spec)) or 7  # type: ignore[func-returns-value]

    def run_shell(argv: list[str]) -> int:
        ran.append(argv)
        return dispatch(argv[len(pycompose_argv()):])  # the same command line, in-process

    app = dashboard(mem, run_shell=run_shell)
    monkeypatch.setattr(app, "suspend", nullcontext)  # the headless driver has no terminal

    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        await select(pilot, app, "demo-web-1")
        await pilot.press("e")
        await until(pilot, lambda: ran, "the shell")
        assert ran[0][len(pycompose_argv()):] == ["-p", "demo", "exec", "web", "sh"]
        assert [(name, spec.cmd) for name, spec in execs] == [("demo-web-1", ("sh",))]
        detail = app.screen.query_one(DetailPane)
        assert detail.last_action == "shell in web exited with code 7"
        # a service without a running container gets a warning, not a shell
        await select(pilot, app, "service:later")
        await pilot.press("e")
        await pilot.pause(0.1)
        assert len(ran) == 1

    drive(app, scenario)


def test_dry_run_actions_only_say_what_they_would_do(mem: MemEngine) -> None:
    acts = ServiceActions(GlobalOptions(dry_run=True), mem, "demo")
    calls = len(mem.calls)
    assert acts.stop("web") == "Stopping demo-web-1\n"
    assert acts.restart("db").startswith("Restarting demo-db-1\n")
    assert len(mem.calls) == calls
    assert mem.container_inspect("demo-web-1").state.status == "running"
    assert "--dry-run" in acts.shell_argv("web")


def test_shell_argv_carries_the_global_flags() -> None:
    mem = MemEngine()
    acts = ServiceActions(GlobalOptions(files=("a.yaml", "b.yaml"), profiles=("dev",),
                                        env_files=(".env.dev",),
                                        project_directory="/srv/x"), mem, "shop")
    assert acts.shell_argv("api", 2)[len(pycompose_argv()):] == [
        "-f", "a.yaml", "-f", "b.yaml", "-p", "shop", "--profile", "dev",
        "--env-file", ".env.dev", "--project-directory", "/srv/x",
        "exec", "--index", "2", "api", "sh"]


def test_engine_errors_show_and_polling_goes_on(mem: MemEngine,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.api import EngineRuntimeError

    broken = [True]
    real = mem.container_list

    def flaky(all: bool = False, labels: dict[str, str | None] | None = None) -> list:  # type: ignore[type-arg]
        if broken[0]:
            raise EngineRuntimeError("state.json: permission denied")
        return real(all, labels)

    monkeypatch.setattr(mem, "container_list", flaky)

    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        await until(pilot, lambda: "engine: state.json: permission denied"
                    in (app.screen.sub_title or ""), "the error in the title")
        assert app.is_running and not table(app).rows_by_key
        broken[0] = False
        await until(pilot, lambda: len(table(app).rows_by_key) == 4, "rows once it works")
        assert app.screen.sub_title == "4 containers"

    drive(dashboard(mem), scenario)


def test_log_follower_says_why_and_recovers(mem: MemEngine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from engine.api import EngineRuntimeError
    from tui.data import LogFollower

    broken = threading.Event()
    broken.set()
    real = mem.container_list

    def flaky(all: bool = False, labels: dict[str, str | None] | None = None) -> list:  # type: ignore[type-arg]
        if broken.is_set():
            raise EngineRuntimeError("state.json: permission denied")
        return real(all, labels)

    monkeypatch.setattr(mem, "container_list", flaky)
    monkeypatch.setattr("tui.data.RETRY", 0.05)
    mem.add_log("demo-db-1", "db ready\n")
    got: list[str] = []
    arrived = threading.Event()
    follower = LogFollower(mem, "demo", "db", lambda line: (got.append(line),
                                                            arrived.set())).start()
    try:
        assert arrived.wait(5)
        broken.clear()
        deadline = time.monotonic() + 5
        while "db ready" not in got and time.monotonic() < deadline:
            arrived.wait(0.05)
        assert got == ["[cannot read the logs: state.json: permission denied]", "db ready"]
    finally:
        follower.stop()
        broken.clear()


def test_help_screen_and_quit(mem: MemEngine) -> None:
    async def scenario(app: DashboardApp, pilot: Pilot) -> None:
        from tui.screens.help import HelpScreen

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert "restart the selected service" in text and "up --build" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause(0.1)
        assert not app.is_running

    drive(dashboard(mem), scenario)


def test_dashboard_command_needs_a_terminal(mem: MemEngine,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from compose.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "nosuch"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "terminal" in err


# ---------------------------------------------------------------------- the real engine

REAL_COMPOSE = """\
services:
  ticker:
    image: pycompose-busybox
    init: true
    network_mode: none
    command: ["sh", "-c", "echo hello-dashboard; while true; do echo tick; sleep 0.5; done"]
"""


@pytest.mark.root
def test_dashboard_on_the_built_in_engine(engine_root: Path, busybox_tar: Path,
                                          tmp_path: Path) -> None:
    from engine.api import connect
    from tests.e2e.conftest import Project

    directory = tmp_path / "dash"
    directory.mkdir()
    (directory / "compose.yaml").write_text(REAL_COMPOSE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env["PYCOMPOSE_ROOT"] = str(engine_root)
    project = Project(directory, env)
    engine = connect(str(engine_root))
    engine.image_import(str(busybox_tar), "pycompose-busybox:latest", changes=('CMD ["sh"]',))
    try:
        project.run("up", "-d", check=True)
        # `pycompose stats` reads the same figures through the real command
        record = json.loads(project.run("stats", "--no-stream", "--format", "json",
                                        check=True).stdout)
        assert record["Name"] == "dash-ticker-1" and int(record["PIDs"]) >= 2
        assert record["MemUsage"].endswith("iB") and record["CPUPerc"].endswith("%")
        app = dashboard(engine, services=("ticker",), project="dash",
                        files=(str(directory / "compose.yaml"),))

        async def scenario(app: DashboardApp, pilot: Pilot) -> None:
            await until(pilot, lambda: (r := row_of(app, "dash-ticker-1")) is not None
                        and r.running and r.memory_usage, "ticker running with stats",
                        timeout=15)
            row = row_of(app, "dash-ticker-1")
            assert row.memory_usage > 0 and row.memory_limit >= row.memory_usage
            assert row.cpu_percent is not None and row.cpu_percent >= 0
            view = logs(app)
            await until(pilot, lambda: "hello-dashboard" in view.lines, "the first line",
                        timeout=15)
            await until(pilot, lambda: "tick" in view.lines, "live lines", timeout=15)
            before = engine.container_inspect("dash-ticker-1").state.started_at
            count = view.lines.count("hello-dashboard")
            await pilot.press("r")
            await until(pilot, lambda: engine.container_inspect("dash-ticker-1").state
                        .started_at != before and row_of(app, "dash-ticker-1").running,
                        "ticker restarted", timeout=30)
            # the follower picks the restarted container up again
            await until(pilot, lambda: view.lines.count("hello-dashboard") > count,
                        "output after the restart", timeout=15)

        drive(app, scenario)
    finally:
        project.run("down", "-v", "-t", "0", timeout=60)

