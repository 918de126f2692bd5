"""The monitor's side of attach: the listening socket, its clients, and the replay buffer.

The monitor (monitor.py) owns one AttachHub for its lifetime. Per run it hands over the
container's stdin (the write end of the stdin pipe, or the terminal's master) with
`begin_run`, feeds every chunk of output through `output` (besides the json log), lets
the hub handle the events of the fds it registered on the run's selector (`handle`),
and ends the run with `end_run(code)`, which sends EXIT and closes the clients.
Protocol and client: attach.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import socket
import struct
import sys
import termios
import time
from pathlib import Path

from engine.runtime.attach import (
    EXIT,
    HELLO,
    REPLAY_SECONDS,
    RESIZE,
    SOCKET_NAME,
    STDERR,
    STDIN,
    STDIN_EOF,
    STDOUT,
    frame,
    short_address,
    split_frames,
)

REPLAY_MAX = 1 << 20
CLIENT_BACKLOG_MAX = 8 << 20  # a client that lags this far behind is dropped
STREAMS = {"stdout": STDOUT, "stderr": STDERR}
MARK = "attach"  # the selector data of every fd the hub registered


class _Peer:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.greeted = False
        self.wants_stdin = False


class AttachHub:
    """Listens on `<dir>/attach.sock`; relays one container's stdio to its clients."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / SOCKET_NAME)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM
                                      | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        self.listener.bind(short_address(self.dir_fd))
        os.chmod(directory / SOCKET_NAME, 0o600)
        self.listener.listen(16)
        self.peers: dict[int, _Peer] = {}
        self.sel: selectors.BaseSelector | None = None
        self.stdin_fd = -1
        self.terminal_fd = -1
        self.stdin_is_terminal = False
        self.stdin_pending = bytearray()
        self.stdin_close_after = False
        self.replay: list[tuple[int, bytes]] | None = None
        self.replay_size = 0
        self.replay_until = 0.0

    # ------------------------------------------------------------------ per run

    def begin_run(self, sel: selectors.BaseSelector, stdin_fd: int, terminal_fd: int) -> None:
        """Relay input to `stdin_fd` (-1: none; the hub closes it unless it is the terminal
        master `terminal_fd`, -1 without a terminal) and keep output for a late client."""
        self.sel = sel
        self.stdin_fd = stdin_fd
        self.terminal_fd = terminal_fd
        self.stdin_is_terminal = stdin_fd >= 0 and stdin_fd == terminal_fd
        self.stdin_pending.clear()
        self.stdin_close_after = False
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
        self.replay = [] if not self.peers else None
        self.replay_size = 0
        self.replay_until = time.monotonic() + REPLAY_SECONDS
        sel.register(self.listener, selectors.EVENT_READ, MARK)
        for peer in self.peers.values():
            sel.register(peer.sock, selectors.EVENT_READ, MARK)

    def end_run(self, code: int) -> None:
        """Tell every client the exit code, and let them go."""
        for peer in list(self.peers.values()):
            peer.outbox += frame(EXIT, str(code).encode())
            with contextlib.suppress(OSError):
                peer.sock.setblocking(True)
                peer.sock.settimeout(2.0)
                peer.sock.sendall(peer.outbox)
            self._drop(peer)
        self.replay = None

    def detach_selector(self) -> None:
        """The run's selector and streams are closing: forget them."""
        self._close_stdin()
        self.terminal_fd = -1
        self.sel = None

    def timeout(self) -> float | None:
        """How soon the monitor should call `flush` again (pending stdin), else None."""
        return 0.05 if self.stdin_pending else None

    # ------------------------------------------------------------------ output

    def output(self, stream: str, data: bytes) -> None:
        kind = STREAMS[stream]
        if self.replay is not None:
            if time.monotonic() > self.replay_until or \
                    self.replay_size + len(data) > REPLAY_MAX:
                self.replay = None
            else:
                self.replay.append((kind, data))
                self.replay_size += len(data)
        for peer in list(self.peers.values()):
            if peer.greeted:
                self._send(peer, frame(kind, data))

    def _send(self, peer: _Peer, data: bytes) -> None:
        peer.outbox += data
        self._flush_peer(peer)

    def _flush_peer(self, peer: _Peer) -> None:
        try:
            while peer.outbox:
                n = peer.sock.send(peer.outbox)
                del peer.outbox[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(peer)
            return
        if len(peer.outbox) > CLIENT_BACKLOG_MAX:
            print("attach: dropping a client that does not read", file=sys.stderr)
            self._drop(peer)
            return
        self._watch(peer)

    def _watch(self, peer: _Peer) -> None:
        if self.sel is None:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.outbox else 0)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.modify(peer.sock, events, MARK)

    # ------------------------------------------------------------------ events

    def handle(self, fileobj: object, mask: int) -> None:
        if fileobj is self.listener:
            self._accept()
            return
        assert isinstance(fileobj, socket.socket)
        peer = self.peers.get(fileobj.fileno())
        if peer is None:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush_peer(peer)
        if mask & selectors.EVENT_READ and peer.sock.fileno() in self.peers:
            self._receive(peer)

    def flush(self) -> None:
        """Retry pending stdin (the container was not reading)."""
        if self.stdin_fd < 0:
            return
        try:
            while self.stdin_pending:
                n = os.write(self.stdin_fd, self.stdin_pending)
                del self.stdin_pending[:n]
        except BlockingIOError:
            return
        except OSError:  # the container closed its stdin
            self.stdin_pending.clear()
        if self.stdin_close_after:
            self._close_stdin()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                print(f"attach: accept: {e}", file=sys.stderr)
                return
            sock.setblocking(False)
            peer = _Peer(sock)
            self.peers[sock.fileno()] = peer
            if self.sel is not None:
                self.sel.register(sock, selectors.EVENT_READ, MARK)

    def _receive(self, peer: _Peer) -> None:
        try:
            chunk = peer.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away: a pipe ends as its EOF would; a terminal stays
            if peer.wants_stdin and not self.stdin_is_terminal:
                self._stdin_eof()
            self._drop(peer)
            return
        peer.inbox += chunk
        try:
            for kind, payload in split_frames(peer.inbox):
                self._on_frame(peer, kind, payload)
        except ValueError as e:
            print(f"attach: {e}", file=sys.stderr)
            self._drop(peer)

    def _on_frame(self, peer: _Peer, kind: int, payload: bytes) -> None:
        if kind == HELLO and not peer.greeted:
            try:
                hello = json.loads(payload or b"{}")
            except ValueError:
                hello = {}
            peer.wants_stdin = bool(hello.get("stdin")) and self.stdin_fd >= 0
            peer.greeted = True
            replay = b"".join(frame(k, d) for k, d in self.replay or ())
            self.replay = None  # the first client takes what came before it
            self._send(peer, frame(HELLO) + replay)
        elif kind == STDIN and peer.wants_stdin and self.stdin_fd >= 0:
            self.stdin_pending += payload
            self.flush()
        elif kind == STDIN_EOF and peer.wants_stdin:
            peer.wants_stdin = False
            self._stdin_eof()
        elif kind == RESIZE and self.terminal_fd >= 0 and len(payload) == 4:
            rows, cols = struct.unpack("!HH", payload)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.terminal_fd, termios.TIOCSWINSZ,
                            struct.pack("HHHH", rows, cols, 0, 0))

    def _stdin_eof(self) -> None:
        """As `docker run -i`: the end of the client's input closes the container's stdin;
        a terminal stays (it belongs to the container) and reads end-of-file (Ctrl-D)."""
        if self.stdin_fd < 0:
            return
        if self.stdin_is_terminal:
            self.stdin_pending += b"\x04"
        else:
            self.stdin_close_after = True
        self.flush()

    def _close_stdin(self) -> None:
        if self.stdin_fd >= 0 and not self.stdin_is_terminal:
            with contextlib.suppress(OSError):
                os.close(self.stdin_fd)
        self.stdin_fd = -1
        self.stdin_pending.clear()
        self.stdin_close_after = False

    def _drop(self, peer: _Peer) -> None:
        fd = peer.sock.fileno()
        if self.sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(peer.sock)
        self.peers.pop(fd, None)
        peer.sock.close()

    def close(self) -> None:
        for peer in list(self.peers.values()):
            self._drop(peer)
        self._close_stdin()
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.directory / SOCKET_NAME)
        os.close(self.dir_fd)
        with contextlib.suppress(OSError):
            self.directory.rmdir()
