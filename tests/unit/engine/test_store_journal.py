"""The events journal read from a point in time (binary search, skew-tolerant) and
writes that skip the fsync."""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.store import Store
from engine.store.store import JOURNAL_SKEW, write_atomic


def _journal(store: Store, times: list[float]) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.events_path, "w") as f:
        for i, t in enumerate(times):
            f.write(json.dumps({"time": t, "type": "container", "action": "start",
                                "id": f"c{i}", "attributes": {"pad": "x" * 40}}) + "\n")


def test_since_finds_the_same_events_as_a_full_scan(tmp_path: Path) -> None:
    store = Store(tmp_path)
    # 3000 events (well over the 4 KiB search granularity), a tenth of a second apart,
    # with some written slightly out of order as concurrent writers do
    times = [1000.0 + i * 0.1 for i in range(3000)]
    times[1500], times[1501] = times[1501], times[1500]
    _journal(store, times)
    assert os.path.getsize(store.events_path) > 100 * 4096
    for since in (0.0, 1000.0, 1100.05, 1150.0, 1150.1, 1299.9, 1300.0, 5000.0):
        expected = [t for t in times if t >= since]
        got = [ev["time"] for ev in store.read_events(since=since)]
        assert got == expected, since


def test_events_out_of_order_within_the_skew_are_not_lost(tmp_path: Path) -> None:
    store = Store(tmp_path)
    times = [2000.0 + i * 0.01 for i in range(5000)]
    late = 2030.0 - JOURNAL_SKEW / 2  # stamped earlier than its neighbours, written later
    times.insert(3000, late)
    _journal(store, times)
    got = [ev["time"] for ev in store.read_events(since=late)]
    assert got[0] <= late + JOURNAL_SKEW and late in got
    assert got == [t for t in times if t >= late]


def test_since_on_an_empty_or_torn_journal(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert list(store.read_events(since=1.0)) == []
    _journal(store, [1.0 + i for i in range(500)])
    with open(store.events_path, "a") as f:
        f.write('{"time": 9999, "type": "contai')  # a writer's half line at the end
    assert [ev["time"] for ev in store.read_events(since=498.0)] == [498.0, 499.0, 500.0]


def test_follow_with_since_sees_new_events(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _journal(store, [float(i) for i in range(1, 2000)])
    store.emit("container", "die", "abc")
    import time

    events = store.read_events(since=time.time() - 1, until=time.time() + 0.2, follow=True)
    assert [ev["action"] for ev in events] == ["die"]


def test_write_atomic_without_fsync_still_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, b'{"a": 1}')
    Store.write_json(target, {"a": 2}, durable=False)
    assert Store.read_json(target) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temp left
