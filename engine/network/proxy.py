"""Userland port publishing: TCP (splice, a thread per direction) and UDP proxies.

Runs as threads inside the container's monitor process (or whichever process called
`_net_setup`). `bind_all` binds every host port first, so a port that is taken raises
`Conflict` naming it before anything is started, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from engine.api import Conflict, InvalidArgument, PortBinding, PublishedPort

SPLICE_CHUNK = 1 << 20
UDP_IDLE = 60.0
CONNECT_TIMEOUT = 5.0


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _candidate_ports(host_port: str) -> list[int]:
    text = host_port.strip()
    if text in ("", "0"):
        return [0]
    low, sep, high = text.partition("-")
    try:
        first = int(low)
        last = int(high) if sep else first
    except ValueError:
        raise InvalidArgument(f"invalid host port {host_port!r}")
    if not (0 < first <= last <= 65535):
        raise InvalidArgument(f"invalid host port range {host_port!r}")
    return list(range(first, last + 1))


def bind_host_socket(binding: PortBinding) -> socket.socket:
    """A socket bound (and listening, for TCP) on the binding's host address and port."""
    host_ip = binding.host_ip or "0.0.0.0"
    kind = socket.SOCK_STREAM if binding.protocol == "tcp" else socket.SOCK_DGRAM
    if binding.protocol not in ("tcp", "udp"):
        raise InvalidArgument(f"publishing {binding.protocol} ports is not supported")
    ports = _candidate_ports(binding.host_port)
    for port in ports:
        sock = socket.socket(_family(host_ip), kind | socket.SOCK_CLOEXEC)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host_ip, port))
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"cannot publish on {host_ip}: address not available "
                                      "on this host")
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
    shown = f"[{host_ip}]" if ":" in host_ip else host_ip
    raise Conflict(f"Bind for {shown}:{binding.host_port} failed: port is already allocated")


@dataclass
class Proxy:
    """One published port: the bound host socket and the relay threads behind it."""

    binding: PortBinding
    sock: socket.socket
    target: tuple[str, int]
    stopping: threading.Event = field(default_factory=threading.Event)
    peers: set[socket.socket] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake_r: int = -1
    wake_w: int = -1
    thread: threading.Thread | None = None

    @property
    def published(self) -> PublishedPort:
        host_ip = self.binding.host_ip or "0.0.0.0"
        return PublishedPort(container_port=self.binding.container_port,
                             protocol=self.binding.protocol, host_ip=host_ip,
                             host_port=self.sock.getsockname()[1])

    def start(self) -> None:
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC)
        loop = self._tcp_loop if self.binding.protocol == "tcp" else self._udp_loop
        self.thread = threading.Thread(target=loop, daemon=True,
                                       name=f"proxy-{self.published.host_port}")
        self.thread.start()

    def stop(self) -> None:
        """Close the host socket and every relayed connection; safe to call twice."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.wake_w >= 0:  # the relay thread closes the read end when it leaves
            with contextlib.suppress(OSError):
                os.write(self.wake_w, b"x")
            os.close(self.wake_w)
        if self.thread is not None and self.thread is not threading.current_thread():
            # a thread still in select() keeps the socket (and its accept queue) alive
            self.thread.join(2)
        with self.lock:
            peers = list(self.peers)
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                peer.close()
        self.sock.close()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self.lock:
            if add:
                self.peers.add(sock)
            else:
                self.peers.discard(sock)

    def _wait_readable(self, sock: socket.socket, timeout: float | None = None) -> bool:
        try:
            ready, _, _ = select.select([sock.fileno(), self.wake_r], [], [], timeout)
        except (OSError, ValueError):
            return False
        return sock.fileno() in ready and not self.stopping.is_set()

    # ------------------------------------------------------------------ TCP

    def _tcp_loop(self) -> None:
        try:
            while not self.stopping.is_set():
                if not self._wait_readable(self.sock):
                    continue
                try:
                    client, _ = self.sock.accept()
                except OSError:
                    continue
                threading.Thread(target=self._tcp_connect, args=(client,), daemon=True).start()
        finally:
            os.close(self.wake_r)

    def _tcp_connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(s, True)
        done = threading.Event()
        threading.Thread(target=self._pump, args=(upstream, client, done), daemon=True).start()
        self._pump(client, upstream, done)

    def _pump(self, src: socket.socket, dst: socket.socket, other_done: threading.Event) -> None:
        """Copy src -> dst with splice until EOF; the second pump to end closes both."""
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            while True:
                n = os.splice(src.fileno(), w, SPLICE_CHUNK)
                if n == 0:
                    break
                while n:
                    n -= os.splice(r, dst.fileno(), n)
        except OSError:
            pass
        finally:
            os.close(r)
            os.close(w)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        if other_done.is_set():
            for s in (src, dst):
                self._track(s, False)
                s.close()
        else:
            other_done.set()

    # ------------------------------------------------------------------ UDP

    def _udp_loop(self) -> None:
        flows: dict[tuple[str, int], tuple[socket.socket, list[float]]] = {}
        try:
            while not self.stopping.is_set():
                if not self._wait_readable(self.sock, 5.0):
                    self._expire(flows)
                    continue
                try:
                    data, client = self.sock.recvfrom(65535)
                except OSError:
                    continue
                flow = flows.get(client)
                if flow is None:
                    upstream = socket.socket(_family(self.target[0]), socket.SOCK_DGRAM)
                    upstream.connect(self.target)
                    flow = (upstream, [time.monotonic()])
                    flows[client] = flow
                    self._track(upstream, True)
                    threading.Thread(target=self._udp_replies, args=(upstream, client, flow[1]),
                                     daemon=True).start()
                flow[1][0] = time.monotonic()
                with contextlib.suppress(OSError):
                    flow[0].send(data)
                self._expire(flows)
        finally:
            for upstream, _ in flows.values():
                with contextlib.suppress(OSError):
                    upstream.close()
            os.close(self.wake_r)

    def _expire(self, flows: dict[tuple[str, int], tuple[socket.socket, list[float]]]) -> None:
        now = time.monotonic()
        for client, (upstream, last) in list(flows.items()):
            if now - last[0] > UDP_IDLE:
                del flows[client]
                self._track(upstream, False)
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_RDWR)
                upstream.close()

    def _udp_replies(self, upstream: socket.socket, client: tuple[str, int],
                     last: list[float]) -> None:
        while not self.stopping.is_set():
            if not self._wait_readable(upstream, UDP_IDLE):
                if time.monotonic() - last[0] > UDP_IDLE:
                    return
                continue
            try:
                data = upstream.recv(65535)
            except ConnectionRefusedError:
                continue  # ICMP unreachable: nothing listened yet; later replies still count
            except OSError:
                return
            last[0] = time.monotonic()
            with contextlib.suppress(OSError):
                self.sock.sendto(data, client)


def bind_all(bindings: list[tuple[PortBinding, str]]) -> list[Proxy]:
    """Bind every (binding, container ip); on a clash close what was bound and raise."""
    bound: list[Proxy] = []
    try:
        for binding, target_ip in bindings:
            sock = bind_host_socket(binding)
            bound.append(Proxy(binding, sock, (target_ip, binding.container_port)))
    except BaseException:
        for proxy in bound:
            proxy.sock.close()
        raise
    return bound
