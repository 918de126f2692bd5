"""Bridge networks with real containers: reachability by service name, alias and
container name; isolation between networks; a container on two networks; the API."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import (
    Conflict,
    EndpointSpec,
    InvalidArgument,
    IPAMConfig,
    NetworkSpec,
    NotFound,
)
from tests.conftest import unique
from tests.root import nethelpers
from tests.root.nethelpers import exec_out, our_links, sleeper

net_engine = nethelpers.net_engine
shared_net_engine = nethelpers.shared_net_engine

pytestmark = pytest.mark.root


def compose_labels(service: str, project: str) -> tuple[tuple[str, str], ...]:
    return (("com.docker.compose.service", service), ("com.docker.compose.project", project))


def web(engine: Any, name: str, network: str, project: str, aliases: tuple[str, ...] = ()
        ) -> Any:
    """A busybox httpd answering `hello from <name>` on port 8080."""
    script = (f"mkdir -p /www && echo hello from {name} > /www/index.html && "
              "exec httpd -f -p 8080 -h /www")
    return sleeper(engine, name, (EndpointSpec(network, aliases=aliases),),
                   command=("sh", "-c", script), labels=compose_labels("web", project))


@pytest.fixture(scope="module")
def topology(shared_net_engine: Any) -> dict[str, Any]:
    """front: web (alias www) + client; back: other; both: a container on front and back.
    Built once for the module's tests (they only read it)."""
    engine = shared_net_engine
    project = unique("p")
    front, back = unique("front"), unique("back")
    engine.network_create(NetworkSpec(name=front))
    engine.network_create(NetworkSpec(name=back))
    return {
        "engine": engine, "project": project, "front": front, "back": back,
        "web": web(engine, f"{project}-web-1", front, project, aliases=("www",)),
        "client": sleeper(engine, unique("client"), (EndpointSpec(front),)),
        "other": sleeper(engine, unique("other"), (EndpointSpec(back),)),
        "both": sleeper(engine, unique("both"), (EndpointSpec(front), EndpointSpec(back))),
        "backweb": web(engine, f"{project}-bweb-1", back, unique("q")),
    }


def test_same_network_reaches_by_service_alias_and_container_name(
        topology: dict[str, Any]) -> None:
    net_engine = topology["engine"]
    web_ip = topology["web"].networks[0].ip_address
    client = topology["client"].id
    web_name = topology["web"].name
    for name in ("web", "www", web_name, f"web.{topology['project']}",
                 f"{web_name}.{topology['front']}"):
        code, out = exec_out(net_engine, client, "nslookup", name)
        assert code == 0 and web_ip in out, (name, out)
        code, out = exec_out(net_engine, client, "timeout", "5", "wget", "-q", "-O-",
                             f"http://{name}:8080/")
        assert (code, out) == (0, f"hello from {web_name}\n"), name
    code, out = exec_out(net_engine, client, "sh", "-c", "echo ping | nc -w 2 web 8080")
    assert "HTTP/1.1" in out or "HTTP/1.0" in out


def test_other_network_cannot_resolve_or_reach(topology: dict[str, Any]) -> None:
    net_engine = topology["engine"]
    other = topology["other"].id
    web_ip = topology["web"].networks[0].ip_address
    for name in ("www", topology["web"].name, f"web.{topology['project']}"):
        code, out = exec_out(net_engine, other, "nslookup", name)
        assert code != 0 and web_ip not in out, (name, out)
    # "web" there is the other project's web service, never the front one
    code, out = exec_out(net_engine, other, "nslookup", "web")
    assert web_ip not in out and topology["backweb"].networks[0].ip_address in out
    code, out = exec_out(net_engine, other, "nc", "-w", "1", web_ip, "8080")
    assert code != 0 and "timed out" in out


def test_container_on_both_networks_reaches_both(topology: dict[str, Any]) -> None:
    net_engine = topology["engine"]
    both = topology["both"]
    assert [a.network for a in both.networks] == [topology["front"], topology["back"]]
    for target in (topology["web"], topology["backweb"]):
        code, out = exec_out(net_engine, both.id, "timeout", "5", "wget", "-q", "-O-",
                             f"http://{target.name}:8080/")
        assert (code, out) == (0, f"hello from {target.name}\n")
    code, out = exec_out(net_engine, both.id, "ip", "-o", "-4", "addr")
    assert "eth0" in out and "eth1" in out
    code, out = exec_out(net_engine, both.id, "ip", "route")
    assert f"default via {both.networks[0].gateway}" in out


