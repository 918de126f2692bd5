"""`docker import` semantics: the image config for one rootfs layer, with `--change` lines.

Only the Dockerfile instructions Docker accepts for `import --change` are allowed:
CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
WORKDIR.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from datetime import UTC, datetime
from typing import Any

from engine.api import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
           "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def empty_container_config() -> dict[str, Any]:
    """The `config` object Docker writes for an image built from nothing."""
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
            "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_or_shell(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _pairs(instr: str, rest: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidArgument(f"{instr}: {exc}") from None
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        if instr == "LABEL" or len(words) < 2:
            raise InvalidArgument(f"{instr} requires key=value pairs: {rest!r}")
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instr}: {word!r} is not key=value")
        pairs.append((key, value))
    return pairs


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def duration_ns(text: str) -> int:
    """A Go duration (`1m30s`) in nanoseconds."""
    if not text or _DURATION.sub("", text):
        raise InvalidArgument(f"invalid duration {text!r}")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in _DURATION.findall(text)))


def _healthcheck(rest: str) -> dict[str, Any]:
    words = rest.split()
    if [w.upper() for w in words] == ["NONE"]:
        return {"Test": ["NONE"]}
    check: dict[str, Any] = {}
    keys = {"--interval": "Interval", "--timeout": "Timeout", "--start-period": "StartPeriod",
            "--start-interval": "StartInterval"}
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0).partition("=")
        if flag in keys:
            check[keys[flag]] = duration_ns(value)
        elif flag == "--retries" and value.isdigit():
            check["Retries"] = int(value)
        else:
            raise InvalidArgument(f"HEALTHCHECK: unknown flag {flag!r}")
    if not words or words[0].upper() != "CMD":
        raise InvalidArgument("HEALTHCHECK must be NONE or [OPTIONS] CMD command")
    cmd = rest[rest.upper().index("CMD") + 3:]
    args = _json_or_shell(cmd)
    check["Test"] = ["CMD", *args] if cmd.strip().startswith("[") else ["CMD-SHELL", cmd.strip()]
    return check


def _expose(rest: str) -> list[str]:
    ports = []
    for word in rest.split():
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        low, _, high = port.partition("-")
        if proto not in ("tcp", "udp", "sctp") or not low.isdigit() or (high and not high.isdigit()):
            raise InvalidArgument(f"EXPOSE: invalid port {word!r}")
        for p in range(int(low), int(high or low) + 1):
            if not 0 < p < 65536:
                raise InvalidArgument(f"EXPOSE: invalid port {word!r}")
            ports.append(f"{p}/{proto}")
    return ports


def apply_change(config: dict[str, Any], change: str) -> None:
    """Apply one `--change` line (a Dockerfile instruction) to a container config."""
    instr, _, rest = change.strip().partition(" ")
    instr = instr.upper()
    if instr not in ALLOWED:
        raise InvalidArgument(f"{instr or change!r} is not a valid change command")
    if not rest.strip() and instr not in ("CMD", "ENTRYPOINT"):
        raise InvalidArgument(f"{instr} requires an argument")
    if instr == "CMD":
        config["Cmd"] = _json_or_shell(rest)
    elif instr == "ENTRYPOINT":
        config["Entrypoint"] = _json_or_shell(rest) if rest.strip() else None
    elif instr == "ENV":
        env = [e for e in (config.get("Env") or [])]
        for key, value in _pairs(instr, rest):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
        config["Env"] = env
    elif instr == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(_pairs(instr, rest))
        config["Labels"] = labels
    elif instr == "EXPOSE":
        exposed = dict(config.get("ExposedPorts") or {})
        exposed.update({p: {} for p in _expose(rest)})
        config["ExposedPorts"] = exposed
    elif instr == "VOLUME":
        paths = _json_or_shell(rest) if rest.strip().startswith("[") else rest.split()
        if paths[:2] == ["/bin/sh", "-c"]:
            paths = rest.split()
        volumes = dict(config.get("Volumes") or {})
        volumes.update({p: {} for p in paths})
        config["Volumes"] = volumes
    elif instr == "WORKDIR":
        config["WorkingDir"] = posixpath.join("/", config.get("WorkingDir") or "/",
                                              rest.strip())
    elif instr == "USER":
        config["User"] = rest.strip()
    elif instr == "STOPSIGNAL":
        config["StopSignal"] = rest.strip()
    elif instr == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), rest.strip()]
    elif instr == "HEALTHCHECK":
        config["Healthcheck"] = _healthcheck(rest)


def import_config(diff_id: str, changes: tuple[str, ...] = (), source: str = "-",
                  created: str | None = None, message: str = "") -> dict[str, Any]:
    """The OCI image config of an imported rootfs, as `docker import` writes it."""
    container = empty_container_config()
    for change in changes:
        apply_change(container, change)
    created = created or now_rfc3339()
    comment = message or f"Imported from {source}"
    return {
        "architecture": "amd64",
        "comment": comment,
        "config": container,
        "created": created,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "comment": comment}],
    }
