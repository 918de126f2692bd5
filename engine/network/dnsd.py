"""The DNS responder of one network: a small detached process on the gateway's port 53
(UDP, and TCP for clients that retry there).

Started by the network service with the first running container of the network
(`start`: bind, then a double fork of the calling process, named `pyc-dns-<id>`, its pid
file `<run dir>/dns/<network id>.pid` holding "pid starttime"); it serves until the
network has no live endpoint left (or is gone). Registrations are the network files
under `<root>/networks/`, re-read whenever the directory changes. A querier sees the
containers of every network it shares with them: service names (all replicas, round
robin), `<service>.<project>`, container names (and `<name>.<network>`), hostnames,
aliases. Other dotted names are forwarded to the querier's `dns` servers or the host's
resolvers; unknown single-label names get NXDOMAIN without leaving the machine. Only the
network's own addresses and the host may ask (no open resolver).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import ipaddress
import json
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.api import EngineRuntimeError
from engine.network.dns import (
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    Answerer,
    DnsFormatError,
    NameTable,
    build_response,
    error_response,
    parse_query,
)
from engine.store import Store

CHECK_EVERY = 0.5
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
FORWARD_TIMEOUT = 2.0


def endpoint_names(ep: dict[str, Any]) -> list[str]:
    return [str(n) for n in ep.get("dns_names", [])]


class Registry:
    """The network files of one data root, re-read when the directory changes."""

    def __init__(self, store: Store) -> None:
        self.dir = store.path("networks")
        self.mtime = -1
        self.networks: dict[str, dict[str, Any]] = {}

    def refresh(self) -> None:
        try:
            mtime = os.stat(self.dir).st_mtime_ns
        except FileNotFoundError:
            self.networks = {}
            return
        if mtime == self.mtime:
            return
        self.mtime = mtime
        found = {}
        for path in self.dir.glob("*.json"):
            try:
                data = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "id" in data:
                found[data["id"]] = data
        self.networks = found

    def active(self, net: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Endpoints set up and still alive: a container whose namespace died (even with
        its monitor) took its veth along, so it no longer counts."""
        return {cid: ep for cid, ep in net.get("endpoints", {}).items()
                if ep.get("active") and _link_exists(ep.get("veth", ""))}

    def querier(self, network_id: str, source_ip: str) -> tuple[str | None, dict[str, Any]]:
        net = self.networks.get(network_id, {})
        for cid, ep in self.active(net).items():
            if ep.get("ip") == source_ip:
                return cid, ep
        return None, {}

    def table_for(self, network_id: str, querier: str | None) -> NameTable:
        """Names visible to `querier`: those of every network it is attached to."""
        table = NameTable()
        for nid, net in self.networks.items():
            active = self.active(net)
            if nid != network_id and (querier is None or querier not in active):
                continue
            for _cid, ep in sorted(active.items(), key=lambda kv: kv[1].get("ip", "")):
                table.add(endpoint_names(ep), ep["ip"], ep.get("name"))
        return table


Send = Callable[[bytes], None]


class Responder:
    def __init__(self, store: Store, network_id: str, sock: socket.socket,
                 upstreams: list[tuple[str, int]], tcp: socket.socket | None = None) -> None:
        self.store = store
        self.network_id = network_id
        self.sock = sock
        self.tcp = tcp
        self.upstreams = upstreams
        self.registry = Registry(store)
        self.answerer = Answerer()
        self.lock = threading.Lock()  # the registry and the answerer are shared with TCP

    def handle(self, data: bytes, client: tuple[str, int], send: Send,
               over_tcp: bool = False) -> None:
        with self.lock:
            self.registry.refresh()
            try:
                query = parse_query(data)
            except DnsFormatError:
                reply = error_response(data, 1)
                if reply:
                    send(reply)
                return
            net = self.registry.networks.get(self.network_id, {})
            if not _allowed(client[0], net.get("subnet", "")):
                send(build_response(query, REFUSED))  # not an open resolver
                return
            cid, ep = self.registry.querier(self.network_id, client[0])
            reply = self.answerer.answer(query, self.registry.table_for(self.network_id, cid))
        if reply is not None:
            send(reply)
            return
        if "." not in query.name and not query.name.endswith("arpa"):
            send(build_response(query, NXDOMAIN))
            return
        if net.get("internal"):
            send(build_response(query, REFUSED))
            return
        upstreams = [parse_server(s) for s in ep.get("dns", [])] or self.upstreams
        if not upstreams:
            send(build_response(query, REFUSED))
            return
        if over_tcp:  # already on its own thread
            send(self.forward(data, upstreams, over_tcp) or build_response(query, SERVFAIL))
            return
        threading.Thread(target=lambda: send(self.forward(data, upstreams, over_tcp)
                                             or build_response(query, SERVFAIL)),
                         daemon=True).start()

    def _udp_sender(self, client: tuple[str, int]) -> Send:
        def send(reply: bytes) -> None:
            with contextlib.suppress(OSError):
                self.sock.sendto(reply, client)
        return send

    @staticmethod
    def forward(data: bytes, upstreams: list[tuple[str, int]], over_tcp: bool) -> bytes | None:
        """The first upstream's answer, passed through unchanged (None if none answered)."""
        for server in upstreams:
            try:
                if over_tcp:
                    with socket.create_connection(server, timeout=FORWARD_TIMEOUT) as up:
                        up.sendall(len(data).to_bytes(2, "big") + data)
                        return _read_framed(up)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                    up.settimeout(FORWARD_TIMEOUT)
                    up.sendto(data, server)
                    reply, _ = up.recvfrom(65535)
                    return reply
            except (OSError, ValueError):
                continue
        return None

    def serve_tcp(self, conn: socket.socket, client: tuple[str, int]) -> None:
        """DNS over TCP (RFC 1035 4.2.2): length-prefixed messages, until the client closes."""
        def send(reply: bytes) -> None:
            conn.sendall(len(reply).to_bytes(2, "big") + reply)

        with conn:
            conn.settimeout(10)
            try:
                while True:
                    self.handle(_read_framed(conn), client, send, over_tcp=True)
            except (OSError, ValueError):
                return

    def should_stop(self) -> bool:
        self.registry.refresh()
        net = self.registry.networks.get(self.network_id)
        return net is None or not self.registry.active(net)

    def serve(self) -> None:
        next_check = time.monotonic() + CHECK_EVERY
        while True:
            listening = [self.sock] + ([self.tcp] if self.tcp else [])
            ready, _, _ = select.select(listening, [], [], CHECK_EVERY)
            if self.sock in ready:
                with contextlib.suppress(OSError):
                    data, client = self.sock.recvfrom(65535)
                    self.handle(data, client, self._udp_sender(client))
            if self.tcp is not None and self.tcp in ready:
                with contextlib.suppress(OSError):
                    conn, peer = self.tcp.accept()
                    threading.Thread(target=self.serve_tcp, args=(conn, peer),
                                     daemon=True).start()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_EVERY
                with self.store.lock(lock_name(self.network_id)):
                    if self.should_stop():
                        self.sock.close()
                        if self.tcp is not None:
                            self.tcp.close()
                        with contextlib.suppress(FileNotFoundError):
                            pid_path(self.store, self.network_id).unlink()
                        return


