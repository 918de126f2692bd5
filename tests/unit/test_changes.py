"""Waits woken by the engine's container events instead of a fixed poll interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from compose.changes import ContainerChanges, Pacer, watch
from engine.api import ContainerSpec, Event
from tests.support.memengine import MemEngine


class NoEvents(MemEngine):
    def events(self, since: float | None = None, until: float | None = None,
               follow: bool = False) -> Iterator[Event]:
        raise NotImplementedError


def _engine() -> MemEngine:
    e = MemEngine()
    e.add_image("busybox:latest")
    e.container_create(ContainerSpec(image="busybox", name="one"))
    return e


def test_a_container_event_wakes_the_waiter_at_once() -> None:
    engine = _engine()
    changes = watch(engine)
    try:
        seen = changes.count
        threading.Timer(0.1, engine.container_start, ("one",)).start()
        t = time.monotonic()
        assert changes.wait(seen, 5.0)
        assert time.monotonic() - t < 2.0  # woken by the event, not by the timeout
        assert changes.count > seen
    finally:
        changes.close()


def test_without_events_the_wait_times_out_and_reports_no_change() -> None:
    engine = _engine()
    changes = watch(engine)
    try:
        t = time.monotonic()
        assert not changes.wait(changes.count, 0.1)
        assert time.monotonic() - t >= 0.09
    finally:
        changes.close()


def test_an_engine_without_events_falls_back_to_polling() -> None:
    changes = ContainerChanges(NoEvents()).start()
    deadline = time.monotonic() + 2
    while changes.live and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not changes.live
    pacer = Pacer(changes, poll=0.05)
    t = time.monotonic()
    assert pacer.pause() is False
    assert time.monotonic() - t >= 0.04


def test_pacer_rechecks_quickly_after_a_wake_up_and_honours_cancel() -> None:
    engine = _engine()
    changes = watch(engine)
    cancelled = threading.Event()
    try:
        pacer = Pacer(changes, poll=5.0, cancelled=cancelled)
        pacer.mark()
        engine.container_start("one")
        t = time.monotonic()
        assert pacer.pause() is False  # woken by the start event
        pacer.mark()
        assert pacer.pause() is False  # then a quick re-check, not the 5 s poll
        assert time.monotonic() - t < 2.0
        cancelled.set()
        pacer.mark()
        changes.close()  # as the executor does when cancelling: wakes every waiter
        assert pacer.pause() is True
    finally:
        changes.close()


def test_close_ends_the_follower_thread() -> None:
    changes = watch(_engine())
    changes.close()
    thread: Any = changes._thread
    thread.join(5)
    assert not thread.is_alive()
