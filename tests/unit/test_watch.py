"""`develop.watch`: pattern matching, rules, batches -> actions, debouncing, the applier
and the `watch` command against the in-memory engine; one real file-watcher round trip."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compose.dockerignore import PathMatcher
from compose.errors import ComposeError, ConfigError
from compose.loader import LoadOptions, load
from compose.watch import (
    Applier,
    Debouncer,
    initial_sync_mappings,
    plan_batch,
    watch_loop,
    watch_rules,
    watched_paths,
)
from engine.api import Container, ExecSpec
from tests.support.cli_harness import run_cli, serve_project
from tests.support.memengine import MemEngine

COMPOSE = """\
services:
  web:
    build: .
    command: sleep 1000
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
          ignore: ["*.tmp", "cache/"]
        - path: ./conf
          action: sync+restart
          target: /etc/web
        - path: ./requirements.txt
          action: rebuild
        - path: ./hooks
          action: sync+exec
          target: /hooks
          exec:
            command: ["sh", "-c", "echo reloaded"]
            user: nobody
        - path: ./env
          action: restart
  api:
    image: busybox
    command: sleep 1000
    develop:
      watch:
        - path: ./src/api
          action: sync
          target: /srv
          include: ["*.py"]
  plain:
    image: busybox
"""


def load_data(directory: Path, text: str = COMPOSE) -> dict[str, Any]:
    (directory / "compose.yaml").write_text(text)
    loaded = load(LoadOptions(workdir=str(directory), environ={}))
    return dict(loaded.data)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    d = tmp_path / "shop"
    for sub in ("src/api", "src/cache", "conf", "hooks", "env"):
        (d / sub).mkdir(parents=True)
    (d / "src" / "index.html").write_text("v1")
    (d / "src" / "api" / "main.py").write_text("print(1)")
    (d / "Dockerfile").write_text("FROM busybox\n")
    (d / ".dockerignore").write_text("src/secret*\n")
    return d


# --------------------------------------------------------------------------- matching


def test_dockerignore_patterns_parents_exceptions_and_double_star() -> None:
    m = PathMatcher.of("/p", ["*.log", "build", "!keep.log", "docs/**/*.md", "# comment"])
    assert m.matches("/p/a.log") and not m.matches("/p/keep.log")
    assert not m.matches("/p/sub/a.log")  # `*` does not cross a slash
    assert m.matches("/p/build/x/y.c")  # a parent matches
    assert m.matches("/p/docs/a/b/c.md") and m.matches("/p/docs/c.md")
    assert not m.matches("/elsewhere/a.log") and not m.matches("/p")
    assert PathMatcher.of("/", ["**/.#*"]).matches("/x/y/.#file")
    with pytest.raises(ConfigError):
        PathMatcher.of("/p", ["[abc"])


def test_rules_from_the_canonical_tree(project_dir: Path) -> None:
    data = load_data(project_dir)
    rules = watch_rules(data, working_dir=str(project_dir))
    assert [(r.service, r.action) for r in rules] == [
        ("api", "sync"), ("web", "sync"), ("web", "sync+restart"), ("web", "rebuild"),
        ("web", "sync+exec"), ("web", "restart")]
    hook = rules[4].exec
    assert hook is not None and hook.command == ("sh", "-c", "echo reloaded")
    assert hook.user == "nobody"
    assert [r.service for r in watch_rules(data, ["api"], working_dir=str(project_dir))] \
        == ["api"]
    with pytest.raises(ComposeError, match="none of the selected services is configured"):
        watch_rules(data, ["plain"], working_dir=str(project_dir))


@pytest.mark.parametrize("snippet, message", [
    ("    image: busybox\n    develop:\n      watch:\n        - {path: ., action: rebuild}\n",
     'can\'t watch service "x" with action rebuild without a build context'),
    ("    image: busybox\n    develop:\n      watch:\n"
     "        - {path: ., action: sync+exec, target: /a}\n",
     'can\'t watch with action "sync+exec" on service x without a command'),
])
def test_invalid_rules_are_one_line_errors(tmp_path: Path, snippet: str, message: str) -> None:
    data = load_data(tmp_path, "services:\n  x:\n" + snippet)
    with pytest.raises(ComposeError) as info:
        watch_rules(data, working_dir=str(tmp_path))
    assert str(info.value) == message


def test_sync_rule_on_a_bind_mounted_path_is_skipped_with_a_warning(tmp_path: Path) -> None:
    data = load_data(tmp_path, "services:\n  x:\n    image: busybox\n"
                     "    volumes: [./src:/app]\n    develop:\n      watch:\n"
                     "        - {path: ./src/sub, action: sync, target: /app/sub}\n"
                     "        - {path: ./other, action: restart}\n")
    warnings: list[str] = []
    rules = watch_rules(data, working_dir=str(tmp_path), warn=warnings.append)
    assert [r.action for r in rules] == ["restart"]
    assert warnings == [f"path '{tmp_path}/src/sub' also declared by a bind mount volume, "
                        "this path won't be monitored!"]


# --------------------------------------------------------------------------- batches


def test_batch_maps_changes_to_actions_with_ignores_and_includes(project_dir: Path) -> None:
    rules = watch_rules(load_data(project_dir), working_dir=str(project_dir))
    d = str(project_dir)
    plan = plan_batch([
        f"{d}/src/index.html",
        f"{d}/src/notes.tmp",  # rule ignore
        f"{d}/src/cache/x.bin",  # rule ignore on a parent directory
        f"{d}/src/secret.key",  # the build context's .dockerignore
        f"{d}/src/.index.html.swp",  # an editor's swap file
        f"{d}/src/api/main.py",  # synced by web (under src) and api (include *.py)
        f"{d}/src/api/README",  # web only: api includes only *.py
        f"{d}/conf/web.conf",
        f"{d}/requirements.txt",
        f"{d}/hooks/a.sh", f"{d}/hooks/b.sh",
        f"{d}/env/x",
        "/somewhere/else",
    ], rules)
    assert plan.rebuild == {"web"}
    assert plan.restart == {"web"}
    assert {s: [(m.host.removeprefix(d), m.container) for m in ms]
            for s, ms in plan.sync.items()} == {
        "api": [("/src/api/main.py", "/srv/main.py")],
        "web": [("/conf/web.conf", "/etc/web/web.conf"), ("/hooks/a.sh", "/hooks/a.sh"),
                ("/hooks/b.sh", "/hooks/b.sh"), ("/src/api/README", "/app/api/README"),
                ("/src/api/main.py", "/app/api/main.py"),
                ("/src/index.html", "/app/index.html")]}
    assert [r.action for r in plan.exec["web"]] == ["sync+exec"]  # once for two files
    assert not plan_batch([f"{d}/src/x.tmp", f"{d}/unwatched"], rules)


def test_a_new_directory_brings_its_files_minus_ignored_ones(project_dir: Path) -> None:
    rules = watch_rules(load_data(project_dir), ["web"], working_dir=str(project_dir))
    new = project_dir / "src" / "pages"
    (new / "deep").mkdir(parents=True)
    (new / "deep" / "a.html").write_text("a")
    (new / "b.tmp").write_text("b")  # `*.tmp` is anchored at the rule's path, as Docker's
    (project_dir / "src" / "x.tmp").write_text("x")
    (project_dir / "src" / "cache" / "sub").mkdir()
    plan = plan_batch([str(new), str(project_dir / "src")], rules)
    assert sorted(m.container for m in plan.sync["web"]) == [
        "/app", "/app/api", "/app/api/main.py", "/app/index.html",
        "/app/pages", "/app/pages/b.tmp", "/app/pages/deep", "/app/pages/deep/a.html"]


def test_initial_sync_copies_files_but_not_dockerfile_or_ignored(project_dir: Path) -> None:
    data = load_data(project_dir, "services:\n  x:\n    build: .\n    develop:\n"
                     "      watch:\n        - {path: ., action: sync, target: /w, "
                     "initial_sync: true, ignore: [conf]}\n")
    (rule,) = watch_rules(data, working_dir=str(project_dir))
    assert rule.initial_sync
    assert sorted(m.container for m in initial_sync_mappings(rule)) == \
        ["/w/.dockerignore", "/w/src/api/main.py", "/w/src/index.html"]


def test_watched_paths_use_existing_ancestors_and_collapse_nesting(project_dir: Path) -> None:
    rules = watch_rules(load_data(project_dir), working_dir=str(project_dir))
    assert watched_paths(rules) == [str(project_dir)]  # ./requirements.txt is missing
    (project_dir / "requirements.txt").write_text("")
    api_only = watch_rules(load_data(project_dir), ["api"], working_dir=str(project_dir))
    assert watched_paths(api_only) == [str(project_dir / "src" / "api")]
    nowhere = load_data(project_dir, "services:\n  x:\n    image: busybox\n    develop:\n"
                        "      watch: [{path: /no/such/dir, action: restart}]\n")
    assert watched_paths(watch_rules(nowhere, working_dir=str(project_dir))) == []


def test_debouncer_waits_for_a_quiet_period() -> None:
    now = [100.0]
    d = Debouncer(0.5, clock=lambda: now[0])
    assert d.due() is None
    d.add(["/a"])
    now[0] += 0.3
    d.add(["/b", "/a"])
    now[0] += 0.4  # 0.7 s since the first event, only 0.4 s of quiet
    assert d.due() is None
    now[0] += 0.1
    assert d.due() == ["/a", "/b"]
    assert d.due() is None
    d.add([])
    now[0] += 5
    assert d.due() is None


# --------------------------------------------------------------------------- applying


@pytest.fixture
def mem() -> MemEngine:
    engine = MemEngine()
    engine.add_image("busybox:latest")
    return engine


def start(engine: MemEngine, project: str, service: str, number: int = 1) -> Container:
    from engine.api import ContainerSpec

    labels = (("com.docker.compose.project", project), ("com.docker.compose.service", service),
              ("com.docker.compose.container-number", str(number)),
              ("com.docker.compose.oneoff", "False"))
    c = engine.container_create(ContainerSpec(image="busybox", name=f"{project}-{service}-"
                                              f"{number}", labels=labels))
    engine.container_start(c.id)
    return c


def test_applier_syncs_removes_restarts_and_execs(project_dir: Path, mem: MemEngine) -> None:
    data = load_data(project_dir)
    rules = watch_rules(data, ["web"], working_dir=str(project_dir))
    web = start(mem, "shop", "web")
    execs: list[tuple[str, ...]] = []

    def handler(c: Container, spec: ExecSpec) -> int:
        execs.append(spec.cmd)
        return 0

    mem.exec_handler = handler
    out = io.StringIO()
    rebuilt: list[list[str]] = []
    d = str(project_dir)
    (project_dir / "hooks" / "a.sh").write_text("echo")
    plan = plan_batch([f"{d}/src/index.html", f"{d}/src/gone.html", f"{d}/hooks/a.sh",
                       f"{d}/conf/app.conf", f"{d}/requirements.txt"], rules)
    Applier(mem, "shop", data, out, rebuild=rebuilt.append).apply(plan)
    assert rebuilt == [["web"]]
    assert out.getvalue().splitlines() == [
        'Rebuilding service(s) ["web"] after changes were detected...',
        'service(s) ["web"] successfully built',
        'Syncing service "web" after 4 changes were detected',
        'service(s) ["web"] restarted']
    assert sorted(dest for _ref, _src, dest in mem.copied) == ["/app/index.html",
                                                               "/hooks/a.sh"]
    assert execs == [("mkdir", "-p", "/app", "/hooks"),
                     ("rm", "-rf", "/app/gone.html", "/etc/web/app.conf"),
                     ("sh", "-c", "echo reloaded")]
    assert ("container_restart", web.name) in mem.calls


def test_a_failed_rebuild_is_reported_and_skips_the_rest(project_dir: Path,
                                                         mem: MemEngine) -> None:
    data = load_data(project_dir)
    rules = watch_rules(data, ["web"], working_dir=str(project_dir))
    start(mem, "shop", "web")
    out = io.StringIO()

    def fail(services: list[str]) -> None:
        raise ComposeError("Dockerfile:1: RUN false: exit code 1")

    d = str(project_dir)
    Applier(mem, "shop", data, out, rebuild=fail).apply(
        plan_batch([f"{d}/requirements.txt", f"{d}/src/index.html"], rules))
    assert out.getvalue().splitlines()[-1] == \
        "Build failed. Error: Dockerfile:1: RUN false: exit code 1"
    assert mem.copied == []


def test_an_engine_error_is_a_warning_and_the_watch_goes_on(project_dir: Path,
                                                            mem: MemEngine) -> None:
    from engine.api import EngineRuntimeError

    data = load_data(project_dir)
    rules = watch_rules(data, ["web"], working_dir=str(project_dir))
    start(mem, "shop", "web")

    def broken(c: Container, spec: ExecSpec) -> int:
        raise EngineRuntimeError('exec: "mkdir": executable file not found in $PATH')

    mem.exec_handler = broken
    out = io.StringIO()
    Applier(mem, "shop", data, out).handle(
        plan_batch([str(project_dir / "src" / "index.html")], rules))
    assert out.getvalue().splitlines() == [
        'Syncing service "web" after 1 changes were detected',
        'WARN: Error handling changed files: exec: "mkdir": executable file not found in '
        '$PATH']


def test_restart_includes_dependents_that_ask_for_it(tmp_path: Path, mem: MemEngine) -> None:
    data = load_data(tmp_path, "services:\n  db:\n    image: busybox\n    develop:\n"
                     "      watch: [{path: ./db, action: restart}]\n"
                     "  app:\n    image: busybox\n    depends_on:\n"
                     "      db: {condition: service_started, restart: true}\n"
                     "  other:\n    image: busybox\n    depends_on: [db]\n")
    rules = watch_rules(data, working_dir=str(tmp_path))
    for name in ("db", "app", "other"):
        start(mem, tmp_path.name, name)
    Applier(mem, tmp_path.name, data, io.StringIO()).apply(
        plan_batch([str(tmp_path / "db" / "x")], rules))
    restarted = sorted(ref for call, ref in mem.calls if call == "container_restart")
    assert restarted == [f"{tmp_path.name}-app-1", f"{tmp_path.name}-db-1"]


# --------------------------------------------------------------------------- the command


@pytest.fixture
def cli_project(project_dir: Path, mem: MemEngine,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield serve_project(monkeypatch, project_dir, COMPOSE, mem)


def run_watch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              batches: list[list[str]], *argv: str) -> tuple[int, str, str]:
    """`pycompose watch ARGV` with the file watcher replaced by `batches`, then Ctrl-C."""
    import compose.watch

    def fake_loop(paths: list[str], on_batch: Any, on_ready: Any, **_kw: Any) -> None:
        on_ready()
        for batch in batches:
            on_batch(batch)
        raise KeyboardInterrupt

    monkeypatch.setattr(compose.watch, "watch_loop", fake_loop)
    return run_cli(capsys, "--progress", "plain", "watch", *argv)


def test_watch_command_ups_syncs_rebuilds_and_stops_on_ctrl_c(
        cli_project: Path, mem: MemEngine, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    d = str(cli_project)
    code, out, err = run_watch(monkeypatch, capsys,
                               [[f"{d}/src/index.html"], [f"{d}/requirements.txt"]],
                               "--quiet", "web")
    assert code == 0, err
    assert err == ""  # --quiet hides the progress of up and of the rebuild
    assert out.splitlines() == [
        "Watch enabled",
        'Syncing service "web" after 1 changes were detected',
        'Rebuilding service(s) ["web"] after changes were detected...',
        'service(s) ["web"] successfully built',
        "Watch disabled"]
    assert [dest for _r, _s, dest in mem.copied] == ["/app/index.html"]
    assert [ref for call, ref in mem.calls if call == "image_build"] == \
        ["shop-web", "shop-web"]
    assert [c.name for c in mem.container_list()] == ["shop-web-1"]
    assert ("container_create", "shop-web-1") in mem.calls
    creates = [ref for call, ref in mem.calls if call == "container_create"]
    assert creates == ["shop-web-1", "shop-web-1"]  # recreated by the rebuild


def test_watch_rebuild_prunes_the_replaced_image(
        cli_project: Path, mem: MemEngine, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_watch(monkeypatch, capsys, [], "web")
    assert code == 0
    assert " Image shop-web  Built\n" in err and " Container shop-web-1  Started\n" in err
    old = mem.image_inspect("shop-web").id
    mem.build_generation += 1  # the next build makes a new image
    code, out, err = run_watch(monkeypatch, capsys, [[str(cli_project / "requirements.txt")]],
                               "--no-up", "--quiet", "web")
    assert code == 0, err
    new = mem.image_inspect("shop-web").id
    assert new != old and old not in mem.images
    assert mem.container_list()[0].image_id == new


def test_watch_usage_errors_are_one_line(cli_project: Path, mem: MemEngine,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_watch(monkeypatch, capsys, [], "plain")
    assert code == 1 and out == ""
    assert err == "none of the selected services is configured for watch, consider " \
                  "setting a 'develop' section\n"
    code, _out, err = run_watch(monkeypatch, capsys, [], "--prune=maybe")
    assert code == 1 and err.count("\n") == 1 and "--prune" in err
    assert mem.containers == {}


# --------------------------------------------------------------------------- real watcher


def test_watch_loop_batches_real_file_events(tmp_path: Path) -> None:
    stop = threading.Event()
    batches: list[list[str]] = []

    def on_batch(batch: list[str]) -> None:
        batches.append(batch)
        stop.set()

    ready = threading.Event()

    def edit() -> None:
        ready.wait(5)  # edits made before the watcher runs would go unseen
        for name in ("a.txt", "b.txt"):
            (tmp_path / name).write_text(name)
            time.sleep(0.05)

    writer = threading.Thread(target=edit)
    writer.start()
    timer = threading.Timer(10, stop.set)  # a safety net: never hang the suite
    timer.start()
    try:
        watch_loop([str(tmp_path)], on_batch, on_ready=ready.set, debouncer=Debouncer(0.5),
                   stop=stop)
    finally:
        timer.cancel()
        writer.join()
    assert ready.is_set()
    assert batches == [[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]]
