"""Subnet choice and address allocation (pure; no root)."""

from __future__ import annotations

import ipaddress

import pytest

from engine.api import InvalidArgument
from engine.network import ipam
from engine.network.ipam import Pool

N = ipaddress.IPv4Network


def test_choice_skips_everything_in_use() -> None:
    used = [N("172.18.0.0/16"), N("172.19.5.0/24"), N("127.0.0.0/8"), N("192.0.2.0/24")]
    assert ipam.choose_subnet(used) == N("172.20.0.0/16")


def test_choice_avoids_a_supernet_route() -> None:
    assert ipam.choose_subnet([N("172.16.0.0/12")]) == N("192.168.0.0/20")


def test_choice_falls_back_to_small_subnets_when_the_defaults_are_taken() -> None:
    used = [N("172.16.0.0/12"), N("192.168.0.0/16"), N("10.199.0.0/24")]
    assert ipam.choose_subnet(used) == N("10.199.1.0/24")


def test_exhausted_pool_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="fully subnetted"):
        ipam.choose_subnet([N("0.0.0.0/1"), N("128.0.0.0/1")])


def test_allocation_skips_network_gateway_aux_and_taken() -> None:
    pool = Pool.build(N("10.5.0.0/29"), aux=[("router", "10.5.0.2")])
    assert str(pool.gateway) == "10.5.0.1"
    got = [str(pool.allocate()) for _ in range(4)]
    assert got == ["10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
    with pytest.raises(InvalidArgument, match="no free address"):
        pool.allocate()
    pool.release("10.5.0.4")
    assert str(pool.allocate()) == "10.5.0.4"


def test_ip_range_and_static_addresses() -> None:
    pool = Pool.build(N("10.6.0.0/24"), gateway="10.6.0.254", ip_range="10.6.0.128/25")
    assert str(pool.allocate()) == "10.6.0.129"
    assert str(pool.allocate("10.6.0.10")) == "10.6.0.10"
    with pytest.raises(InvalidArgument, match="already in use"):
        pool.allocate("10.6.0.10")
    with pytest.raises(InvalidArgument, match="not in subnet"):
        pool.allocate("10.7.0.1")
    with pytest.raises(InvalidArgument, match="already in use"):
        pool.allocate("10.6.0.254")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gateway": "10.9.0.1"}, "not in subnet"),
    ({"ip_range": "10.8.1.0/24"}, "not inside subnet"),
    ({"aux": [("x", "1.2.3.4")]}, "not in subnet"),
    ({"gateway": "nope"}, "invalid gateway"),
])
def test_invalid_settings_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Pool.build(N("10.8.0.0/24"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "message"), [
    ("10.1.0.5/24", "host bits set"), ("banana", "expected CIDR"),
    ("fd00::/64", "IPv6"), ("10.0.0.0/31", "too small"),
])
def test_subnet_parsing(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        ipam.parse_network(text)


def test_mac_is_derived_from_the_address() -> None:
    assert ipam.mac_for(ipaddress.IPv4Address("172.18.0.2")) == "02:42:ac:12:00:02"
