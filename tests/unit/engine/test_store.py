"""Store: atomic JSON, cross-process locks, and the events journal."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

from engine.store import Store


def _increment(root: str, n: int) -> None:
    store = Store(root)
    for _ in range(n):
        with store.lock("counter"):
            path = store.path("counter.json")
            value = store.read_json(path, {"n": 0})["n"]
            store.write_json(path, {"n": value + 1})


def test_write_json_is_atomic_and_readable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.path("a", "b.json")
    store.write_json(path, {"x": [1, 2]})
    assert store.read_json(path) == {"x": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]  # no temp file left
    assert store.read_json(store.path("missing.json"), "dflt") == "dflt"


def test_lock_serialises_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(str(tmp_path), 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert Store(tmp_path).read_json(tmp_path / "counter.json") == {"n": 200}


def test_events_are_journalled_and_filtered(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.emit("container", "create", "abc", name="web")
    t = time.time()
    store.emit("container", "start", "abc", name="web")
    events = list(store.read_events())
    assert [(e["type"], e["action"], e["id"]) for e in events] == [
        ("container", "create", "abc"), ("container", "start", "abc")]
    assert events[0]["attributes"] == {"name": "web"}
    assert [e["action"] for e in store.read_events(since=t)] == ["start"]
    for line in store.events_path.read_text().splitlines():
        json.loads(line)


def test_follow_sees_new_events(tmp_path: Path) -> None:
    store = Store(tmp_path)
    seen: list[str] = []

    def follow() -> None:
        for ev in store.read_events(follow=True, until=time.time() + 3, poll=0.02):
            seen.append(ev["action"])
            if ev["action"] == "die":
                return

    th = threading.Thread(target=follow)
    th.start()
    time.sleep(0.1)
    store.emit("container", "die", "abc", exitCode="0")
    th.join(5)
    assert seen == ["die"]


def test_run_dir_follows_the_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PYCOMPOSE_RUN", raising=False)
    assert Store(tmp_path).run_dir == tmp_path.resolve() / "run"
    assert Store("/var/lib/pycompose").run_dir == Path("/run/pycompose")
    monkeypatch.setenv("PYCOMPOSE_RUN", str(tmp_path / "r"))
    assert Store(tmp_path).run_dir == tmp_path / "r"
