"""Attach to real containers: stdin relay, EOF, terminals, early output, exit codes."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.api import Conflict
from engine.local import LocalEngine
from engine.runtime import bundle
from tests.root import runtime_fixtures
from tests.root.runtime_fixtures import spec

engine = runtime_fixtures.engine  # the fixture

pytestmark = pytest.mark.root


class Pipe:
    """An os.pipe whose read end is the attach client's stdin."""

    def __init__(self) -> None:
        r, w = os.pipe()
        self.reader = os.fdopen(r, "rb", buffering=0)
        self.w = w

    def write(self, data: bytes) -> None:
        os.write(self.w, data)

    def close(self) -> None:
        if self.w >= 0:
            os.close(self.w)
            self.w = -1


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    p = Pipe()
    try:
        yield p
    finally:
        p.close()
        p.reader.close()


def attach_in_thread(engine: LocalEngine, cid: str, stdin: Any, out: io.BytesIO,
                     err: io.BytesIO, tty: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            result["code"] = engine.container_attach(cid, stdin, out, err, tty)
        except BaseException as e:  # reported by the test
            result["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    result["thread"] = t
    return result


def finish(result: dict[str, Any], timeout: float = 15.0) -> int:
    result["thread"].join(timeout)
    assert not result["thread"].is_alive(), "attach did not return"
    if "error" in result:
        raise result["error"]
    return int(result["code"])


def test_stdin_relayed_and_eof_ends_cat(engine: LocalEngine, pipe: Pipe) -> None:
    c = engine.container_create(spec(command=("cat",), stdin_open=True))
    engine.container_start(c.id)
    out, err = io.BytesIO(), io.BytesIO()
    result = attach_in_thread(engine, c.id, pipe.reader, out, err)
    pipe.write(b"hi\nthere\n")
    time.sleep(0.2)
    assert engine.container_inspect(c.id).state.status == "running"  # cat waits for more
    pipe.close()  # as docker run -i: the end of our input is the end of cat's
    assert finish(result) == 0
    assert out.getvalue() == b"hi\nthere\n"
    logged = "".join(line.text for line in engine.container_logs(c.id))
    assert logged == "hi\nthere\n"  # the json log still gets everything
    engine.container_remove(c.id)
    assert not bundle.attach_dir(engine.store, c.id).exists()


def test_early_output_is_not_lost(engine: LocalEngine) -> None:
    c = engine.container_create(spec("echo early; echo warn >&2; sleep 0.5; echo late; "
                                     "exit 7"))
    engine.container_start(c.id)
    time.sleep(0.3)  # "early" is out long before we connect
    out, err = io.BytesIO(), io.BytesIO()
    assert engine.container_attach(c.id, None, out, err, False) == 7
    assert out.getvalue() == b"early\nlate\n"
    assert err.getvalue() == b"warn\n"
    engine.container_remove(c.id)


def test_already_exited_replays_log(engine: LocalEngine) -> None:
    c = engine.container_create(spec("echo quick; exit 4"))
    engine.container_start(c.id)
    engine.container_wait(c.id, timeout=10)
    out, err = io.BytesIO(), io.BytesIO()
    assert engine.container_attach(c.id, None, out, err, False) == 4
    assert out.getvalue() == b"quick\n"
    engine.container_remove(c.id)


def test_created_container_cannot_be_attached(engine: LocalEngine) -> None:
    c = engine.container_create(spec("true"))
    with pytest.raises(Conflict):
        engine.container_attach(c.id, None, io.BytesIO(), io.BytesIO(), False)
    engine.container_remove(c.id)


def test_terminal_input_size_and_exit_code(engine: LocalEngine) -> None:
    c = engine.container_create(spec(command=("sh",), tty=True, stdin_open=True))
    engine.container_start(c.id)
    master, slave = os.openpty()
    stdin = os.fdopen(slave, "rb", buffering=0)
    out, err = io.BytesIO(), io.BytesIO()
    try:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        result = attach_in_thread(engine, c.id, stdin, out, err, tty=True)
        time.sleep(0.3)
        # raw mode on our side: the bytes reach the container's terminal as typed
        os.write(master, b"stty size; echo $((6*7)); exit 3\r")
        assert finish(result) == 3
    finally:
        os.close(master)
        stdin.close()
    text = out.getvalue().decode(errors="replace")
    assert "33 101" in text
    assert "42" in text
    assert err.getvalue() == b""  # one stream with a terminal
    engine.container_remove(c.id)


def test_piped_input_to_a_terminal_ends_with_ctrl_d(engine: LocalEngine, pipe: Pipe) -> None:
    c = engine.container_create(spec(command=("cat",), tty=True, stdin_open=True))
    engine.container_start(c.id)
    out, err = io.BytesIO(), io.BytesIO()
    result = attach_in_thread(engine, c.id, pipe.reader, out, err, tty=True)
    pipe.write(b"hi\n")
    pipe.close()  # not a terminal on our side: its end is a Ctrl-D on the container's
    assert finish(result) == 0
    assert out.getvalue().replace(b"\r", b"") == b"hi\nhi\n"  # the terminal's echo, cat's
    engine.container_remove(c.id)


def test_a_client_speaking_nonsense_is_dropped(engine: LocalEngine) -> None:
    from engine.runtime import attach

    c = engine.container_create(spec("read line; echo got $line", stdin_open=True))
    engine.container_start(c.id)
    bad = attach.connect(attach.socket_dir(engine.store.run_dir, c.id))
    assert bad is not None
    try:
        bad.sendall(attach.HEADER.pack(attach.HELLO, attach.MAX_FRAME + 1))
        assert bad.recv(100) == b""  # hung up on
    finally:
        bad.close()
    r, w = os.pipe()
    with os.fdopen(r, "rb", buffering=0) as stdin:
        os.write(w, b"fine\n")
        os.close(w)
        out = io.BytesIO()
        assert engine.container_attach(c.id, stdin, out, io.BytesIO(), False) == 0
    assert out.getvalue() == b"got fine\n"
    engine.container_remove(c.id)
