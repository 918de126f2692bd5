"""Attaching to a running container: the wire protocol and the client side.

Each container's monitor listens on a unix socket (`socket_path`). A client connects,
sends one HELLO frame ({"stdin": bool}), and receives HELLO back once it is accepted,
then the output produced so far in this run if it is the first client within
REPLAY_SECONDS of the start (so `create; start; attach` misses nothing), then the live
output. The client sends its stdin (STDIN frames, EOF closes the container's stdin when
it has no terminal, as `docker run -i`) and terminal size changes (RESIZE); the monitor
ends with EXIT carrying the exit code. Every frame is `!BI` (type, length) + payload.

`attach` is the client: it relays the caller's stdin/stdout/stderr, puts the caller's
terminal in raw mode for a container with a terminal (so Ctrl-C reaches the container
as a byte), and returns the exit code. None if the monitor could not be reached.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

HEADER = struct.Struct("!BI")
# client -> monitor
STDIN, STDIN_EOF, RESIZE = 0, 1, 2
# monitor -> client
STDOUT, STDERR, EXIT = 1, 2, 3
HELLO = 9  # both ways
MAX_FRAME = 1 << 20
REPLAY_SECONDS = 10.0
SOCKET_NAME = "attach.sock"
MONITOR_LOST = -1  # what `attach` returns when the monitor vanished without an EXIT


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def split_frames(buf: bytearray) -> Iterator[tuple[int, bytes]]:
    """Consume the complete frames at the head of `buf`; ValueError on a bad length."""
    while len(buf) >= HEADER.size:
        kind, size = HEADER.unpack_from(buf)
        if size > MAX_FRAME:
            raise ValueError(f"attach frame too large ({size} bytes)")
        if len(buf) < HEADER.size + size:
            return
        payload = bytes(buf[HEADER.size:HEADER.size + size])
        del buf[:HEADER.size + size]
        yield kind, payload


def socket_dir(run_dir: Path, container_id: str) -> Path:
    return run_dir / "containers" / container_id


def short_address(dir_fd: int) -> str:
    """A socket address under an open directory that fits sun_path (108 bytes)."""
    return f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}"


def connect(directory: Path) -> socket.socket | None:
    """A connection to the monitor's attach socket, or None if nobody listens there."""
    try:
        dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(short_address(dir_fd))
    except OSError:
        sock.close()
        return None
    finally:
        os.close(dir_fd)
    return sock


def winsize(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ,
                                                             b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


def writer(stream: IO[Any]) -> Callable[[bytes], None]:
    """Write bytes to a text or binary stream, flushing at once."""
    raw = getattr(stream, "buffer", None)

    def write(data: bytes) -> None:
        if raw is not None:
            stream.flush()
            raw.write(data)
            raw.flush()
            return
        try:
            stream.write(data)
        except TypeError:
            stream.write(data.decode(errors="replace"))
        stream.flush()

    return write


def _stdin_fd(stdin: IO[Any] | None) -> int | None:
    if stdin is None:
        return None
    try:
        return stdin.fileno()
    except (OSError, ValueError, AttributeError):
        return None


class _Client:
    """One attached session: the socket, the send lock, the terminal state."""

    def __init__(self, sock: socket.socket, stdin_fd: int | None, tty_mode: bool) -> None:
        self.sock = sock
        self.stdin_fd = stdin_fd
        self.term_fd = stdin_fd if tty_mode and stdin_fd is not None and os.isatty(stdin_fd) \
            else None
        self.send_lock = threading.Lock()
        self.resized = False
        self.pending = bytearray()  # what came with the monitor's HELLO

    def send(self, kind: int, payload: bytes = b"") -> None:
        with self.send_lock, contextlib.suppress(OSError):
            self.sock.sendall(frame(kind, payload))

    def send_size(self) -> None:
        if self.term_fd is None:
            return
        size = winsize(self.term_fd)
        if size is not None:
            self.send(RESIZE, struct.pack("!HH", *size))

    def hello(self) -> bool:
        """Introduce ourselves; False if the monitor never accepted us (it was ending)."""
        self.send(HELLO, json.dumps({"stdin": self.stdin_fd is not None}).encode())
        buf = bytearray()
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return False
            if not chunk:
                return False
            buf += chunk
            if len(buf) >= HEADER.size:
                kind, size = HEADER.unpack_from(buf)
                if kind != HELLO:
                    return False
                if len(buf) >= HEADER.size + size:
                    self.pending = buf[HEADER.size + size:]
                    return True

    def relay(self, out: Callable[[bytes], None], err: Callable[[bytes], None]) -> int | None:
        """Pump until EXIT (its code) or the monitor goes away (None)."""
        buf = bytearray(self.pending)
        reading_stdin = self.stdin_fd is not None
        while True:
            for kind, payload in split_frames(buf):
                if kind == STDOUT:
                    out(payload)
                elif kind == STDERR:
                    err(payload)
                elif kind == EXIT:
                    return int(payload or b"0")
            if self.resized:
                self.resized = False
                self.send_size()
            watch: list[Any] = [self.sock]
            if reading_stdin and self.stdin_fd is not None:
                watch.append(self.stdin_fd)
            ready, _, _ = select.select(watch, [], [], 0.2)
            if self.sock in ready:
                try:
                    chunk = self.sock.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    return None
                buf += chunk
            if self.stdin_fd is not None and self.stdin_fd in ready:
                try:
                    data = os.read(self.stdin_fd, 65536)
                except OSError:
                    data = b""
                if data:
                    self.send(STDIN, data)
                else:  # our terminal hung up: the container's stays as it is
                    reading_stdin = False
                    if self.term_fd is None:
                        self.send(STDIN_EOF)


def attach(run_dir: Path, container_id: str, stdin: IO[Any] | None, stdout: IO[Any],
           stderr: IO[Any], tty_mode: bool) -> int | None:
    """Relay the caller's stdio to the container; its exit code, None if the monitor was
    not reachable (gone, or ending) before anything was relayed, MONITOR_LOST if it
    vanished midway."""
    sock = connect(socket_dir(run_dir, container_id))
    if sock is None:
        return None
    client = _Client(sock, _stdin_fd(stdin), tty_mode)
    saved: list[Any] | None = None
    old_handler: Any = None
    try:
        if not client.hello():
            return None
        client.send_size()
        if client.term_fd is not None:
            saved = termios.tcgetattr(client.term_fd)
            tty.setraw(client.term_fd)
            if threading.current_thread() is threading.main_thread():
                old_handler = signal.signal(signal.SIGWINCH, _on_resize(client))
        code = client.relay(writer(stdout), writer(stderr))
        return MONITOR_LOST if code is None else code
    finally:
        if saved is not None and client.term_fd is not None:
            termios.tcsetattr(client.term_fd, termios.TCSADRAIN, saved)
        if old_handler is not None:
            signal.signal(signal.SIGWINCH, old_handler)
        sock.close()


def _on_resize(client: _Client) -> Callable[[int, Any], None]:
    def handler(signum: int, frame_: Any) -> None:
        client.resized = True

    return handler
