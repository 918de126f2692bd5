"""Helpers for the network, DNS, port and volume tests: an engine fixture on a temporary
root with a busybox image, exec with captured output, the CLI in a subprocess, and probes
of host resources."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# ---------------------------------------------------------------------------- real containers

IMAGE = "pyc-net-busybox:test"


def pycompose(engine: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    """`pycompose ARGV` in a subprocess, against the engine's data root."""
    import sys

    env = {**os.environ, "PYCOMPOSE_ROOT": str(engine.store.root)}
    return subprocess.run([sys.executable, "-m", "compose.cli.main", *argv],
                          capture_output=True, text=True, env=env, timeout=60)


def cleanup(engine: Any) -> None:
    """Remove every container, network and volume of the engine's (temporary) root."""
    from engine.api import EngineError

    for c in engine.container_list(all=True):
        with contextlib.suppress(EngineError, OSError):
            engine.container_remove(c.id, force=True)
    with contextlib.suppress(Exception):
        from tests.root.runtime_fixtures import cleanup_engine

        cleanup_engine(engine)  # kills whatever a failed remove left running, by pid
    for c in engine._container_ids():
        with contextlib.suppress(Exception):
            engine._net_release(c)
    for n in engine.network_list():
        with contextlib.suppress(EngineError, OSError):
            engine.network_remove(n.id)
    for v in engine.volume_list():
        with contextlib.suppress(EngineError, OSError):
            engine.volume_remove(v.name, force=True)


def exec_out(engine: Any, ref: str, *cmd: str) -> tuple[int, str]:
    """Run `cmd` in a running container; (exit code, stdout+stderr)."""
    import threading

    from engine.api import ExecSpec

    r, w = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            data = os.read(r, 65536)
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = engine.container_exec(ref, ExecSpec(cmd=cmd), stdout=w, stderr=w)
    finally:
        os.close(w)
    reader.join(10)
    os.close(r)
    return code, b"".join(chunks).decode(errors="replace")


def sleeper(engine: Any, name: str, networks: tuple[Any, ...] = (), start: bool = True,
            **kw: Any) -> Any:
    """A running busybox container that sleeps; `command` may be overridden."""
    from engine.api import ContainerSpec

    kw.setdefault("command", ("sleep", "600"))
    c = engine.container_create(ContainerSpec(image=IMAGE, name=name, networks=networks,
                                              stop_grace_period=0.5, **kw))
    if start:
        engine.container_start(c.id)
    return engine.container_inspect(c.id)


def our_links(prefixes: tuple[str, ...] = ("pc-", "veth")) -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    return {n for n in names if n.startswith(prefixes)}


def port_free(port: int, proto: str = "tcp", host: str = "127.0.0.1",
              wait: float = 2.0) -> bool:
    """Nothing listens on (bound to) the port; TIME_WAIT leftovers do not count."""
    import socket
    import time

    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            if proto == "tcp":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
                if proto == "tcp":
                    s.listen()
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
        time.sleep(0.05)


def free_subnet_prefix() -> str:
    """`10.X.Y` of a random /24 no host address or route uses: a fixed subnet in a test
    collides with the same test of another run sharing the host."""
    import ipaddress
    import random

    text = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    text += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    used = []
    for word in text.split():
        with contextlib.suppress(ValueError):
            if "/" in word:
                used.append(ipaddress.IPv4Network(word, strict=False))
    while True:
        prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        candidate = ipaddress.IPv4Network(f"{prefix}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return prefix


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def net_engine(engine_root: Path, busybox_tar: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An engine on a temporary root with a busybox image; everything it made is removed."""
    from engine.local import LocalEngine
    from tests.conftest import unique

    monkeypatch.setenv("PYCOMPOSE_CGROUP_PARENT", unique("pycn"))
    monkeypatch.setenv("PYCOMPOSE_ROOT", str(engine_root))
    monkeypatch.setenv("PYCOMPOSE_DNS_UPSTREAM", "none")  # never forward off the machine
    engine = LocalEngine(engine_root)
    engine.image_import(str(busybox_tar), IMAGE)
    try:
        yield engine
    finally:
        cleanup(engine)


@pytest.fixture(scope="module")
def shared_net_engine(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path
                      ) -> Iterator[Any]:
    """As `net_engine`, shared by the tests of one module (for costly topologies)."""
    import shutil

    from engine.local import LocalEngine
    from engine.network.bridge import release_root
    from tests.conftest import unique

    root = tmp_path_factory.mktemp("netroot")
    patch = pytest.MonkeyPatch()
    patch.setenv("PYCOMPOSE_CGROUP_PARENT", unique("pycn"))
    patch.setenv("PYCOMPOSE_ROOT", str(root))
    patch.setenv("PYCOMPOSE_DNS_UPSTREAM", "none")
    engine = LocalEngine(root)
    try:
        engine.image_import(str(busybox_tar), IMAGE)
        yield engine
    finally:
        try:
            cleanup(engine)
            release_root(root)
        finally:
            patch.undo()
            from tests.rootsweep import sweep_root

            sweep_root(root)  # what a failed cleanup left; unmounts before the rmtree
            shutil.rmtree(root, ignore_errors=True)
