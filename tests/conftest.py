"""Shared test fixtures: root gating, temporary engine roots, a busybox base image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
IS_ROOT = os.geteuid() == 0
IN_CI = bool(os.environ.get("CI"))


def pytest_configure(config: pytest.Config) -> None:
    """As root, the run fails if it leaves anything on the host (tests/leakcheck.py).
    Containers' DNS never forwards off the machine (a test wanting an upstream sets one)."""
    from tests import leakcheck

    os.environ.setdefault("PYCOMPOSE_DNS_UPSTREAM", "none")
    _teardown_on_sigterm()
    leakcheck.register(config)


def _teardown_on_sigterm() -> None:
    """A run stopped with SIGTERM (`timeout`, a cancelled CI job) still tears its fixtures
    down: the signal becomes KeyboardInterrupt, which pytest ends gracefully. Forked
    children (monitors, DNS responders) get the default disposition back, as in production."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


TEST_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember a failed setup or call, for fixtures that keep evidence (engine_root)."""
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[TEST_FAILED] = True
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Root tests run as root; elsewhere they are skipped, but never in CI."""
    if IS_ROOT:
        return
    for item in items:
        if "root" in item.keywords:
            if IN_CI:
                item.add_marker(pytest.mark.xfail(reason="CI must run as root", strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason="needs root"))


def unique(prefix: str = "pct") -> str:
    """A short unique name (fits interface names: 15 chars at most)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def busybox_applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def make_busybox_rootfs_tar(dest: Path) -> Path:
    """A rootfs tarball from Debian's busybox-static: /bin/busybox, applet links, /etc."""
    if not Path(BUSYBOX).exists():
        pytest.fail("busybox-static is not installed (apt-get install busybox-static)")
    with tarfile.open(dest, "w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            tar.addfile(ti)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            import io

            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            tar.addfile(ti, io.BytesIO(data))

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root",
                  "home", "var", "dev", "proc", "sys", "run"):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        tar.add(BUSYBOX, "bin/busybox")
        seen = {"bin/busybox"}
        for applet in busybox_applets():
            name = applet.lstrip("/")
            if name in seen or "/" not in name:
                continue
            seen.add(name)
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/bin/busybox"
            tar.addfile(ti)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                 b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                 b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                 b"app:x:1000:1000:app:/home/app:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\napp:x:1000:\n")
    return dest


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_rootfs_tar(tmp_path_factory.mktemp("busybox") / "busybox.tar")


@pytest.fixture
def engine_root(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh engine data root; whatever a test leaves in it is removed afterwards:
    processes, cgroups, bridges and rules live outside the root, and mounts under it are
    detached first so that deleting the root never reaches into a bind mount's source."""
    root = tmp_path / "engine"
    root.mkdir()
    yield root
    from tests import leakcheck, rootsweep

    if request.node.stash.get(TEST_FAILED, False):  # the logs outlive the root
        rootsweep.keep_logs(root, tmp_path / "engine-logs")
    if IS_ROOT:
        leakcheck.note_fixture_sweep(request.config, request.node.nodeid,
                                     rootsweep.sweep_root(root))
    shutil.rmtree(root, ignore_errors=True)