def test_hosts_and_resolv_conf(net_engine: Any) -> None:
    net = net_engine.network_create(NetworkSpec(name=unique("n")))
    c = sleeper(net_engine, unique("h"), (EndpointSpec(net.name),), hostname="box",
                domainname="example.test", extra_hosts=("gw:host-gateway", "db=10.0.0.9"),
                dns_search=("svc.test",))
    _, hosts = exec_out(net_engine, c.id, "cat", "/etc/hosts")
    assert f"{c.networks[0].ip_address}\tbox.example.test box" in hosts
    assert f"{net.gateway}\tgw" in hosts and "10.0.0.9\tdb" in hosts
    _, resolv = exec_out(net_engine, c.id, "cat", "/etc/resolv.conf")
    assert resolv == f"nameserver {net.gateway}\nsearch svc.test\noptions ndots:0\n"
    _, hostname = exec_out(net_engine, c.id, "hostname")
    assert hostname.strip() == "box"


def test_static_address_and_connect_a_running_container(net_engine: Any) -> None:
    p = nethelpers.free_subnet_prefix()  # e.g. 10.213.7
    a = net_engine.network_create(NetworkSpec(name=unique("a"), ipam=(
        IPAMConfig(subnet=f"{p}.0/24", gateway=f"{p}.254", ip_range=f"{p}.64/26"),)))
    assert (a.subnet, a.gateway) == (f"{p}.0/24", f"{p}.254")
    b = net_engine.network_create(NetworkSpec(name=unique("b")))
    fixed = sleeper(net_engine, unique("fx"), (EndpointSpec(a.name, ipv4_address=f"{p}.9"),))
    auto = sleeper(net_engine, unique("au"), (EndpointSpec(a.name),))
    assert fixed.networks[0].ip_address == f"{p}.9"
    assert auto.networks[0].ip_address == f"{p}.65"
    peer = sleeper(net_engine, unique("pe"), (EndpointSpec(b.name, aliases=("peer",)),))
    code, _ = exec_out(net_engine, fixed.id, "nslookup", "peer")
    assert code != 0
    net_engine.network_connect(b.name, fixed.id, EndpointSpec(b.name))
    code, out = exec_out(net_engine, fixed.id, "ping", "-c", "1", "-W", "2", "peer")
    assert code == 0, out
    assert fixed.id in net_engine.network_inspect(b.name).containers
    assert [n.network for n in net_engine.container_inspect(fixed.id).networks] == \
        [a.name, b.name]
    net_engine.network_disconnect(b.name, fixed.id)
    assert [n.network for n in net_engine.container_inspect(fixed.id).networks] == [a.name]
    code, _ = exec_out(net_engine, fixed.id, "ping", "-c", "1", "-W", "1",
                       peer.networks[0].ip_address)
    assert code != 0


def test_network_api_errors(net_engine: Any) -> None:
    name = unique("n")
    net = net_engine.network_create(NetworkSpec(name=name, labels=(("team", "x"),)))
    with pytest.raises(Conflict, match="already exists"):
        net_engine.network_create(NetworkSpec(name=name))
    with pytest.raises(Conflict, match="overlaps"):
        net_engine.network_create(NetworkSpec(name=unique("n"),
                                              ipam=(IPAMConfig(subnet=net.subnet),)))
    with pytest.raises(InvalidArgument, match="not supported yet"):
        net_engine.network_create(NetworkSpec(name=unique("n"), enable_ipv6=True))
    with pytest.raises(InvalidArgument, match="driver 'overlay'"):
        net_engine.network_create(NetworkSpec(name=unique("n"), driver="overlay"))
    with pytest.raises(InvalidArgument, match="invalid network name"):
        net_engine.network_create(NetworkSpec(name="bad name"))
    with pytest.raises(NotFound):
        net_engine.network_remove(unique("missing"))
    assert [n.name for n in net_engine.network_list(labels={"team": "x"})] == [name]
    assert net_engine.network_inspect(net.id[:10]).name == name
    c = sleeper(net_engine, unique("u"), (EndpointSpec(name),), start=False)
    with pytest.raises(Conflict, match="has active endpoints"):
        net_engine.network_remove(name)
    assert net_engine.network_prune() == []
    net_engine.container_remove(c.id, force=True)
    assert net_engine.network_prune() == [name]
    assert f"pc-{net.id[:12]}" not in our_links()


