"""DNS messages, stdlib only: parse a query, build answers (A, AAAA, PTR), and the
name table a network's responder answers from.

Only what the responder needs (RFC 1035): one question per query, answers that point
back at the question's name, no compression on input beyond what is valid. Anything
malformed raises `DnsFormatError`; the responder then answers FORMERR or drops it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

TYPE_A, TYPE_PTR, TYPE_AAAA, TYPE_ANY = 1, 12, 28, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
FLAG_QR, FLAG_AA, FLAG_RD, FLAG_RA = 0x8000, 0x0400, 0x0100, 0x0080
MAX_NAME = 255


class DnsFormatError(ValueError):
    """The bytes are not a DNS query this responder can read."""


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str  # lower case, without the trailing dot
    qtype: int
    qclass: int
    question: bytes  # the question section as received (echoed in the answer)


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset after it (following compression pointers)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    total = 0
    while True:
        if offset >= len(data):
            raise DnsFormatError("name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsFormatError("truncated compression pointer")
            jumps += 1
            if jumps > 16:
                raise DnsFormatError("compression loop")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise DnsFormatError("unknown label type")
        offset += 1
        if length == 0:
            break
        label = data[offset:offset + length]
        if len(label) != length:
            raise DnsFormatError("label runs past the end of the message")
        total += length + 1
        if total > MAX_NAME:
            raise DnsFormatError("name longer than 255 octets")
        labels.append(label.decode("ascii", "replace").lower())
        offset += length
    return ".".join(labels), (end if end >= 0 else offset)


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if not label:
            continue
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if len(raw) > 63:
            raise ValueError(f"label too long: {label!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def parse_query(data: bytes) -> Query:
    if len(data) < 12:
        raise DnsFormatError("message shorter than a header")
    ident, flags, qdcount, _an, _ns, _ar = struct.unpack_from("!HHHHHH", data, 0)
    if flags & FLAG_QR:
        raise DnsFormatError("not a query")
    if qdcount != 1:
        raise DnsFormatError(f"expected one question, got {qdcount}")
    name, offset = _read_name(data, 12)
    if offset + 4 > len(data):
        raise DnsFormatError("question truncated")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    return Query(ident, flags, name, qtype, qclass, data[12:offset + 4])


def query_id(data: bytes) -> int | None:
    return struct.unpack_from("!H", data, 0)[0] if len(data) >= 2 else None


def build_query(name: str, qtype: int = TYPE_A, ident: int = 0x1234) -> bytes:
    header = struct.pack("!HHHHHH", ident, FLAG_RD, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def build_response(query: Query, rcode: int = NOERROR,
                   answers: Iterable[tuple[int, bytes]] = (), ttl: int = 600) -> bytes:
    """An authoritative answer; each answer is (type, rdata) for the question's name."""
    answers = list(answers)
    opcode = query.flags & 0x7800
    flags = FLAG_QR | FLAG_AA | FLAG_RA | opcode | (query.flags & FLAG_RD) | (rcode & 0xF)
    out = struct.pack("!HHHHHH", query.id, flags, 1, len(answers), 0, 0) + query.question
    for rtype, rdata in answers:
        out += struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, ttl, len(rdata)) + rdata
    return out


def error_response(data: bytes, rcode: int) -> bytes | None:
    """A bare error answer for a message we could not parse (None if no id to answer)."""
    ident = query_id(data)
    if ident is None:
        return None
    return struct.pack("!HHHHHH", ident, FLAG_QR | FLAG_RA | rcode, 0, 0, 0, 0)


def parse_answers(data: bytes) -> tuple[int, list[tuple[int, str]]]:
    """(rcode, [(type, value)]) of a response; A/AAAA as addresses, PTR as names."""
    if len(data) < 12:
        raise DnsFormatError("message shorter than a header")
    _id, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data, 0)
    offset = 12
    for _ in range(qd):
        _name, offset = _read_name(data, offset)
        offset += 4
    found: list[tuple[int, str]] = []
    for _ in range(an):
        _name, offset = _read_name(data, offset)
        rtype, _cls, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        rdata = data[offset:offset + length]
        if rtype == TYPE_A and length == 4:
            found.append((rtype, str(ipaddress.IPv4Address(rdata))))
        elif rtype == TYPE_AAAA and length == 16:
            found.append((rtype, str(ipaddress.IPv6Address(rdata))))
        elif rtype == TYPE_PTR:
            found.append((rtype, _read_name(data, offset)[0]))
        offset += length
    return flags & 0xF, found


def reverse_pointer_ip(name: str) -> str | None:
    """`4.3.2.1.in-addr.arpa` -> `1.2.3.4`; None for other names."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None


@dataclass
class NameTable:
    """Names -> addresses for one querier, and addresses -> the name for PTR."""

    names: dict[str, list[str]] = field(default_factory=dict)
    pointers: dict[str, str] = field(default_factory=dict)

    def add(self, names: Iterable[str], ip: str, canonical: str | None = None) -> None:
        for name in names:
            key = name.lower().rstrip(".")
            if key and ip not in self.names.setdefault(key, []):
                self.names[key].append(ip)
        if canonical:
            self.pointers.setdefault(ip, canonical)


class Answerer:
    """Turns a query into a response from a name table; round-robins multi-address names."""

    def __init__(self, ttl: int = 600) -> None:
        self.ttl = ttl
        self._turn: dict[str, int] = {}

    def answer(self, query: Query, table: NameTable) -> bytes | None:
        """The response, or None when the name is not ours (the caller forwards it)."""
        if query.qclass != CLASS_IN:
            return None
        if query.qtype == TYPE_PTR:
            ip = reverse_pointer_ip(query.name)
            if ip is not None and ip in table.pointers:
                return build_response(query, NOERROR,
                                      [(TYPE_PTR, encode_name(table.pointers[ip]))], self.ttl)
            return None
        ips = table.names.get(query.name)
        if not ips:
            return None
        if query.qtype not in (TYPE_A, TYPE_ANY):
            return build_response(query, NOERROR, [], self.ttl)  # known name, no such record
        turn = self._turn.get(query.name, 0)
        self._turn[query.name] = turn + 1
        start = turn % len(ips)
        ordered = ips[start:] + ips[:start]
        return build_response(query, NOERROR,
                              [(TYPE_A, ipaddress.IPv4Address(ip).packed) for ip in ordered],
                              self.ttl)
