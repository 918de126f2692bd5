"""The DNS responder of one network: a small detached process on the gateway's UDP port 53.

Started by the network service with the first running container of the network
(`python -m engine.network.dnsd ROOT NETWORK_ID [UPSTREAM...]`); it binds, daemonises,
prints `ready <pid>` and serves until the network has no active endpoint left (or is
gone). Registrations are the network files under `<root>/networks/`, re-read whenever the
directory changes. A querier sees the containers of every network it shares with them:
service names (all replicas, round robin), `<service>.<project>`, container names,
hostnames, aliases. Other dotted names are forwarded to the querier's `dns` servers or the
host's resolvers; unknown single-label names get NXDOMAIN without leaving the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

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
        return {cid: ep for cid, ep in net.get("endpoints", {}).items() if ep.get("active")}

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


class Responder:
    def __init__(self, store: Store, network_id: str, sock: socket.socket,
                 upstreams: list[tuple[str, int]]) -> None:
        self.store = store
        self.network_id = network_id
        self.sock = sock
        self.upstreams = upstreams
        self.registry = Registry(store)
        self.answerer = Answerer()

    def handle(self, data: bytes, client: tuple[str, int]) -> None:
        self.registry.refresh()
        try:
            query = parse_query(data)
        except DnsFormatError:
            reply = error_response(data, 1)
            if reply:
                self.sock.sendto(reply, client)
            return
        net = self.registry.networks.get(self.network_id, {})
        if not _inside(client[0], net.get("subnet", "")):
            self.sock.sendto(build_response(query, REFUSED), client)  # not an open resolver
            return
        cid, ep = self.registry.querier(self.network_id, client[0])
        reply = self.answerer.answer(query, self.registry.table_for(self.network_id, cid))
        if reply is not None:
            self.sock.sendto(reply, client)
            return
        if "." not in query.name and not query.name.endswith("arpa"):
            self.sock.sendto(build_response(query, NXDOMAIN), client)
            return
        if net.get("internal"):
            self.sock.sendto(build_response(query, REFUSED), client)
            return
        upstreams = [parse_server(s) for s in ep.get("dns", [])] or self.upstreams
        if not upstreams:
            self.sock.sendto(build_response(query, REFUSED), client)
            return
        threading.Thread(target=self.forward, args=(data, client, upstreams, query),
                         daemon=True).start()

    def forward(self, data: bytes, client: tuple[str, int], upstreams: list[tuple[str, int]],
                query: Any) -> None:
        for server in upstreams:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(FORWARD_TIMEOUT)
                try:
                    up.sendto(data, server)
                    reply, _ = up.recvfrom(65535)
                except OSError:
                    continue
            self.sock.sendto(reply, client)
            return
        self.sock.sendto(build_response(query, SERVFAIL), client)

    def should_stop(self) -> bool:
        self.registry.refresh()
        net = self.registry.networks.get(self.network_id)
        return net is None or not self.registry.active(net)

    def serve(self) -> None:
        next_check = time.monotonic() + CHECK_EVERY
        while True:
            ready, _, _ = select.select([self.sock], [], [], CHECK_EVERY)
            if ready:
                try:
                    data, client = self.sock.recvfrom(65535)
                except OSError:
                    continue
                with contextlib.suppress(OSError):
                    self.handle(data, client)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_EVERY
                with self.store.lock(lock_name(self.network_id)):
                    if self.should_stop():
                        self.sock.close()
                        with contextlib.suppress(FileNotFoundError):
                            pid_path(self.store, self.network_id).unlink()
                        return


def _inside(ip: str, subnet: str) -> bool:
    try:
        return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(subnet)
    except ValueError:
        return False


def lock_name(network_id: str) -> str:
    return f"dns-{network_id[:12]}"


def pid_path(store: Store, network_id: str) -> Path:
    return store.run_path("dns", f"{network_id}.pid")


def parse_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and host and "." in host and port.isdigit():
        return host, int(port)
    return text, 53


def main(argv: list[str]) -> int:
    root, network_id, gateway = argv[0], argv[1], argv[2]
    upstreams = [parse_server(s) for s in argv[3:]]
    store = Store(root)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((gateway, 53))
    except OSError as exc:
        print(f"error cannot bind {gateway}:53: {exc.strerror}", flush=True)
        return 1
    pid = os.fork()
    if pid:
        pid_path(store, network_id).write_text(f"{pid}\n")
        print(f"ready {pid}", flush=True)
        return 0
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir("/")
    Responder(store, network_id, sock, upstreams).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
