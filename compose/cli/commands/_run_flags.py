"""Parsers for `docker run` flag values with a syntax of their own: `--publish` (short and
long form), `--mount`, `--ulimit`, `--log-opt` and the `--health-*` durations."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from compose.errors import UsageError

if TYPE_CHECKING:
    from engine.api import Healthcheck, Mount, PortBinding, Ulimit

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_BOOL_TRUE = ("", "1", "true")


def duration(text: str, flag: str) -> float:
    """Go duration text (`1s`, `1m30s`, `500ms`) as seconds."""
    t = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t):
        raise UsageError(f"invalid duration {text!r} for {flag}")
    return total


def _options(text: str, flag: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not key:
            raise UsageError(f"invalid {flag} value: {text!r}")
        opts[key] = value if eq else ""
    return opts


def publish(text: str) -> PortBinding:
    """`[ip:][host:]ctr[/proto]` or `mode=ingress,published=H,target=C,protocol=tcp`."""
    from engine.api import PortBinding

    if "=" in text:
        opts = _options(text, "--publish")
        target = opts.get("target", "")
        unknown = set(opts) - {"mode", "published", "target", "protocol", "host_ip"}
        if unknown or not target.isdigit() or opts.get("mode", "ingress") not in (
                "ingress", "host"):
            raise UsageError(f"invalid port specification: {text!r}")
        proto = opts.get("protocol", "tcp") or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise UsageError(f"invalid protocol {proto!r} in {text!r}")
        published = opts.get("published", "")
        if published and not published.isdigit():
            raise UsageError(f"invalid port specification: {text!r}")
        return PortBinding(int(target), proto, opts.get("host_ip", ""),  # type: ignore[arg-type]
                           published)
    spec_text, _, proto = text.partition("/")
    parts = spec_text.rsplit(":", 2)
    if len(parts) == 1:
        ip, host, ctr = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, ctr = "", parts[0], parts[1]
    else:
        ip, host, ctr = parts
    if not ctr.isdigit() or (host and not re.fullmatch(r"\d+(-\d+)?", host)):
        raise UsageError(f"invalid port specification: {text!r}")
    if proto and proto not in ("tcp", "udp", "sctp"):
        raise UsageError(f"invalid protocol {proto!r} in {text!r}")
    return PortBinding(int(ctr), proto or "tcp", ip, host)  # type: ignore[arg-type]


def _size(text: str, flag: str) -> int:
    t = text.strip().lower()
    num = t.rstrip("bkmg")
    unit = t[len(num):].rstrip("b")
    try:
        return int(float(num) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise UsageError(f"invalid size {text!r} for {flag}") from None


def mount(text: str) -> Mount:
    """`--mount type=bind|volume|tmpfs,source=...,target=...,readonly,...`."""
    from engine.api import Mount

    opts = _options(text, "--mount")
    kind = opts.pop("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise UsageError(f"invalid mount type {kind!r} in --mount {text!r}")
    target = ""
    for key in ("target", "destination", "dst"):
        target = opts.pop(key, target)
    if not target:
        raise UsageError(f"--mount {text!r}: target is required")
    source = ""
    for key in ("source", "src"):
        source = opts.pop(key, source)
    read_only = False
    for key in ("readonly", "ro"):
        if key in opts:
            read_only = opts.pop(key).lower() in _BOOL_TRUE
    if kind == "tmpfs":
        if source:
            raise UsageError(f"--mount {text!r}: a tmpfs mount takes no source")
        size = opts.pop("tmpfs-size", "")
        mode = opts.pop("tmpfs-mode", "")
        _reject(opts, text)
        try:
            mode_bits = int(mode, 8) if mode else None
        except ValueError:
            raise UsageError(f"--mount {text!r}: invalid tmpfs-mode") from None
        return Mount("tmpfs", target, read_only=read_only,
                     tmpfs_size=_size(size, "tmpfs-size") if size else None,
                     tmpfs_mode=mode_bits)
    if kind == "bind":
        propagation = opts.pop("bind-propagation", "")
        _reject(opts, text)
        if not source:
            raise UsageError(f"--mount {text!r}: a bind mount needs a source")
        if not os.path.exists(source):
            raise UsageError(f"invalid mount config for type \"bind\": bind source path "
                             f"does not exist: {source}")
        return Mount("bind", target, os.path.abspath(source), read_only=read_only,
                     propagation=propagation, create_host_path=False)
    nocopy = "volume-nocopy" in opts and opts.pop("volume-nocopy").lower() in _BOOL_TRUE
    subpath = opts.pop("volume-subpath", "")
    _reject(opts, text)
    return Mount("volume", target, source, read_only=read_only, nocopy=nocopy,
                 subpath=subpath)


def _reject(opts: dict[str, str], text: str) -> None:
    if opts:
        raise UsageError(f"--mount {text!r}: unexpected key {sorted(opts)[0]!r}")


def ulimit(text: str) -> Ulimit:
    """`name=soft[:hard]`."""
    from engine.api import Ulimit

    name, _, values = text.partition("=")
    soft, _, hard = values.partition(":")
    try:
        soft_n = int(soft)
        hard_n = int(hard) if hard else soft_n
    except ValueError:
        raise UsageError(f"invalid ulimit {text!r}") from None
    if not name or soft_n > hard_n:
        raise UsageError(f"invalid ulimit {text!r}: soft limit must not exceed hard limit")
    return Ulimit(name, soft_n, hard_n)


def log_options(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for v in values:
        key, eq, value = v.partition("=")
        if not eq or not key:
            raise UsageError(f"invalid --log-opt {v!r}: expected key=value")
        pairs.append((key, value))
    return tuple(pairs)


def healthcheck(cmd: str | None, interval: str | None, timeout: str | None,
                retries: int | None, start_period: str | None, disabled: bool,
                ) -> Healthcheck | None:
    """The `--health-*` flags as a Healthcheck; None when none is given (image's stays).
    Only the given fields override; the test then is the image's (`[]` means inherit)."""
    from engine.api import Healthcheck

    if disabled:
        return Healthcheck(test=("NONE",))
    if cmd is None and interval is None and timeout is None and retries is None \
            and start_period is None:
        return None
    kw: dict[str, float | int] = {}
    if interval is not None:
        kw["interval"] = duration(interval, "--health-interval")
    if timeout is not None:
        kw["timeout"] = duration(timeout, "--health-timeout")
    if start_period is not None:
        kw["start_period"] = duration(start_period, "--health-start-period")
    if retries is not None:
        if retries < 0:
            raise UsageError("--health-retries cannot be negative")
        kw["retries"] = retries
    test = ("CMD-SHELL", cmd) if cmd else ()
    return Healthcheck(test=test, **kw)  # type: ignore[arg-type]
