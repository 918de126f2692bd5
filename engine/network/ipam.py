"""IP address management: choosing a network's subnet and allocating container addresses.

Pure functions over `ipaddress` objects; the network service persists the results.
A subnet from the default pools is chosen so that it overlaps nothing the host already
routes or holds (interfaces, routes, our other networks), as Docker does. Addresses are
handed out from `ip_range` (else the whole subnet), never the network, broadcast,
gateway or auxiliary addresses, nor one already allocated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from engine.api import InvalidArgument

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address


def default_pool() -> Iterator[Net]:
    """Docker's default address pools without docker0's own 172.17.0.0/16, then /24s of
    10.199.0.0/16 once those 30 are taken (many projects, or many tests in parallel)."""
    for second in range(18, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)
    yield from ipaddress.IPv4Network("10.199.0.0/16").subnets(new_prefix=24)


def overlaps(candidate: Net, used: Iterable[Net]) -> bool:
    return any(candidate.overlaps(u) for u in used if u.prefixlen > 0)


def choose_subnet(used: Iterable[Net], pool: Iterable[Net] | None = None) -> Net:
    """The first subnet of the pool that overlaps none of `used`."""
    taken = [u for u in used if not u.is_loopback]
    for candidate in pool if pool is not None else default_pool():
        if not overlaps(candidate, taken):
            return candidate
    raise InvalidArgument("all predefined address pools have been fully subnetted")


def parse_network(text: str, what: str = "subnet") -> Net:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: expected CIDR like 10.1.0.0/24")
    if not isinstance(net, ipaddress.IPv4Network):
        raise InvalidArgument(f"{what} {text}: IPv6 is not supported yet")
    if ipaddress.ip_interface(text.strip()).ip != net.network_address:
        raise InvalidArgument(f"invalid {what} {text!r}: host bits set (did you mean {net}?)")
    if net.prefixlen > 30:
        raise InvalidArgument(f"{what} {text} is too small: at most /30")
    return net


def parse_address(text: str, what: str = "address") -> Addr:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}")
    if not isinstance(addr, ipaddress.IPv4Address):
        raise InvalidArgument(f"{what} {text}: IPv6 is not supported yet")
    return addr


@dataclass
class Pool:
    """One network's address space and what is allocated in it."""

    subnet: Net
    gateway: Addr
    ip_range: Net | None = None
    aux: dict[str, Addr] = field(default_factory=dict)
    allocated: set[Addr] = field(default_factory=set)

    @classmethod
    def build(cls, subnet: Net, gateway: str | None = None, ip_range: str | None = None,
              aux: Iterable[tuple[str, str]] = ()) -> Pool:
        """Validate the user's IPAM settings against `subnet`."""
        gw = parse_address(gateway, "gateway") if gateway else next(subnet.hosts())
        if gw not in subnet:
            raise InvalidArgument(f"gateway {gw} is not in subnet {subnet}")
        rng = parse_network(ip_range, "ip_range") if ip_range else None
        if rng is not None and not rng.subnet_of(subnet):
            raise InvalidArgument(f"ip_range {rng} is not inside subnet {subnet}")
        aux_map = {}
        for name, text in aux:
            addr = parse_address(text, f"aux address {name}")
            if addr not in subnet:
                raise InvalidArgument(f"aux address {name}={addr} is not in subnet {subnet}")
            aux_map[name] = addr
        return cls(subnet=subnet, gateway=gw, ip_range=rng, aux=aux_map)

    def reserved(self) -> set[Addr]:
        return {self.subnet.network_address, self.subnet.broadcast_address, self.gateway,
                *self.aux.values()}

    def allocate(self, requested: str | None = None) -> Addr:
        """Take `requested` (it must be free and in the subnet) or the first free address."""
        if requested:
            addr = parse_address(requested, "ipv4_address")
            if addr not in self.subnet:
                raise InvalidArgument(f"address {addr} is not in subnet {self.subnet}")
            if addr in self.reserved() or addr in self.allocated:
                raise InvalidArgument(f"address {addr} is already in use")
            self.allocated.add(addr)
            return addr
        space = self.ip_range or self.subnet
        blocked = self.reserved() | self.allocated
        for addr in space.hosts() if space.prefixlen < 31 else space:
            if addr not in blocked:
                self.allocated.add(addr)
                return addr
        raise InvalidArgument(f"no free address left in {space}")

    def release(self, addr: str) -> None:
        self.allocated.discard(ipaddress.IPv4Address(addr))


def mac_for(addr: Addr) -> str:
    """A locally administered MAC derived from the address, as Docker did before v26."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)
