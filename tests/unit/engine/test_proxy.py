"""The userland proxy on loopback alone (no containers, no root): TCP relay with
half-close, UDP relay, port clashes, random ports and ranges."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from engine.api import Conflict, InvalidArgument, PortBinding
from engine.network.proxy import Proxy, bind_all


@pytest.fixture
def tcp_sink() -> Iterator[int]:
    """Answers each connection with the number of bytes received before the client's EOF."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                total = 0
                while data := conn.recv(65536):
                    total += len(data)
                conn.sendall(str(total).encode())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def udp_echo() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                data, peer = server.recvfrom(4096)
            except OSError:
                return
            server.sendto(b"echo:" + data, peer)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def started(binding: PortBinding, target_port: int) -> Proxy:
    (proxy,) = bind_all([(PortBinding(target_port, binding.protocol, binding.host_ip,
                                      binding.host_port), "127.0.0.1")])
    proxy.start()
    return proxy


def test_tcp_relay_carries_a_large_stream_and_the_half_close(tcp_sink: int) -> None:
    proxy = started(PortBinding(0, "tcp", "127.0.0.1"), tcp_sink)
    try:
        port = proxy.published.host_port
        assert port > 0 and proxy.published.host_ip == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"x" * (8 << 20))
            c.shutdown(socket.SHUT_WR)
            assert c.recv(64) == str(8 << 20).encode()
    finally:
        proxy.stop()
        proxy.stop()  # idempotent
    with pytest.raises(OSError):  # closed for good: not even a pending handshake
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_udp_relay_answers_each_client(udp_echo: int) -> None:
    proxy = started(PortBinding(0, "udp", "127.0.0.1"), udp_echo)
    try:
        for payload in (b"one", b"two"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(3)
                c.sendto(payload, ("127.0.0.1", proxy.published.host_port))
                assert c.recv(100) == b"echo:" + payload
    finally:
        proxy.stop()


def test_clash_names_the_port_and_releases_what_was_bound() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()
    try:
        with pytest.raises(Conflict, match=f"Bind for 127.0.0.1:{taken} failed: port is "
                                           "already allocated"):
            bind_all([(PortBinding(80, "tcp", "127.0.0.1", str(free_port)), "127.0.0.1"),
                      (PortBinding(81, "tcp", "127.0.0.1", str(taken)), "127.0.0.1")])
        with socket.socket() as again:  # the first binding was released
            again.bind(("127.0.0.1", free_port))
    finally:
        blocker.close()


def test_range_takes_the_first_free_port_and_bad_values_are_refused() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        (proxy,) = bind_all([(PortBinding(80, "tcp", "127.0.0.1", f"{taken}-{taken + 5}"),
                              "127.0.0.1")])
        assert taken < proxy.published.host_port <= taken + 5
        proxy.stop()
    finally:
        blocker.close()
    with pytest.raises(InvalidArgument, match="invalid host port"):
        bind_all([(PortBinding(80, "tcp", "", "http"), "127.0.0.1")])
    with pytest.raises(InvalidArgument, match="sctp"):
        bind_all([(PortBinding(80, "sctp", "", ""), "127.0.0.1")])
