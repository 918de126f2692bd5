"""The json-file log writer (lines, partial lines, rotation) and reader (tail, since,
until, follow across rotation)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from engine.api import InvalidArgument
from engine.runtime.logs import LogWriter, parse_size, parse_timestamp, read_logs, timestamp


def texts(lines: object) -> list[str]:
    return [ln.text for ln in lines]  # type: ignore[attr-defined]


def test_lines_are_docker_json_file_records(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(path)
    w.write("stdout", b"hel")
    w.write("stderr", b"oops\n")
    w.write("stdout", b"lo\nwor")
    w.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in records] == [
        ("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "wor")]
    assert records[0]["time"].endswith("Z") and len(records[0]["time"]) == 30
    assert [(ln.stream, ln.text) for ln in read_logs(path)] == [
        ("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "wor")]


def test_rotation_keeps_max_file_files_and_reader_sees_all(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(path, max_size=300, max_file=3)
    for i in range(30):
        w.write("stdout", f"line {i:02d}\n".encode())
    w.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    assert all(p.stat().st_size <= 300 for p in tmp_path.iterdir())
    got = texts(read_logs(path))
    assert got == [f"line {i:02d}\n" for i in range(30 - len(got), 30)]
    assert len(got) < 30  # the oldest were rotated away


def test_max_file_one_truncates(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(path, max_size=200, max_file=1)
    for i in range(20):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    assert [p.name for p in tmp_path.iterdir()] == ["c-json.log"]
    assert texts(read_logs(path))[-1] == "19\n"


def test_tail_since_until(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    base = 1_700_000_000
    with path.open("w") as f:
        for i in range(10):
            f.write(json.dumps({"log": f"{i}\n", "stream": "stdout",
                                "time": timestamp((base + i) * 10**9 + 5)}) + "\n")
    assert texts(read_logs(path, tail=3)) == ["7\n", "8\n", "9\n"]
    assert texts(read_logs(path, tail=0)) == []
    assert texts(read_logs(path, since=base + 8)) == ["8\n", "9\n"]
    assert texts(read_logs(path, until=base + 1.5)) == ["0\n", "1\n"]
    assert parse_timestamp(timestamp((base + 1) * 10**9 + 500_000_000)) == pytest.approx(
        base + 1.5)


def test_follow_crosses_rotation_and_stops_when_writer_ends(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(path, max_size=400, max_file=2)  # ~4 records a file
    w.write("stdout", b"first\n")
    alive = threading.Event()
    alive.set()

    def produce() -> None:
        for i in range(20):
            w.write("stdout", f"n{i}\n".encode())
            time.sleep(0.01)
        w.close()
        alive.clear()

    t = threading.Thread(target=produce)
    t.start()
    got = texts(read_logs(path, follow=True, alive=alive.is_set, poll=0.002))
    t.join()
    assert got == ["first\n"] + [f"n{i}\n" for i in range(20)]
    assert path.with_name("c-json.log.1").exists()  # it did rotate while we followed


def test_parse_size() -> None:
    assert parse_size("10m") == 10 * 1024 * 1024
    assert parse_size("1k") == 1024 and parse_size("512") == 512
    with pytest.raises(InvalidArgument):
        parse_size("ten")


def test_tail_reads_from_the_end_across_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(path, max_size=1000, max_file=5)
    for i in range(40):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    assert len(list(tmp_path.iterdir())) > 2
    all_lines = texts(read_logs(path))
    for n in (0, 1, 7, 15, 1000):
        assert texts(read_logs(path, tail=n)) == (all_lines[-n:] if n else [])


def test_tail_of_a_big_log_is_fast_and_follow_continues_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    record = json.dumps({"log": "x" * 100 + "\n", "stream": "stdout",
                         "time": timestamp()}) + "\n"
    path.write_text(record * 100_000 + json.dumps(
        {"log": "last\n", "stream": "stderr", "time": timestamp()}) + "\n" + '{"log": "par')
    t0 = time.monotonic()
    assert [(ln.stream, ln.text) for ln in read_logs(path, tail=1)] == [("stderr", "last\n")]
    assert time.monotonic() - t0 < 0.2  # it did not parse 100k lines
    calls = iter([True, True, False])
    follower = read_logs(path, tail=1, follow=True, alive=lambda: next(calls, False),
                         poll=0.01)
    assert next(follower).text == "last\n"
    with path.open("a") as f:  # the partial line is completed later: seen once, whole
        f.write('tial\\n", "stream": "stdout", "time": "' + timestamp() + '"}\n')
    assert [ln.text for ln in follower] == ["partial\n"]
