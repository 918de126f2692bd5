"""DNS message parsing and answers of the network responder (no sockets, no root)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from engine.network import dns
from engine.network.dns import Answerer, DnsFormatError, NameTable


def table() -> NameTable:
    t = NameTable()
    t.add(["web", "web.proj", "proj-web-1"], "10.9.0.2", "proj-web-1")
    t.add(["web", "web.proj", "proj-web-2"], "10.9.0.3", "proj-web-2")
    t.add(["db", "database"], "10.9.0.4", "proj-db-1")
    return t


def test_query_round_trip() -> None:
    q = dns.parse_query(dns.build_query("Web.Proj.", dns.TYPE_A, ident=77))
    assert (q.id, q.name, q.qtype, q.qclass) == (77, "web.proj", dns.TYPE_A, dns.CLASS_IN)


def test_a_answer_lists_every_replica_and_rotates() -> None:
    answerer = Answerer()
    q = dns.parse_query(dns.build_query("web"))
    first = dns.parse_answers(answerer.answer(q, table()) or b"")
    second = dns.parse_answers(answerer.answer(q, table()) or b"")
    assert first == (0, [(1, "10.9.0.2"), (1, "10.9.0.3")])
    assert second == (0, [(1, "10.9.0.3"), (1, "10.9.0.2")])


def test_response_header_echoes_id_and_question() -> None:
    data = dns.build_query("db", ident=0xBEEF)
    reply = Answerer(ttl=600).answer(dns.parse_query(data), table())
    assert reply is not None
    ident, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", reply, 0)
    assert ident == 0xBEEF and qd == 1 and an == 1
    assert flags & dns.FLAG_QR and flags & dns.FLAG_AA and flags & dns.FLAG_RD
    assert reply[12:12 + len(data) - 12] == data[12:]
    assert struct.unpack_from("!I", reply, len(data) + 6)[0] == 600  # TTL


def test_aaaa_of_a_known_name_is_nodata_not_nxdomain() -> None:
    reply = Answerer().answer(dns.parse_query(dns.build_query("web", dns.TYPE_AAAA)), table())
    assert dns.parse_answers(reply or b"") == (dns.NOERROR, [])


def test_unknown_name_is_left_to_the_forwarder() -> None:
    assert Answerer().answer(dns.parse_query(dns.build_query("example.org")), table()) is None


def test_ptr_answers_the_container_name() -> None:
    q = dns.parse_query(dns.build_query("4.0.9.10.in-addr.arpa", dns.TYPE_PTR))
    assert dns.parse_answers(Answerer().answer(q, table()) or b"") == (0, [(12, "proj-db-1")])
    assert dns.reverse_pointer_ip("1.2.3.in-addr.arpa") is None


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\x01",
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab",  # label past the end
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
    struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + dns.encode_name("a") + b"\0\1\0\1",
    struct.pack("!HHHHHH", 1, dns.FLAG_QR, 1, 0, 0, 0) + dns.encode_name("a") + b"\0\1\0\1",
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x3f" + b"a" * 63 * 5,
])
def test_malformed_messages_raise_format_error(data: bytes) -> None:
    with pytest.raises(DnsFormatError):
        dns.parse_query(data)


def test_format_error_reply_keeps_the_id() -> None:
    reply = dns.error_response(b"\x12\x34garbage", dns.FORMERR)
    assert reply is not None and reply[:2] == b"\x12\x34"
    assert struct.unpack_from("!H", reply, 2)[0] & 0xF == dns.FORMERR
    assert dns.error_response(b"\x01", dns.FORMERR) is None


def test_registry_scopes_names_to_the_querier_networks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from engine.network import dnsd
    from engine.network.dnsd import Registry
    from engine.store import Store

    store = Store(tmp_path)
    (tmp_path / "networks").mkdir()
    monkeypatch.setattr(dnsd, "_link_exists", lambda name: name != "veth-of-dead")

    def ep(name: str, ip: str, active: bool = True) -> dict[str, object]:
        veth = "veth-of-dead" if name == "dead" else f"veth-{name}"
        return {"name": name, "ip": ip, "dns_names": [name], "active": active, "veth": veth}

    nets = {
        "a" * 64: {"id": "a" * 64, "endpoints": {"c1": ep("one", "10.1.0.2"),
                                                  "c3": ep("both", "10.1.0.4"),
                                                  "c5": ep("stopped", "10.1.0.5", False),
                                                  "c6": ep("dead", "10.1.0.6")}},
        "b" * 64: {"id": "b" * 64, "endpoints": {"c2": ep("two", "10.2.0.2"),
                                                  "c3": ep("both", "10.2.0.4")}},
    }
    for nid, net in nets.items():
        (tmp_path / "networks" / f"{nid}.json").write_text(json.dumps(net))
    reg = Registry(store)
    reg.refresh()
    q1, _ = reg.querier("a" * 64, "10.1.0.2")
    assert set(reg.table_for("a" * 64, q1).names) == {"one", "both"}
    q3, _ = reg.querier("a" * 64, "10.1.0.4")
    assert reg.table_for("a" * 64, q3).names == {"one": ["10.1.0.2"],
                                                  "both": ["10.1.0.4", "10.2.0.4"],
                                                  "two": ["10.2.0.2"]}


def test_only_the_network_and_the_host_may_ask() -> None:
    from engine.network.dnsd import _allowed

    assert _allowed("172.18.3.4", "172.18.0.0/16")
    assert _allowed("127.0.0.1", "172.18.0.0/16")  # the host itself
    assert not _allowed("203.0.113.9", "172.18.0.0/16")  # anyone else: no open resolver
