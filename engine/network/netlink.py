"""Raw rtnetlink with the stdlib: bridges, veth pairs, addresses, routes, link state.

No pyroute2 (its import alone costs 0.25 s; see engine-feasibility.md §4). A `Netlink`
object wraps one NETLINK_ROUTE socket bound to one network namespace; `Netlink.inside(pid)`
makes a socket inside the namespace of process `pid` (setns on the calling thread only,
then back). Every failing request raises `OSError` carrying the kernel's errno.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

NETLINK_ROUTE = 0
CLONE_NEWNET = 0x40000000

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE, NLM_F_REPLACE = 0x200, 0x400, 0x100

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_NET_NS_PID = 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


CLONE_NEWPID = 0x20000000


def _setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def children_in_own_pid_namespace() -> None:
    """Undo a pending unshare(CLONE_NEWPID) of this process once its container init is
    forked: until then the process can start neither threads (the port proxies) nor
    helper processes outside the container's pid namespace (the DNS responder). The
    runtime's monitor re-arms the unshare before each (re)start."""
    try:
        if os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid"):
            return
    except OSError:
        return
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWPID)
    finally:
        os.close(fd)


def _attr(kind: int, payload: bytes | str) -> bytes:
    data = payload.encode() + b"\0" if isinstance(payload, str) else payload
    length = 4 + len(data)
    return struct.pack("HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """Attributes of one message body as {type: payload} (the last one of a type wins)."""
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("HH", data, offset)
        if length < 4:
            break
        attrs[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


class Netlink:
    """One rtnetlink socket; requests are synchronous and acknowledged."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    @classmethod
    def inside(cls, pid: int) -> Netlink:
        """A socket inside the network namespace of process `pid`."""
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                sock = socket.socket(socket.AF_NETLINK,
                                     socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        header = struct.pack("IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST, self.seq, 0)
        self.sock.send(header + body)
        return self.seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, body) of each reply to `seq` until DONE or the ACK; raises on errors."""
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, mseq, _pid = struct.unpack_from("IHHII", data, offset)
                body = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("i", body, 0)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                yield kind, body

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        return list(self._replies(self._send(kind, flags | NLM_F_ACK, body)))

    def dump(self, kind: int, body: bytes) -> list[tuple[int, bytes]]:
        return list(self._replies(self._send(kind, NLM_F_DUMP, body)))

    # ------------------------------------------------------------------ links

    def link_index(self, name: str) -> int | None:
        """The interface index of `name` in this namespace, None if there is none."""
        try:
            replies = self.request(RTM_GETLINK, _ifinfo() + _attr(IFLA_IFNAME, name))
        except OSError as exc:
            if exc.errno in (19, 22):  # ENODEV, EINVAL (name too long)
                return None
            raise
        for _kind, body in replies:
            return int(struct.unpack_from("BxHiII", body, 0)[2])
        return None

    def links(self) -> list[dict[str, Any]]:
        """Every link: {index, name, flags, master, kind}."""
        found = []
        for _kind, body in self.dump(RTM_GETLINK, _ifinfo()):
            _fam, _type, index, flags, _change = struct.unpack_from("BxHiII", body, 0)
            attrs = parse_attrs(body[16:])
            info = parse_attrs(attrs.get(IFLA_LINKINFO, b""))
            found.append({
                "index": index, "flags": flags,
                "name": attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
                "master": struct.unpack("I", attrs[IFLA_MASTER])[0]
                if IFLA_MASTER in attrs else 0,
                "kind": info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode(),
            })
        return found

    def create_bridge(self, name: str, mtu: int | None = None) -> int:
        attrs = _attr(IFLA_IFNAME, name) + _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, "bridge"))
        if mtu:
            attrs += _attr(IFLA_MTU, struct.pack("I", mtu))
        self.request(RTM_NEWLINK, _ifinfo() + attrs, NLM_F_CREATE | NLM_F_EXCL)
        index = self.link_index(name)
        assert index is not None
        return index

    def create_veth(self, host_name: str, peer_name: str, peer_pid: int,
                    peer_mac: str | None = None, mtu: int | None = None) -> int:
        """A veth pair whose peer is created directly in the netns of `peer_pid`."""
        peer = _ifinfo() + _attr(IFLA_IFNAME, peer_name) + \
            _attr(IFLA_NET_NS_PID, struct.pack("I", peer_pid))
        if peer_mac:
            peer += _attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        if mtu:
            peer += _attr(IFLA_MTU, struct.pack("I", mtu))
        info = _attr(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
        attrs = _attr(IFLA_IFNAME, host_name) + _attr(IFLA_LINKINFO, info)
        if mtu:
            attrs += _attr(IFLA_MTU, struct.pack("I", mtu))
        self.request(RTM_NEWLINK, _ifinfo() + attrs, NLM_F_CREATE | NLM_F_EXCL)
        index = self.link_index(host_name)
        assert index is not None
        return index

    def set_link(self, index: int, up: bool | None = None, master: int | None = None) -> None:
        flags = change = 0
        if up is not None:
            flags, change = (IFF_UP if up else 0), IFF_UP
        attrs = _attr(IFLA_MASTER, struct.pack("I", master)) if master is not None else b""
        self.request(RTM_NEWLINK, _ifinfo(index, flags, change) + attrs)

    def delete_link(self, name: str) -> bool:
        """Delete the link `name`; False if it did not exist."""
        try:
            self.request(RTM_DELLINK, _ifinfo() + _attr(IFLA_IFNAME, name))
        except OSError as exc:
            if exc.errno in (19, 22):
                return False
            raise
        return True

    # ------------------------------------------------------------------ addresses, routes

    def add_address(self, index: int, interface: ipaddress.IPv4Interface) -> None:
        ip = interface.ip.packed
        body = struct.pack("BBBBI", socket.AF_INET, interface.network.prefixlen, 0,
                           RT_SCOPE_UNIVERSE, index)
        body += _attr(IFA_LOCAL, ip) + _attr(IFA_ADDRESS, ip)
        if interface.network.prefixlen < 31:
            body += _attr(IFA_BROADCAST, interface.network.broadcast_address.packed)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_REPLACE)

    def add_default_route(self, gateway: str, index: int) -> None:
        body = struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        body += _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
        body += _attr(RTA_OIF, struct.pack("I", index))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)

    def ipv4_networks(self) -> list[ipaddress.IPv4Network]:
        """Every IPv4 network in use here: interface addresses and route destinations."""
        nets: list[ipaddress.IPv4Network] = []
        addr_req = struct.pack("BBBBI", socket.AF_INET, 0, 0, 0, 0)
        for _kind, body in self.dump(RTM_GETADDR, addr_req):
            prefix = body[1]
            attrs = parse_attrs(body[8:])
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if raw and len(raw) == 4:
                nets.append(ipaddress.IPv4Network((raw, prefix), strict=False))
        route_req = struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        for _kind, body in self.dump(RTM_GETROUTE, route_req):
            dst_len = body[1]
            attrs = parse_attrs(body[12:])
            raw = attrs.get(RTA_DST)
            if raw and len(raw) == 4 and dst_len > 0:
                nets.append(ipaddress.IPv4Network((raw, dst_len), strict=False))
        return nets
