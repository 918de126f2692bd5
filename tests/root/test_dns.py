"""The per-network DNS responder with real containers: replicas round robin, PTR,
forwarding to (local stand-in) upstream servers, per-container `dns`, lifecycle."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.api import EndpointSpec, NetworkSpec
from engine.network import dns, dnsd
from tests.conftest import unique
from tests.root import nethelpers
from tests.root.nethelpers import exec_out, sleeper

pytestmark = pytest.mark.root
net_engine = nethelpers.net_engine


class StubUpstream:
    """A DNS server on 127.0.0.1 answering every A query with one fixed address."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        import ipaddress

        while self.running:
            try:
                data, client = self.sock.recvfrom(512)
            except OSError:
                continue
            query = dns.parse_query(data)
            self.asked.append(query.name)
            answers = [(dns.TYPE_A, ipaddress.IPv4Address(self.answer).packed)] \
                if query.qtype == dns.TYPE_A else []
            self.sock.sendto(dns.build_response(query, dns.NOERROR, answers), client)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def upstreams(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StubUpstream, StubUpstream]]:
    host, own = StubUpstream("198.51.100.7"), StubUpstream("198.51.100.8")
    monkeypatch.setenv("PYCOMPOSE_DNS_UPSTREAM", f"127.0.0.1:{host.port}")
    try:
        yield host, own
    finally:
        host.close()
        own.close()


def ask(server: str, name: str, qtype: int = dns.TYPE_A) -> tuple[int, list[tuple[int, str]]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(dns.build_query(name, qtype), (server, 53))
        return dns.parse_answers(s.recv(4096))


def ask_tcp(server: str, name: str) -> tuple[int, list[tuple[int, str]]]:
    """Two queries on one TCP connection (length-prefixed); the answer to the second."""
    with socket.create_connection((server, 53), timeout=3) as s:
        for ident in (1, 2):
            query = dns.build_query(name, dns.TYPE_A, ident)
            s.sendall(len(query).to_bytes(2, "big") + query)
            size = int.from_bytes(s.recv(2), "big")
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
        return dns.parse_answers(data)


def labels(service: str, project: str) -> tuple[tuple[str, str], ...]:
    return (("com.docker.compose.service", service), ("com.docker.compose.project", project))


def test_replicas_round_robin_and_ptr(net_engine: Any) -> None:
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    project = unique("p")
    replicas = [sleeper(net_engine, f"{project}-api-{i}", (EndpointSpec(net.name),),
                        labels=labels("api", project)) for i in (1, 2)]
    ips = sorted(r.networks[0].ip_address for r in replicas)
    client = sleeper(net_engine, unique("c"), (EndpointSpec(net.name),))
    code, out = exec_out(net_engine, client.id, "nslookup", "api")
    assert code == 0 and all(ip in out for ip in ips), out
    first = ask(net.gateway, f"api.{project}")
    second = ask(net.gateway, f"api.{project}")
    assert first[0] == 0 and sorted(ip for _, ip in first[1]) == ips
    assert [ip for _, ip in second[1]] == list(reversed([ip for _, ip in first[1]]))
    rcode, answers = ask(net.gateway, ".".join(reversed(ips[0].split("."))) + ".in-addr.arpa",
                         dns.TYPE_PTR)
    assert rcode == 0 and answers[0][1] in {r.name for r in replicas}
    assert ask(net.gateway, "api", dns.TYPE_AAAA) == (dns.NOERROR, [])
    rcode, answers = ask_tcp(net.gateway, "api")
    assert rcode == 0 and sorted(ip for _, ip in answers) == ips


def test_forwarding_and_per_container_servers(net_engine: Any,
                                              upstreams: tuple[StubUpstream, StubUpstream]
                                              ) -> None:
    host, own = upstreams
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    plain = sleeper(net_engine, unique("c"), (EndpointSpec(net.name),))
    custom = sleeper(net_engine, unique("d"), (EndpointSpec(net.name),),
                     dns=(f"127.0.0.1:{own.port}",))
    code, out = exec_out(net_engine, plain.id, "nslookup", "fwd.example")
    assert code == 0 and "198.51.100.7" in out, out
    code, out = exec_out(net_engine, custom.id, "nslookup", "fwd.example")
    assert code == 0 and "198.51.100.8" in out, out
    code, out = exec_out(net_engine, plain.id, "nslookup", "nothere")
    assert code != 0 and "NXDOMAIN" in out
    assert "nothere" not in host.asked + own.asked  # single labels never leave the responder
    assert host.asked.count("fwd.example") >= 1 and own.asked.count("fwd.example") >= 1


def test_internal_network_does_not_forward(net_engine: Any,
                                           upstreams: tuple[StubUpstream, StubUpstream]
                                           ) -> None:
    host, _ = upstreams
    net = net_engine.network_create(NetworkSpec(name=unique("i"), internal=True))
    a = sleeper(net_engine, unique("a"), (EndpointSpec(net.name),))
    b = sleeper(net_engine, unique("b"), (EndpointSpec(net.name),))
    code, out = exec_out(net_engine, a.id, "nslookup", b.name)
    assert code == 0 and b.networks[0].ip_address in out
    rcode, _ = ask(net.gateway, "fwd.example")
    assert rcode == dns.REFUSED and host.asked == []
    code, out = exec_out(net_engine, a.id, "ip", "route")
    assert "default" not in out


def test_responder_starts_with_first_and_stops_with_last_container(net_engine: Any) -> None:
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    pid_file = dnsd.pid_path(net_engine.store, net.id)
    assert not pid_file.exists()
    a = sleeper(net_engine, unique("a"), (EndpointSpec(net.name),))
    b = sleeper(net_engine, unique("b"), (EndpointSpec(net.name),))
    pid = dnsd.running_pid(net_engine.store, net.id)
    assert pid
    assert ask(net.gateway, a.name)[1] == [(dns.TYPE_A, a.networks[0].ip_address)]
    net_engine.container_stop(a.id, timeout=0)
    assert ask(net.gateway, a.name)[0] == dns.NXDOMAIN  # stopped: no longer registered
    assert dnsd.running_pid(net_engine.store, net.id) == pid
    net_engine.container_stop(b.id, timeout=0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid) and not pid_file.exists()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((net.gateway, 53))  # the port is free again


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_responder_forgets_containers_whose_monitor_died(net_engine: Any) -> None:
    import os
    import signal

    from engine.runtime import bundle

    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    c = sleeper(net_engine, unique("k"), (EndpointSpec(net.name),))
    pid = dnsd.running_pid(net_engine.store, net.id)
    assert ask(net.gateway, c.name)[0] == dns.NOERROR
    state = bundle.read_state(net_engine.store, c.id)
    os.kill(int(state["monitor_pid"]), signal.SIGKILL)  # no teardown will run
    os.kill(c.state.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)  # its veth went with the namespace: nothing left to serve