def _read_framed(conn: socket.socket) -> bytes:
    """One length-prefixed DNS message from a TCP stream; ValueError at EOF."""
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ValueError("connection closed")
            data += chunk
        return data

    return exactly(int.from_bytes(exactly(2), "big"))


def _link_exists(name: str) -> bool:
    return bool(name) and os.path.exists(f"/sys/class/net/{name}")


def _allowed(ip: str, subnet: str) -> bool:
    """Containers of the network and the host itself may ask; nobody else."""
    try:
        if ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(subnet):
            return True
    except ValueError:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((ip, 0))  # succeeds only for an address of this host
        except OSError:
            return False
    return True


def lock_name(network_id: str) -> str:
    return f"dns-{network_id[:12]}"


def pid_path(store: Store, network_id: str) -> Path:
    return store.run_path("dns", f"{network_id}.pid")


def parse_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and host and "." in host and port.isdigit():
        return host, int(port)
    return text, 53


def start(store: Store, network_id: str, gateway: str, upstreams: list[str]) -> int:
    """Bind gateway:53 here (so errors reach the caller), then fork the detached responder
    (no new interpreter: a forked copy starts in about a millisecond). Returns its pid."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind((gateway, 53))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((gateway, 53))
        tcp.listen(16)
    except OSError as exc:
        sock.close()
        tcp.close()
        raise EngineRuntimeError(f"DNS responder cannot bind {gateway}:53: {exc.strerror}")
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        _become_responder(store, network_id, sock, tcp,
                          [parse_server(s) for s in upstreams], ready_w)
    os.close(ready_w)
    sock.close()
    tcp.close()
    with contextlib.suppress(ChildProcessError):  # the caller may reap children itself
        os.waitpid(child, 0)  # the intermediate exits at once; the responder is re-parented
    with os.fdopen(ready_r, "rb") as ready:
        data = ready.read()
    if not data.strip().isdigit():
        raise EngineRuntimeError(f"DNS responder on {gateway} did not start")
    pid = int(data)
    pid_path(store, network_id).write_text(f"{pid} {_starttime(pid)}\n")
    return pid


def _become_responder(store: Store, network_id: str, sock: socket.socket,
                      tcp: socket.socket, upstreams: list[tuple[str, int]],
                      ready_w: int) -> None:
    """In the forked child: detach, drop everything inherited, serve; never returns."""
    try:
        gc.freeze()  # inherited objects are never collected here (their fds are closed)
        os.setsid()
        if os.fork():
            os._exit(0)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                    signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        keep = {0, 1, 2, sock.fileno(), tcp.fileno(), ready_w}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        run_dir = pid_path(store, network_id).parent
        os.chdir(run_dir)  # a deleted data root shows as "(deleted)" in /proc/PID/cwd
        _set_name(f"pyc-dns-{network_id[:7]}")
        os.write(ready_w, str(os.getpid()).encode())
        os.close(ready_w)
        Responder(store, network_id, sock, upstreams, tcp).serve()
    finally:
        os._exit(0)


def _set_name(name: str) -> None:
    _libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _starttime(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[19]) if fields[0] != b"Z" else 0


def running_pid(store: Store, network_id: str) -> int:
    """The responder's pid if its pid file names a live process that is still it."""
    try:
        pid, start = (int(x) for x in pid_path(store, network_id).read_text().split())
    except (OSError, ValueError):
        return 0
    return pid if start and _starttime(pid) == start else 0
