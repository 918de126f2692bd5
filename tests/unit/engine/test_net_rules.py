"""Pure parts of the network engine: /etc/hosts and resolv.conf texts, firewall and nft
rule texts (no root, nothing applied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import InvalidArgument
from engine.network import files, firewall, nft


def test_hosts_text_as_docker_writes_it() -> None:
    text = files.hosts_text("web", "example.test", ["172.18.0.2"],
                            ["db:10.0.0.9", "gw=host-gateway", "v6:[::1]"], host_gateway="172.18.0.1")
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-4:] == ["10.0.0.9\tdb", "172.18.0.1\tgw", "::1\tv6",
                          "172.18.0.2\tweb.example.test web"]


def test_bad_extra_host_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="expected HOST:IP"):
        files.hosts_text("h", None, [], ["nohost"])
    with pytest.raises(InvalidArgument, match="no host gateway"):
        files.hosts_text("h", None, [], ["x:host-gateway"])


def test_resolv_conf_points_at_the_responder(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("# generated\nnameserver 127.0.0.53\nnameserver 10.1.1.1\n"
                    "search corp.example\noptions edns0\n")
    assert files.container_resolv("172.18.0.1", ["9.9.9.9"], [], [], str(host)) == \
        "nameserver 172.18.0.1\nsearch corp.example\noptions ndots:0\n"
    assert files.container_resolv("172.18.0.1", [], ["a.test"], ["ndots:2"], str(host)) == \
        "nameserver 172.18.0.1\nsearch a.test\noptions ndots:2\n"
    # without a responder: the user's servers, else the host's non-loopback ones
    assert files.container_resolv(None, [], [], [], str(host)) == \
        "nameserver 10.1.1.1\nsearch corp.example\noptions edns0\n"
    assert files.container_resolv(None, ["9.9.9.9"], [], [], str(host)).startswith(
        "nameserver 9.9.9.9\n")


def test_firewall_rules_are_tagged_and_isolating() -> None:
    rules = firewall.bridge_rules("pc-abc", "172.18.0.0/16", internal=False)
    assert all('--comment "pycompose:pc-abc"' in r for r in rules["filter"] + rules["nat"])
    assert "-A PYCOMPOSE-FORWARD -i pc-abc -o pc-abc" in rules["filter"][0]
    assert rules["filter"][0].endswith("-j ACCEPT")
    assert rules["filter"][1].endswith("-j PYCOMPOSE-ISOLATION")
    assert rules["filter"][-1].startswith("-A PYCOMPOSE-ISOLATION -o pc-abc")
    assert rules["nat"] == ['-A PYCOMPOSE-POSTROUTING -s 172.18.0.0/16 ! -o pc-abc -m comment '
                            '--comment "pycompose:pc-abc" -j MASQUERADE']
    internal = firewall.bridge_rules("pc-int", "172.19.0.0/16", internal=True)
    assert internal["nat"] == [] and sum(r.endswith("-j DROP") for r in internal["filter"]) == 3
    assert firewall._is_tagged(internal["filter"][0], "pc-int")
    assert not firewall._is_tagged(internal["filter"][0], "pc-in")


def test_nft_script_dnats_and_masquerades_loopback() -> None:
    script = nft.rules_script("abc", "pc-x", [nft.Dnat("tcp", "127.0.0.1", 8080, "172.18.0.2", 80),
                                             nft.Dnat("udp", "0.0.0.0", 5353, "172.18.0.2", 53)])
    assert 'add rule ip pycompose output ip daddr 127.0.0.1 tcp dport 8080 dnat to ' \
        '172.18.0.2:80 comment "pycompose:abc"' in script
    assert "prerouting fib daddr type local udp dport 5353 dnat to 172.18.0.2:53" in script
    assert 'ip saddr 127.0.0.0/8 oifname "pc-x" masquerade' in script
