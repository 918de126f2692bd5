"""The real `pycompose watch` on the built-in engine: a file edited on the host shows up
in the container (sync, deletions, through a symlink in the container, initial sync),
sync+exec runs its hook, sync+restart restarts, a rebuild rule recreates its service
from a new image, and Ctrl-C ends the watch with exit 0."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import Project

pytestmark = [pytest.mark.root, pytest.mark.e2e]


class Watching:
    """A running `pycompose watch` whose stdout lines are read in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, wanted: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(f"no {wanted!r} from watch; saw {self.seen}")
            try:
                self.seen.append(self.lines.get(timeout=min(left, 0.5)))
            except queue.Empty:
                continue


@contextmanager
def watching(p: Project, *args: str) -> Iterator[Watching]:
    proc = p.popen("watch", *args)
    try:
        yield Watching(proc)
    finally:
        if proc.poll() is None:  # the test failed before its Ctrl-C
            proc.kill()
        proc.wait(timeout=30)


def until(check: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_watch_syncs_rebuilds_and_stops_on_ctrl_c(project: Callable[[str], Project]) -> None:
    p = project("watch")
    src = p.directory / "src"

    def cat(service: str, path: str) -> str:
        return p.run("exec", "-T", service, "cat", path).stdout

    with watching(p) as w:
        w.expect("Watch enabled")
        assert cat("web", "/app/index.html") == ""  # nothing synced before a change
        assert cat("web", "/etc/web/app.conf") == "port=1\n"  # initial_sync
        api_before = p.run("ps", "-q", "api", check=True).stdout

        began = time.monotonic()
        (src / "index.html").write_text("v2\n")
        (src / "pages").mkdir()
        (src / "pages" / "about.html").write_text("about\n")
        (src / "draft.tmp").write_text("ignored\n")
        assert until(lambda: cat("web", "/app/index.html") == "v2\n"), w.seen
        latency = time.monotonic() - began
        w.expect('Syncing service "web" after 3 changes were detected')
        assert cat("web", "/app/pages/about.html") == "about\n"
        assert p.run("exec", "-T", "web", "test", "-e", "/app/draft.tmp").returncode == 1

        (src / "pages" / "about.html").unlink()
        assert until(lambda: p.run("exec", "-T", "web", "test", "-e",
                                   "/app/pages/about.html").returncode == 1), w.seen

        (p.directory / "hooks" / "msg").write_text("two\n")
        w.expect('Syncing service "web" after 1 changes were detected')
        assert until(lambda: cat("web", "/tmp/hook-ran") == "two\n"), w.seen

        (p.directory / "shared" / "data.txt").write_text("through the link\n")
        assert until(lambda: cat("web", "/var/shared/data.txt") == "through the link\n"), \
            w.seen

        (p.directory / "conf" / "app.conf").write_text("port=2\n")
        w.expect('service(s) ["web"] restarted')
        assert cat("web", "/etc/web/app.conf") == "port=2\n"
        assert cat("web", "/tmp/starts") == "start\nstart\n"

        (p.directory / "api" / "version").write_text("v2\n")
        w.expect('Rebuilding service(s) ["api"] after changes were detected...')
        w.expect('service(s) ["api"] successfully built')
        assert until(lambda: cat("api", "/version") == "v2\n"), w.seen
        assert p.run("ps", "-q", "api", check=True).stdout != api_before
        assert not [i for i in p.engine().image_list() if not i.repo_tags]  # --prune

        w.proc.send_signal(signal.SIGINT)
        assert w.proc.wait(timeout=30) == 0
        w.expect("Watch disabled", timeout=5)
        assert w.proc.stderr is not None
        assert "Traceback" not in w.proc.stderr.read()
    print(f"edit -> content in the container: {latency:.2f}s")
    assert latency < 10, f"sync took {latency:.1f}s"
    # The containers outlive the watch, as with `docker compose watch`.
    assert cat("web", "/app/index.html") == "v2\n"
