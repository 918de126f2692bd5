"""Value formats the schema leaves to code: ports, durations, byte sizes, volume specs.

Each checker takes a value and returns None when it is valid, else a one-line reason;
values still holding a `$` (not interpolated, e.g. with --no-interpolate) are not
judged. The grammars are those Docker Compose accepts: Go's `time.ParseDuration`,
go-units' `RAMInBytes`, go-connections' `ParsePortSpec`.
"""

from __future__ import annotations

import re
from typing import Any

PORT_SYNTAX = "expected [HOST:]CONTAINER[/PROTOCOL]"
PROTOCOLS = ("tcp", "udp", "sctp")
_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_BYTES = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")
_PORT_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                 "m": 60.0, "h": 3600.0}
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def check_duration(value: Any) -> str | None:
    if not isinstance(value, str) or _unresolved(value):
        return None
    if _DURATION.fullmatch(value):
        return None
    return (f'"{value}" is not a valid duration '
            "(expected a number with a unit: ns, us, ms, s, m, h, e.g. 1m30s)")


def parse_duration(text: str) -> float:
    """Go duration text (`1m30s`, `500ms`, `0`) -> seconds."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}")
    sign = -1.0 if text.startswith("-") else 1.0
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text):
        total += float(number) * _UNIT_SECONDS[unit]
    return sign * total


def check_bytes(value: Any) -> str | None:
    if not isinstance(value, str) or _unresolved(value):
        return None
    if _BYTES.fullmatch(value):
        return None
    return (f'"{value}" is not a valid byte size '
            "(expected a number with an optional unit b, k, m, g, t, e.g. 512m)")


def parse_bytes(value: str | int | float) -> int:
    """A byte size (`512m`, `1.5g`, `1024`, 1024) -> bytes, binary units as Docker does."""
    if isinstance(value, bool):
        raise ValueError(f"invalid byte size {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = _BYTES.fullmatch(value)
    if not match:
        raise ValueError(f"invalid byte size {value!r}")
    return int(float(match.group(1)) * _BYTE_UNITS[(match.group(2) or "").lower()])


def _port_range(text: str, what: str) -> tuple[int, int] | str:
    match = _PORT_RANGE.fullmatch(text)
    if not match:
        return f"{what} {text!r} is not a number or range"
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else start
    if start > 65535 or end > 65535:
        return f"{what} {text} is out of range (0-65535)"
    if end < start:
        return f"{what} range {text} ends before it starts"
    return start, end


def port_problem(spec: str) -> str | None:
    """What is wrong with a short-syntax port, or None (`[[IP:]HOST:]CONTAINER[/PROTO]`)."""
    body, _, protocol = spec.partition("/")
    if "/" in spec and protocol.lower() not in PROTOCOLS:
        return f"unknown protocol {protocol!r} (expected tcp, udp or sctp)"
    if body.startswith("["):
        close = body.find("]")
        if close < 0 or body[close + 1:close + 2] != ":":
            return "unclosed IPv6 address"
        ip, rest = body[1:close], body[close + 2:]
        parts = [ip] + rest.split(":")
    else:
        parts = body.rsplit(":", 2)
    if len(parts) == 3:
        import ipaddress

        ip = parts[0]
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return f"invalid IP address {ip!r}"
        host, container = parts[1], parts[2]
    elif len(parts) == 2:
        host, container = parts
    else:
        host, container = "", parts[0]
    if not container:
        return "the container port is missing"
    target = _port_range(container, "container port")
    if isinstance(target, str):
        return target
    if host:
        published = _port_range(host, "host port")
        if isinstance(published, str):
            return published
        if target[1] != target[0] and published[1] - published[0] != target[1] - target[0]:
            return f"host range {host} and container range {container} differ in length"
    return None


def check_port(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value != int(value) or not 0 <= value <= 65535:
            return f"{value} is not a valid port (expected a number 0-65535)"
        return None
    if not isinstance(value, str) or _unresolved(value):
        return None
    problem = port_problem(value)
    if problem is None:
        return None
    return f'"{value}" is not a valid port ({PORT_SYNTAX}): {problem}'


def check_volume_spec(value: Any) -> str | None:
    """A short-syntax mount `[SOURCE:]TARGET[:MODE]`."""
    if not isinstance(value, str) or _unresolved(value):
        return None
    if not value:
        return "an empty volume is not valid (expected [SOURCE:]TARGET[:MODE])"
    parts = value.split(":")
    if len(parts) > 3:
        return f'"{value}" is not a valid volume (expected [SOURCE:]TARGET[:MODE]): too many ":"'
    if any(part == "" for part in parts):
        return (f'"{value}" is not a valid volume (expected [SOURCE:]TARGET[:MODE]): '
                "empty part between colons")
    return None


FORMATS = {
    "duration": check_duration,
    "bytes": check_bytes,
    "port": check_port,
    "volume": check_volume_spec,
}
