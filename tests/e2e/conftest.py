"""e2e fixtures: a temporary engine root with the busybox base image, a copy of a
project from tests/e2e/projects, and the real `pycompose` command run against them.
Whatever a test starts is taken down (`down -v -t 0`, then a forced sweep) even when
it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_busybox_rootfs_tar

PROJECTS = Path(__file__).parent / "projects"
BASE_IMAGE = "pycompose-busybox:latest"


def pycompose_command() -> list[str]:
    script = Path(sys.executable).parent / "pycompose"
    return [str(script)] if script.exists() else [sys.executable, "-m", "compose.cli.main"]


@dataclass
class Project:
    directory: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = False, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*pycompose_command(), "--progress", "plain", *args],
                                cwd=self.directory, env=self.env, capture_output=True,
                                text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"pycompose {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*pycompose_command(), "--progress", "plain", *args],
                                cwd=self.directory, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def engine(self):  # type: ignore[no-untyped-def]
        from engine.api import connect

        return connect(self.env["PYCOMPOSE_ROOT"])


@pytest.fixture(scope="session")
def base_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_rootfs_tar(tmp_path_factory.mktemp("e2e-busybox") / "busybox.tar")


@pytest.fixture
def project(engine_root: Path, base_tar: Path, tmp_path: Path) -> Iterator[Callable[[str],
                                                                                   Project]]:
    """`project("health")`: a fresh copy of tests/e2e/projects/health, ready to run."""
    from engine.api import connect

    connect(str(engine_root)).image_import(str(base_tar), BASE_IMAGE, changes=('CMD ["sh"]',))
    made: list[Project] = []

    def make(name: str) -> Project:
        directory = tmp_path / name
        shutil.copytree(PROJECTS / name, directory)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        env["PYCOMPOSE_ROOT"] = str(engine_root)
        made.append(Project(directory, env))
        return made[-1]

    yield make
    for p in made:
        try:
            p.run("down", "-v", "--remove-orphans", "-t", "0", timeout=60)
        finally:
            engine = p.engine()
            for c in engine.container_list(all=True):
                engine.container_remove(c.id, force=True)
            for n in engine.network_list(labels={"com.docker.compose.project": None}):
                engine.network_remove(n.id)
