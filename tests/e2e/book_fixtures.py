"""Fixtures for the book's acceptance scenarios (seed-inventory section 8): one temporary
engine root per test module with `busybox:local` imported as the scenarios say, and
`pyc`, a runner of the real `pycompose` command against it.

Everything a module starts is removed when it ends (containers by the engine, then a
sweep of the root for processes, cgroups, bridges and mounts), also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import IS_ROOT, make_busybox_rootfs_tar, unique
from tests.e2e.conftest import pycompose_command

BASE = "busybox:local"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Pyc:
    """`pyc("image", "ls")` runs `pycompose image ls` and asserts its exit code."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root = root
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("COMPOSE_", "PYCOMPOSE_DEBUG"))}
        self.env["PYCOMPOSE_ROOT"] = str(root)
        self.env["PYCOMPOSE_CGROUP_PARENT"] = unique("pybook")
        self.env["HOME"] = str(workdir / "home")
        (workdir / "home").mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, code: int | None = 0, stdin: str | bytes = "",
                 cwd: Path | None = None, timeout: float = 120,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        raw = subprocess.run([*pycompose_command(), *args], cwd=cwd or self.workdir,
                             env={**self.env, **(env or {})}, capture_output=True,
                             timeout=timeout, input=data)
        proc = subprocess.CompletedProcess(raw.args, raw.returncode,
                                           raw.stdout.decode(errors="replace"),
                                           raw.stderr.decode(errors="replace"))
        if code is not None:
            assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode:
            assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def fails(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """Runs a command that must fail with a one-line error and no traceback."""
        proc = self(*args, code=None, **kw)  # type: ignore[arg-type]
        assert proc.returncode != 0, (args, proc.stdout, proc.stderr)
        return proc

    def engine(self):  # type: ignore[no-untyped-def]
        from engine.api import connect

        return connect(str(self.root))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str = "/", deadline: float = 10.0) -> str:
    """The body served on 127.0.0.1:port, retried until `deadline` seconds pass."""
    import urllib.request

    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def wait_for(check: Callable[[], bool], deadline: float = 10.0, step: float = 0.1) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(step)
    return check()


def cleanup(pyc: Pyc) -> None:
    """Remove what the scenarios left: containers, networks, then sweep the root."""
    from engine.local import LocalEngine
    from tests import rootsweep
    from tests.root.runtime_fixtures import cleanup_engine

    engine = pyc.engine()
    with contextlib.suppress(Exception):
        for c in engine.container_list(all=True):
            with contextlib.suppress(Exception):
                engine.container_remove(c.id, force=True)
    with contextlib.suppress(Exception):
        for n in engine.network_list():
            if n.name not in ("bridge", "host", "none"):
                with contextlib.suppress(Exception):
                    engine.network_remove(n.id)
    old = os.environ.get("PYCOMPOSE_CGROUP_PARENT")
    os.environ["PYCOMPOSE_CGROUP_PARENT"] = pyc.env.get("PYCOMPOSE_CGROUP_PARENT", "")
    try:
        with contextlib.suppress(Exception):
            cleanup_engine(LocalEngine(pyc.root))
    finally:
        if old is None:
            os.environ.pop("PYCOMPOSE_CGROUP_PARENT", None)
        else:
            os.environ["PYCOMPOSE_CGROUP_PARENT"] = old
    if IS_ROOT:
        rootsweep.sweep_root(pyc.root)


@pytest.fixture(scope="module")
def pyc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pyc]:
    """A module's runner; `busybox:local` imported as `make-base-image.sh` does."""
    work = tmp_path_factory.mktemp("book")
    root = work / "engine"
    root.mkdir()
    runner = Pyc(root, work)
    try:
        tar = make_busybox_rootfs_tar(work / "busybox-rootfs.tar")
        runner("image", "import", "-m", "busybox-static rootfs", "--change",
               f"ENV PATH={BASE_PATH}", "--change", 'CMD ["sh"]', str(tar), BASE)
        yield runner
    finally:
        cleanup(runner)
        shutil.rmtree(root, ignore_errors=True)


def write_files(directory: Path, files: dict[str, str]) -> Path:
    """Writes `files` (relative path -> text) under `directory` and returns it."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory
