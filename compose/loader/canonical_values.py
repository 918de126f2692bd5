"""Values in the form the reference's typed model prints them (its Go binding step).

Durations in Go form (`1m30s`), byte sizes as decimal strings, `command` split
shell-style, list-form environment/labels as maps, `extra_hosts` as sorted
`host=ip`, numbers-as-strings to numbers, file modes as octal text; empty optional
fields dropped (Go's `omitempty`) and keys in the reference's field order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from compose.errors import ConfigError
from compose.loader.merge import go_str
from compose.loader.shellsplit import split_command

Converter = Callable[[Any], Any]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
       "m": 60 * 10**9, "h": 3600 * 10**9}
_BYTES = re.compile(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?")
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def parse_duration_ns(text: Any) -> int:
    """Go `time.ParseDuration` -> nanoseconds (a bare number counts as nanoseconds)."""
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}")
    if isinstance(text, int | float):
        return int(text)
    s = str(text).strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0
    pos, total = 0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise ValueError(f"time: invalid duration {text!r}")
        whole, _, frac = m.group(1).partition(".")
        unit = _NS[m.group(2)]
        total += int(whole or 0) * unit
        if frac:
            total += int(frac) * unit // 10 ** len(frac)
        pos = m.end()
    if not s:
        raise ValueError(f"time: invalid duration {text!r}")
    return sign * total


def _frac(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_duration(ns: int) -> str:
    """Nanoseconds -> Go's `Duration.String()` (`1h0m0s`, `1m30s`, `500ms`)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 10**6:
        return f"{sign}{_frac(u, 1000)}µs"
    if u < 10**9:
        return f"{sign}{_frac(u, 10**6)}ms"
    hours, u = divmod(u, 3600 * 10**9)
    minutes, u = divmod(u, 60 * 10**9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _frac(u, 10**9) + "s"


def duration(value: Any) -> Any:
    if value is None or _unresolved(value):
        return value
    try:
        return format_duration(parse_duration_ns(value))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_bytes(value: Any) -> int:
    """go-units RAMInBytes: `512m` -> 536870912 (binary units)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    m = _BYTES.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"invalid size: '{value}'")
    return int(float(m.group(1)) * _BYTE_UNITS[(m.group(2) or "").lower()])


def unit_bytes(value: Any) -> Any:
    if value is None or _unresolved(value):
        return value
    try:
        size = parse_bytes(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return str(size) if size else None


def string(value: Any) -> Any:
    return None if value is None else go_str(value)


def integer(value: Any) -> Any:
    if isinstance(value, str) and not _unresolved(value):
        try:
            return int(value, 10)
        except ValueError:
            try:
                return int(float(value))
            except ValueError:
                return value
    if isinstance(value, float) and value == int(value):
        return int(value)
    return value


def number(value: Any) -> Any:
    if isinstance(value, str) and not _unresolved(value):
        try:
            f = float(value)
        except ValueError:
            return value
        return int(f) if f == int(f) else f
    if isinstance(value, float) and value == int(value):
        return int(value)
    return value


def boolean(value: Any) -> Any:
    if isinstance(value, str):
        low = value.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    return value


def string_list(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [go_str(v) for v in value]
    return value


def command(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return split_command(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if isinstance(value, list):
        return [go_str(v) for v in value]
    return value


def sorted_deep(value: Any) -> Any:
    """Maps with their keys sorted, at every level (Go marshals maps sorted)."""
    if isinstance(value, dict):
        return {k: sorted_deep(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [sorted_deep(v) for v in value]
    return value


def mapping_with_equals(value: Any) -> Any:
    """environment / build.args: values are strings or null (unset)."""
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for entry in value:
            key, sep, val = str(entry).partition("=")
            out[key] = val if sep else None
        return sorted_deep(out)
    if isinstance(value, dict):
        return sorted_deep({str(k): None if v is None else go_str(v) for k, v in value.items()})
    return value


def labels(value: Any) -> Any:
    """labels / annotations / sysctls: values are strings (`KEY` alone -> "")."""
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for entry in value:
            key, _, val = str(entry).partition("=")
            out[key] = val
        return sorted_deep(out)
    if isinstance(value, dict):
        return sorted_deep({str(k): "" if v is None else go_str(v) for k, v in value.items()})
    return value


def extra_hosts(value: Any) -> Any:
    """`host:ip`, `host=ip` or {host: ip|[ip...]} -> sorted `host=ip` strings."""
    pairs: list[str] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                pairs.append(f"{host}={go_str(ip)}")
    elif isinstance(value, list):
        for entry in value:
            text = str(entry)
            host, sep, ip = text.partition("=")
            if not sep:
                host, sep, ip = text.partition(":")
            if not sep or not host or not ip:
                raise ConfigError(f'invalid extra host "{text}": expected HOST:IP or HOST=IP')
            pairs.append(f"{host}={ip}")
    else:
        return value
    return sorted(pairs)


def file_mode(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        if _unresolved(value):
            return value
        try:
            value = int(value, 8)
        except ValueError:
            return value
    if isinstance(value, int | float):
        return "0" + format(int(value), "o")
    return value


def device_count(value: Any) -> Any:
    if isinstance(value, str) and value.lower() == "all":
        return -1
    return integer(value)


def health_test(value: Any) -> Any:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    return string_list(value)


def ulimit(value: Any) -> Any:
    if isinstance(value, dict):
        if "single" in value:
            return integer(value["single"])
        return StructDict((k, integer(value[k])) for k in ("soft", "hard") if k in value)
    return integer(value)


def ssh_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v) for v in value]
    return value


class StructDict(dict[str, Any]):
    """A dict standing for a Go struct: its key order is the field order (a plain dict
    is a Go map, whose keys the YAML renderer sorts as yaml.v3 does)."""


class Struct:
    """A Go struct: field order, converters, fields kept even when empty."""

    def __init__(self, fields: list[str], convert: dict[str, Converter] | None = None,
                 keep: tuple[str, ...] = (), extensions: bool = True) -> None:
        self.fields = fields
        self.convert = convert or {}
        self.keep = keep
        self.extensions = extensions

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key in self.fields:
            if key not in value:
                continue
            item = value[key]
            conv = self.convert.get(key)
            if conv is not None:
                try:
                    item = conv(item)
                except ConfigError as exc:
                    exc.path = f"{key}.{exc.path}" if exc.path else str(key)
                    raise
            if key not in self.keep and _empty(item):
                continue
            out[key] = item
        if self.extensions:
            for key in sorted(value, key=str):
                if key not in out and key not in self.fields and str(key).startswith("x-"):
                    out[key] = sorted_deep(value[key])
        return StructDict(out)


def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == [] or value == {} \
        or (isinstance(value, int | float) and not isinstance(value, bool) and value == 0)


def list_of(conv: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return [conv(v) for v in value] if isinstance(value, list) else value

    return convert


def map_of(conv: Converter, null_ok: bool = False) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: (None if value[k] is None and null_ok else conv(value[k]))
                for k in sorted(value, key=str)}

    return convert



def string_lists(value: Any) -> Any:
    """map[string][]string: scalar values become one-item lists."""
    if isinstance(value, dict):
        return sorted_deep({k: string_list(v if isinstance(v, list) else [v])
                            for k, v in value.items()})
    return value