def test_concurrent_creates_get_distinct_subnets(net_engine: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [unique("par") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        nets = list(pool.map(lambda n: net_engine.network_create(NetworkSpec(name=n)), names))
    assert len({n.subnet for n in nets}) == 4 and len({n.gateway for n in nets}) == 4
    events = [(e["action"], e["id"]) for e in net_engine.store.read_events()
              if e["type"] == "network"]
    assert {("create", n.id) for n in nets} <= set(events)


def test_network_cli(net_engine: Any) -> None:
    import json
    import subprocess

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return nethelpers.pycompose(net_engine, "network", *argv)

    name = unique("cli")
    p = nethelpers.free_subnet_prefix()  # e.g. 10.215.3
    created = cli("create", "--subnet", f"{p}.0/24", "--label", "team=x", name)
    assert created.returncode == 0 and len(created.stdout.strip()) == 64
    ls = cli("ls")
    assert ls.stdout.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert f"{created.stdout[:12]}   {name}" in ls.stdout
    assert cli("ls", "-q", "--filter", "label=team=x").stdout == created.stdout[:12] + "\n"
    (info,) = json.loads(cli("inspect", name).stdout)
    assert info["IPAM"]["Config"] == [{"Subnet": f"{p}.0/24", "Gateway": f"{p}.1"}]
    assert info["Labels"] == {"team": "x"} and info["Scope"] == "local"
    again = cli("create", name)
    assert again.returncode == 1 and again.stderr == f"network with name {name} already exists\n"
    bad = cli("create", "--subnet", f"{p}.7/24", unique("x"))
    assert bad.returncode == 1 and "host bits set" in bad.stderr and "Traceback" not in bad.stderr
    removed = cli("rm", name, "missing-net")
    assert removed.returncode == 1 and removed.stdout == f"{name}\n"
    assert "network missing-net not found" in removed.stderr


def test_intra_network_traffic_survives_forward_drop(net_engine: Any) -> None:
    """dockerd sets `iptables -P FORWARD DROP`; our own accept rules must carry the bridge."""
    import subprocess

    from engine.network import firewall

    net = net_engine.network_create(NetworkSpec(name=unique("d")))
    a = sleeper(net_engine, unique("a"), (EndpointSpec(net.name),))
    b = sleeper(net_engine, unique("b"), (EndpointSpec(net.name),))
    # Under the host-wide lock: a concurrent run of this test must not read our DROP as
    # the policy to restore (which would leave the host with FORWARD DROP).
    with firewall.host_lock():
        rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True,
                               check=True).stdout
        policy = rules.splitlines()[0].split()[-1]
        subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
        try:
            code, out = exec_out(net_engine, a.id, "ping", "-c", "1", "-W", "2", b.name)
            assert code == 0, out
        finally:
            subprocess.run(["iptables", "-P", "FORWARD", policy], check=True)


def test_bridge_deleted_behind_our_back_comes_back_on_start(net_engine: Any) -> None:
    import subprocess
    import time

    from engine.network import dnsd, firewall

    net = net_engine.network_create(NetworkSpec(name=unique("gone")))
    name = f"pc-{net.id[:12]}"
    a = sleeper(net_engine, unique("a"), (EndpointSpec(net.name),))
    net_engine.container_stop(a.id, timeout=0)
    subprocess.run(["ip", "link", "del", name], check=True)  # as another tool might
    firewall.remove(name)
    b = sleeper(net_engine, unique("b"), (EndpointSpec(net.name),))
    net_engine.container_start(a.id)
    assert name in our_links() and firewall.tagged_rules(name)
    code, out = exec_out(net_engine, a.id, "ping", "-c", "1", "-W", "2", b.name)
    assert code == 0, out
    for c in (a, b):
        net_engine.container_stop(c.id, timeout=0)
    deadline = time.monotonic() + 5
    while dnsd.running_pid(net_engine.store, net.id) and time.monotonic() < deadline:
        time.sleep(0.05)  # the network is idle once its responder left
    firewall.remove(name)  # rules flushed, bridge kept: the next first start restores them
    net_engine.container_start(a.id)
    assert firewall.intact(name)
