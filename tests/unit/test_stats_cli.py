"""`pycompose stats` in-process, with the real loader and the in-memory engine."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from compose.cli.commands import stats as S
from engine.api import EngineRuntimeError, NotFound, Stats
from tests.support.cli_harness import run_cli, serve_project
from tests.support.memengine import MemEngine
from tui.actions import ServiceActions

COMPOSE = """\
services:
  db:
    image: busybox
    command: sleep 1000
  web:
    image: busybox
    command: httpd -f -p 80
"""
MiB = 1024 * 1024


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemEngine]:
    """Project `demo` with db and web running, each with known stats."""
    from compose.cli.context import GlobalOptions

    mem = MemEngine()
    mem.add_image("busybox:latest")
    serve_project(monkeypatch, tmp_path / "demo", COMPOSE, mem)
    ServiceActions(GlobalOptions(), mem, "demo").command("up", ["-d"])
    mem.set_stats("demo-web-1", Stats(cpu_percent=12.345, memory_usage=int(5.629 * MiB),
                                      memory_limit=2 * 1024 * MiB, pids=9,
                                      block_read=147_000, block_write=0, net_rx=916,
                                      net_tx=1_200))
    mem.set_stats("demo-db-1", Stats(cpu_percent=0.0, memory_usage=512 * 1024,
                                     memory_limit=2 * 1024 * MiB, pids=1))
    yield mem


cli = run_cli


@pytest.mark.parametrize(("size", "binary", "decimal"), [
    (0, "0B", "0B"),
    (916, "916B", "916B"),
    (1_200, "1.172KiB", "1.2kB"),
    (147_000, "143.6KiB", "147kB"),
    (int(5.629 * MiB), "5.629MiB", "5.9MB"),
    (2 * 1024 ** 3, "2GiB", "2.15GB"),
])
def test_units_as_go_units_prints_them(size: int, binary: str, decimal: str) -> None:
    assert S.bytes_size(size) == binary
    assert S.human_size(size) == decimal


def test_no_stream_table(engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "stats", "--no-stream")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("CONTAINER ID   NAME         CPU %     MEM USAGE / LIMIT   MEM %     "
                        "NET I/O        BLOCK I/O    PIDS")
    web_id = engine.container_inspect("demo-web-1").id[:12]
    assert lines[2] == (f"{web_id}   demo-web-1   12.35%    5.629MiB / 2GiB     0.27%     "
                        "916B / 1.2kB   147kB / 0B   9")
    assert lines[1].split()[1:] == ["demo-db-1", "0.00%", "512KiB", "/", "2GiB", "0.02%",
                                    "0B", "/", "0B", "0B", "/", "0B", "1"]
    assert len(lines) == 3


def test_services_all_and_stopped_containers(engine: MemEngine,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "stats", "--no-stream", "web")
    assert [ln.split()[1] for ln in out.splitlines()[1:]] == ["demo-web-1"]
    engine.container_stop("demo-db-1")
    _, out, _ = cli(capsys, "stats", "--no-stream")
    assert [ln.split()[1] for ln in out.splitlines()[1:]] == ["demo-web-1"]
    _, out, _ = cli(capsys, "stats", "--no-stream", "-a")
    db = out.splitlines()[1].split()
    assert db[1:] == ["demo-db-1", "0.00%", "0B", "/", "0B", "0.00%", "0B", "/", "0B",
                      "0B", "/", "0B", "0"]


def test_json_template_and_no_trunc(engine: MemEngine,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    web = engine.container_inspect("demo-web-1").id
    _, out, _ = cli(capsys, "stats", "--no-stream", "--format", "json", "web")
    record = json.loads(out)
    assert list(record) == sorted(record) and out.startswith('{"BlockIO":"147kB / 0B",')
    assert record == {"BlockIO": "147kB / 0B", "CPUPerc": "12.35%", "Container": web[:12],
                      "ID": web[:12], "MemPerc": "0.27%", "MemUsage": "5.629MiB / 2GiB",
                      "Name": "demo-web-1", "NetIO": "916B / 1.2kB", "PIDs": "9"}
    _, out, _ = cli(capsys, "stats", "--no-stream", "--format", "{{.Name}}: {{.CPUPerc}}")
    assert out == "demo-db-1: 0.00%\ndemo-web-1: 12.35%\n"
    _, out, _ = cli(capsys, "stats", "--no-stream", "--no-trunc", "--format",
                    "table {{.ID}}\t{{.PIDs}}", "web")
    assert out.splitlines() == ["CONTAINER ID" + " " * 55 + "PIDS", f"{web}   9"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--format", "yaml"], "unsupported format 'yaml'"),
    (["--format", "{{.Nope}}"], "template: unknown field 'Nope'"),
    (["nosuch"], "no such service: nosuch"),
])
def test_bad_input_is_one_line(engine: MemEngine, capsys: pytest.CaptureFixture[str],
                               argv: list[str], message: str) -> None:
    code, out, err = cli(capsys, "stats", "--no-stream", *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err


def test_read_stats_skips_removed_and_marks_unreadable() -> None:
    mem = MemEngine()
    mem.add_image("busybox:latest")
    from engine.api import ContainerSpec

    gone, broken, fine = (mem.container_create(ContainerSpec("busybox", name=n))
                          for n in ("gone", "broken", "fine"))
    for c in (gone, broken, fine):
        mem.container_start(c.id)
    real = mem.container_stats

    def flaky(ref: str) -> Stats:
        if ref == gone.id:
            raise NotFound("No such container")
        if ref == broken.id:
            raise EngineRuntimeError("no cgroup")
        return real(ref)

    mem.container_stats = flaky  # type: ignore[method-assign]
    found = [mem.container_inspect(n) for n in ("gone", "broken", "fine")]
    samples = S.read_stats(mem, found)
    assert [s.container.name for s in samples] == ["broken", "fine"]
    assert samples[0].record()["CPUPerc"] == "--" and samples[0].record()["PIDs"] == "--"
    assert samples[1].record()["MemUsage"] == "1MiB / 1GiB"


def test_stream_redraws_each_round(engine: MemEngine) -> None:
    out = io.StringIO()
    rounds = iter([12.0, 50.0])

    def sample() -> list[S.Sample]:
        c = engine.container_inspect("demo-web-1")
        return [S.Sample(c, Stats(next(rounds), MiB, 0, 2))]

    S.stream(out.write, sample, "table", truncate=True, clear=True, rounds=2, interval=0)
    frames = out.getvalue().split(S.CLEAR)
    assert frames[0] == "" and len(frames) == 3
    assert "12.00%" in frames[1] and "50.00%" in frames[2]
    assert frames[2].splitlines()[1].split()[3:6] == ["1MiB", "/", "0B"]
