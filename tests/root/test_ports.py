"""Published ports through the userland proxy, with real containers: TCP and UDP on
127.0.0.1, a random host port reported, and a clash that fails cleanly."""

from __future__ import annotations

import socket
import time
import urllib.request
from typing import Any

import pytest

from engine.api import Conflict, EndpointSpec, Mount, NetworkSpec, PortBinding
from engine.network import bridge, dnsd
from tests.conftest import unique
from tests.root import nethelpers
from tests.root.nethelpers import free_port, our_links, port_free, sleeper

pytestmark = pytest.mark.root
net_engine = nethelpers.net_engine

# The busybox image has no UDP server; the host's python3 is bound in read-only.
HOST_PYTHON = (Mount("bind", "/usr", "/usr", read_only=True),
               Mount("bind", "/lib", "/usr/lib", read_only=True),
               Mount("bind", "/lib64", "/usr/lib64", read_only=True))
UDP_ECHO = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0', 9999))\n"
            "while True:\n"
            "    data, peer = s.recvfrom(2048)\n"
            "    s.sendto(b'echo:' + data, peer)\n")
SERVERS = ("/bin/busybox", "sh", "-c", "B=/bin/busybox; $B mkdir -p /www && "
           "echo published > /www/index.html && $B httpd -p 8080 -h /www && "
           "exec /usr/bin/python3 -c \"$UDP\"")


def http_get(port: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def udp_ask(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        while True:
            s.sendto(payload, ("127.0.0.1", port))
            try:
                return s.recv(2048)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise


def test_tcp_and_udp_published_on_loopback(net_engine: Any) -> None:
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    tcp, udp = free_port(), free_port()
    c = sleeper(net_engine, unique("pub"), (EndpointSpec(net.name),), command=SERVERS,
                env=(("UDP", UDP_ECHO),), mounts=HOST_PYTHON,
                ports=(PortBinding(8080, "tcp", "127.0.0.1", str(tcp)),
                       PortBinding(9999, "udp", "127.0.0.1", str(udp))))
    assert {(p.protocol, p.host_ip, p.host_port, p.container_port) for p in c.ports} == \
        {("tcp", "127.0.0.1", tcp, 8080), ("udp", "127.0.0.1", udp, 9999)}
    assert http_get(tcp) == "published\n"
    assert udp_ask(udp, b"ping") == b"echo:ping"
    big = b"x" * 1400
    assert udp_ask(udp, big) == b"echo:" + big
    net_engine.container_stop(c.id, timeout=0)
    assert port_free(tcp) and port_free(udp, "udp")  # the proxies went with the container


def test_random_host_port_is_reported(net_engine: Any) -> None:
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    c = sleeper(net_engine, unique("rnd"), (EndpointSpec(net.name),),
                command=("sh", "-c", "mkdir /www && echo random > /www/index.html && "
                         "exec httpd -f -p 8080 -h /www"),
                ports=(PortBinding(8080, host_ip="127.0.0.1"),))
    (published,) = c.ports
    assert published.host_port > 0 and published.container_port == 8080
    assert http_get(published.host_port) == "random\n"


def attached_to(bridge_name: str) -> set[str]:
    """The links enslaved to a bridge."""
    import subprocess

    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge_name],
                         capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_port_clash_fails_cleanly_naming_the_port(net_engine: Any) -> None:
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        c = sleeper(net_engine, unique("clash"), (EndpointSpec(net.name),), start=False,
                    ports=(PortBinding(80, host_ip="127.0.0.1", host_port=str(port)),))
        links_before = attached_to(f"pc-{net.id[:12]}")
        with pytest.raises(Conflict, match=f"127.0.0.1:{port}.*already allocated"):
            net_engine.container_start(c.id)
        state = net_engine.container_inspect(c.id).state
        assert not state.running
        assert bridge.veth_name_for(c.id, net.id) not in our_links()
        # only this network's bridge: other runs may add links to the host meanwhile
        assert attached_to(f"pc-{net.id[:12]}") <= links_before
        endpoint = net_engine.network_inspect(net.id)
        assert endpoint.containers == (c.id,)  # address kept until removal, as Docker
        pid_file = dnsd.pid_path(net_engine.store, net.id)
        deadline = time.monotonic() + 3
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_file.exists()  # the responder left with the only endpoint
    finally:
        blocker.close()
    assert port_free(port)
    net_engine.container_start(c.id)  # once the port is free the same container starts
    assert net_engine.container_inspect(c.id).ports[0].host_port == port


def test_nft_dnat_driver(net_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.network import nft

    monkeypatch.setenv("PYCOMPOSE_PORT_DRIVER", "nft")
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    tcp, udp = free_port(), free_port()
    c = sleeper(net_engine, unique("nat"), (EndpointSpec(net.name),), command=SERVERS,
                env=(("UDP", UDP_ECHO),), mounts=HOST_PYTHON,
                ports=(PortBinding(8080, "tcp", "127.0.0.1", str(tcp)),
                       PortBinding(9999, "udp", "127.0.0.1", str(udp))))
    assert len(nft.tagged(c.id[:12])) == 5  # 2 x (output, prerouting) + masquerade
    assert http_get(tcp) == "published\n"
    assert udp_ask(udp, b"ping") == b"echo:ping"
    assert not port_free(tcp)  # still reserved, so a clash is detected
    net_engine.container_stop(c.id, timeout=0)
    assert nft.tagged(c.id[:12]) == [] and port_free(tcp)
