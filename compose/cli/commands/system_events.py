"""`pycompose system events`: the engine's event journal in `docker events`' shape:
`<RFC 3339 nano time> <type> <action> <id> (k=v, ...)`, or `--format json`; `--since`
and `--until` take epoch seconds, RFC 3339 times or durations back from now (`10m`)."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from compose.cli.context import Context
from compose.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default=None, help="Show all events created since timestamp")
    p.add_argument("--until", default=None, help="Stream events until this timestamp")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output (type=, event=, container=, label=)")
    p.add_argument("--format", default="", help="json, or the default text form")


def moment(text: str, flag: str) -> float:
    """Epoch seconds from `1700000000[.5]`, `2026-01-02T03:04:05Z` or `10m` (ago)."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    if t[-1:] in _UNITS:
        try:
            return time.time() - float(t[:-1]) * _UNITS[t[-1]]
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UsageError(f"invalid value {text!r} for {flag}: expected a timestamp or "
                         "a duration such as 10m") from None


def _matches(event_type: str, action: str, ident: str, attrs: dict[str, str],
             filters: dict[str, list[str]]) -> bool:
    checks = {
        "type": lambda v: event_type == v,
        "event": lambda v: action == v or action.split(":")[0] == v,
        "container": lambda v: event_type == "container" and (
            ident.startswith(v) or attrs.get("name") == v),
        "image": lambda v: attrs.get("image") == v,
        "network": lambda v: event_type == "network" and (
            ident.startswith(v) or attrs.get("name") == v),
        "volume": lambda v: event_type == "volume" and ident == v,
        "label": lambda v: (v.partition("=")[0] in attrs and (
            "=" not in v or attrs[v.partition("=")[0]] == v.partition("=")[2])),
    }
    return all(any(checks[key](v) for v in values) for key, values in filters.items())


def run(ctx: Context, args: argparse.Namespace) -> int:
    filters: dict[str, list[str]] = {}
    for f in args.filter:
        key, sep, value = f.partition("=")
        if not sep or key not in ("type", "event", "container", "image", "network",
                                  "volume", "label"):
            raise UsageError(f"invalid filter {f!r}")
        filters.setdefault(key, []).append(value)
    since = moment(args.since, "--since") if args.since is not None else None
    until = moment(args.until, "--until") if args.until is not None else None
    follow = until is None
    if since is None and follow:
        since = time.time()
    for event in ctx.engine().events(since=since, until=until, follow=follow):
        attrs = dict(event.attributes)
        if not _matches(event.type, event.action, event.id, attrs, filters):
            continue
        stamp = datetime.fromtimestamp(event.time, UTC)
        nanos = f"{int(round(event.time * 1e9)) % 1_000_000_000:09d}"
        iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + nanos + "Z"
        if args.format == "json":
            ctx.stdout.write(json.dumps({
                "Type": event.type, "Action": event.action, "status": event.action,
                "id": event.id, "Actor": {"ID": event.id, "Attributes": attrs},
                "scope": "local", "time": int(event.time),
                "timeNano": int(event.time * 1e9)}) + "\n")
        else:
            extra = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
            ctx.stdout.write(f"{iso} {event.type} {event.action} {event.id}"
                             + (f" ({extra})" if extra else "") + "\n")
        ctx.stdout.flush()
    return 0
