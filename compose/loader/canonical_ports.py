"""Port short syntax -> long syntax, one entry per container port (ranges expanded).

Follows go-connections' `ParsePortSpec` as Compose uses it: `[[IP:]HOST:]CONTAINER
[/PROTO]`, host and container ranges of equal length pair up, a host range with one
container port stays a range; entries come out sorted by "port/proto" text.
"""

from __future__ import annotations

import ipaddress
from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    if n == 1:
        return "", "", parts[0]
    if n == 2:
        return "", parts[0], parts[1]
    if n == 3:
        return parts[0], parts[1], parts[2]
    return ":".join(parts[: n - 2]), parts[n - 2], parts[n - 1]


def _port_range(text: str) -> tuple[int, int]:
    if not text:
        raise ValueError("empty string specified for ports")
    start, sep, end = text.partition("-")
    try:
        first = int(start, 10)
        last = int(end, 10) if sep else first
    except ValueError:
        raise ValueError(text) from None
    if not 0 <= first <= 65535 or not 0 <= last <= 65535 or last < first:
        raise ValueError(text)
    return first, last


def parse_port_spec(raw: str) -> list[dict[str, Any]]:
    """`"127.0.0.1:8000-8001:80-81/udp"` -> long-syntax port dicts (published as text)."""
    ip, host_port, container_port = _split_parts(raw)
    proto = "tcp"
    if "/" in container_port:
        container_port, proto = container_port.split("/", 1)
    if ip.startswith("["):
        ip = ip[1:].split("]", 1)[0]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"invalid IP address: {ip}") from None
    if not container_port:
        raise ValueError(f"no port specified: {raw}<empty>")
    try:
        start, end = _port_range(container_port)
    except ValueError:
        raise ValueError(f"invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = _port_range(host_port)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host_port}") from None
        if end - start != host_end - host_start and end != start:
            raise ValueError("invalid ranges specified for container and host Ports: "
                             f"{container_port} and {host_port}")
    if proto.lower() not in PROTOCOLS:
        raise ValueError(f"invalid proto: {proto}")
    entries: list[tuple[str, dict[str, Any]]] = []
    for i in range(end - start + 1):
        published = str(host_start + i) if host_port else ""
        if start == end and host_start != host_end:
            published = f"{published}-{host_end}"
        port: dict[str, Any] = {"mode": "ingress"}
        if ip:
            port["host_ip"] = ip
        port["target"] = start + i
        if published:
            port["published"] = published
        port["protocol"] = proto.lower()
        entries.append((f"{start + i}/{proto.lower()}", port))
    # Go keeps a map keyed by "port/proto" and walks its keys sorted as text.
    entries.sort(key=lambda e: e[0])
    return [port for _, port in entries]


def canonical_ports(value: Any) -> Any:
    """services.*.ports: every entry in long syntax, `published` as a string."""
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for entry in value:
        if isinstance(entry, bool):
            out.append(entry)
        elif isinstance(entry, int | float):
            out += parse_port_spec(str(int(entry)))
        elif isinstance(entry, str):
            out += parse_port_spec(entry)
        elif isinstance(entry, dict):
            published = entry.get("published")
            if isinstance(published, int) and not isinstance(published, bool):
                entry["published"] = str(published)
            out.append(entry)
        else:
            out.append(entry)
    return out
