"""`pycompose build` and `pycompose image build` in-process, with the in-memory engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.api import BuildSpec, Image, Progress
from tests.support.cli_harness import run_cli, serve_project
from tests.support.memengine import MemEngine

COMPOSE = """\
services:
  web:
    build:
      context: ./web
      dockerfile: Dockerfile.web
      args: {A: from-file, B: kept}
      target: prod
    image: example/web:1
  worker:
    build: ./worker
  db:
    image: busybox
"""


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BuildSpec]]:
    mem = MemEngine()
    mem.add_image("busybox:latest")
    seen: list[BuildSpec] = []
    original = mem.image_build

    def image_build(spec: BuildSpec, progress: Any = None) -> Image:
        seen.append(spec)
        if progress is not None:
            progress(Progress(id="[1/2] RUN make", status="LOG", text="compiling\n"))
            progress(Progress(id="[2/2] COPY . /", status="CACHED"))
        return original(spec, progress)

    monkeypatch.setattr(mem, "image_build", image_build)
    project = tmp_path / "demo"
    (project / "web").mkdir(parents=True)
    (project / "worker").mkdir()
    serve_project(monkeypatch, project, COMPOSE, mem)
    yield seen


cli = run_cli


def test_build_every_service_with_a_build_section(specs: list[BuildSpec], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "build", "--build-arg", "A=from-cli", "--no-cache")
    assert code == 0, err
    web, worker = sorted(specs, key=lambda s: s.context)  # built in parallel
    assert web.context == str(tmp_path / "demo" / "web")
    assert (web.dockerfile, web.target, web.no_cache) == ("Dockerfile.web", "prod", True)
    assert dict(web.args) == {"A": "from-cli", "B": "kept"}
    assert web.tags[0] == "example/web:1" and worker.tags[0] == "demo-worker"
    assert "web [1/2] RUN make" in err and "worker [1/2] RUN make" in err
    assert "compiling" in err and " CACHED" in err
    assert " Service web  Built" in err


def test_build_selected_service_quietly(specs: list[BuildSpec],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "build", "-q", "worker")
    assert code == 0 and out == "" and err == ""
    assert [s.tags[0] for s in specs] == ["demo-worker"]


def test_build_unknown_service_is_a_one_line_error(specs: list[BuildSpec],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "build", "nope")
    assert code == 1 and "no such service: nope" in err and "Traceback" not in err
    assert specs == []


def test_image_build_flags(specs: list[BuildSpec], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "image", "build", "-q", "-t", "a:1", "-t", "b", "-f",
                         "web/Dockerfile.web", "--build-arg", "X=1", "--target", "t",
                         "--label", "k=v", "--network", "none", "web")
    assert code == 0, err
    (spec,) = specs
    assert spec.context == str(tmp_path / "demo" / "web")
    assert spec.dockerfile == str(tmp_path / "demo" / "web" / "Dockerfile.web")
    assert (spec.tags, spec.args, spec.target, spec.labels, spec.network) == (
        ("a:1", "b"), (("X", "1"),), "t", (("k", "v"),), "none")
    assert out.startswith("sha256:")
