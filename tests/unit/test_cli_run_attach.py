"""`run` and `container run/start` hand our stdio to the engine's attach, as docker does."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import Container
from tests.support.cli_harness import run_cli, serve_project
from tests.support.memengine import MemEngine

COMPOSE = """\
services:
  svc:
    image: busybox
    command: sh
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemEngine]:
    mem = MemEngine()
    mem.add_image("busybox:latest")
    serve_project(monkeypatch, tmp_path / "demo", COMPOSE, mem)
    yield mem


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str,
        *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return run_cli(capsys, *argv)


def test_run_relays_stdin_without_a_terminal(engine: MemEngine, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, monkeypatch, "hi\n", "run", "-d", "svc")  # a detached one
    assert code == 0, err
    detached = engine.container_inspect(engine.names()[0])
    assert not detached.spec.stdin_open and not detached.spec.tty

    def stop_when_fed(e: MemEngine, c: Container, data: bytes) -> None:
        e.add_log(c.id, data.decode())
        e.set_exited(c.id, 0)

    engine.on_stdin = stop_when_fed
    code, out, err = cli(capsys, monkeypatch, "hi\n", "run", "--rm", "-T", "svc", "cat")
    assert code == 0, err
    assert out == "hi\n"
    [one_off] = [r for call, r in engine.calls if call == "container_attach"]
    assert one_off.startswith("demo-svc-run-")
    assert one_off not in engine.names()  # --rm
    assert engine.stdin and list(engine.stdin.values())[-1] == b"hi\n"


def test_container_start_attach_needs_one_container(
        engine: MemEngine, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, monkeypatch, "", "container", "start", "-a", "x", "y")
    assert code == 1
    assert err.strip().endswith("you cannot start and attach multiple containers at once")


def test_container_run_tty_needs_a_terminal(engine: MemEngine, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, monkeypatch, "", "container", "run", "-it", "busybox", "sh")
    assert code == 1
    assert err.strip().endswith("the input device is not a TTY")
    assert engine.container_list(all=True) == []  # nothing created
