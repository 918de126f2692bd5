"""Resolving a ContainerSpec against its image, as Docker does: validation, defaults
(env, healthcheck, image volumes, sysctls), devices, the /etc files of a container
without a network part, and generated names. Pure functions; no engine state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.api import ContainerSpec, Healthcheck, InvalidArgument, Mount

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTS_BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
              "ff02::2\tip6-allrouters\n")
_NS = 1e9


def check_signal(name: str | int) -> int:
    from engine.runtime.containerinit import signal_number

    try:
        return signal_number(name)
    except ValueError:
        raise InvalidArgument(f"invalid signal: {name}")


def with_image_volumes(spec: ContainerSpec, cfg: dict[str, Any]) -> tuple[Mount, ...]:
    """The spec's mounts plus an anonymous volume for each image VOLUME not covered."""
    taken = {m.target.rstrip("/") or "/" for m in spec.mounts}
    extra = tuple(Mount(type="volume", target=t) for t in cfg.get("image_volumes", [])
                  if (t.rstrip("/") or "/") not in taken)
    return spec.mounts + extra


def validate_modes(spec: ContainerSpec) -> None:
    from engine.runtime.rootfs import TINI

    if spec.working_dir and not spec.working_dir.startswith("/"):
        raise InvalidArgument(f"the working directory '{spec.working_dir}' is invalid, it "
                              "needs to be an absolute path")
    if spec.pid_mode not in ("", "host"):
        raise InvalidArgument(f"unsupported pid mode {spec.pid_mode!r} (use \"host\" or none)")
    if spec.ipc_mode not in ("", "private", "shareable", "host"):
        raise InvalidArgument(f"unsupported ipc mode {spec.ipc_mode!r}")
    if spec.init and not os.path.exists(TINI):
        raise InvalidArgument(f"init: true needs {TINI} (Debian package tini)")
    for dev in spec.devices:
        device_rule(dev)


def validate_restart(spec: ContainerSpec) -> None:
    r = spec.restart
    if r.name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy: {r.name}")
    if r.maximum_retry_count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if r.name != "on-failure" and r.maximum_retry_count:
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if spec.auto_remove and r.name != "no":
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")


def merge_env(image_env: list[str], spec_env: tuple[tuple[str, str], ...], hostname: str,
               home: str) -> list[str]:
    env: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        env[k] = v
    for k, v in spec_env:
        env[k] = v
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home or "/")
    return [f"{k}={v}" for k, v in env.items()]


def healthcheck(spec_hc: Healthcheck | None, image_hc: dict[str, Any] | None
                 ) -> Healthcheck | None:
    """The container's check: the spec's over the image's, field by field as Docker
    merges them (a spec field left at its default keeps the image's value)."""
    image = None
    if image_hc and image_hc.get("Test"):
        image = Healthcheck(test=tuple(image_hc["Test"]),
                            interval=(image_hc.get("Interval") or 30 * _NS) / _NS,
                            timeout=(image_hc.get("Timeout") or 30 * _NS) / _NS,
                            retries=image_hc.get("Retries") or 3,
                            start_period=(image_hc.get("StartPeriod") or 0) / _NS,
                            start_interval=(image_hc.get("StartInterval") or 5 * _NS) / _NS)
    if spec_hc is None:
        merged = image
    elif image is None:
        merged = spec_hc
    else:
        default = Healthcheck(test=())
        merged = Healthcheck(**{
            f: getattr(spec_hc, f) if getattr(spec_hc, f) != getattr(default, f)
            else getattr(image, f)
            for f in ("test", "interval", "timeout", "retries", "start_period",
                      "start_interval")})
    if merged is None or not merged.test or merged.test[0] == "NONE":
        return None
    return merged


def device_paths(entry: str) -> tuple[str, str]:
    """`/dev/host[:/dev/ctr[:rwm]]` -> (host path, container path)."""
    parts = entry.split(":")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    if not os.path.exists(host):
        raise InvalidArgument(f"error gathering device information while adding custom "
                              f"device {host!r}: no such file or directory")
    return host, inside


def device_rule(entry: str) -> str:
    """`/dev/host[:/dev/ctr][:rwm]` -> the device cgroup rule `c 1:3 rwm`."""
    import stat

    parts = entry.split(":")
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    st = os.stat(device_paths(entry)[0])
    kind = "b" if stat.S_ISBLK(st.st_mode) else "c"
    return f"{kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {perms}"


def sysctls(spec: ContainerSpec) -> tuple[tuple[str, str], ...]:
    """Docker's defaults for a container with its own network namespace, then the spec's."""
    mode = spec.network_mode
    if mode == "host" or mode.startswith("container:"):
        return spec.sysctls
    defaults = {"net.ipv4.ping_group_range": "0 2147483647",
                "net.ipv4.ip_unprivileged_port_start": "0"}
    defaults.update(dict(spec.sysctls))
    return tuple(defaults.items())


def extra_hosts(spec: ContainerSpec) -> str:
    lines = []
    for entry in spec.extra_hosts:
        sep = "=" if "=" in entry else ":"
        host, _, ip = entry.partition(sep)
        lines.append(f"{ip.strip('[]')}\t{host}\n")
    return "".join(lines)


def resolv_conf(spec: ContainerSpec, host: bool) -> str:
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        text = ""
    servers, search, options = [], [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            if host or not (parts[1].startswith("127.") or parts[1] == "::1"):
                servers.append(parts[1])
        elif parts[0] == "search":
            search = parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
    if spec.dns:
        servers = list(spec.dns)
    if spec.dns_search:
        search = list(spec.dns_search)
    if spec.dns_opt:
        options = list(spec.dns_opt)
    if not servers:
        servers = ["8.8.8.8", "8.8.4.4"]
    out = "".join(f"nameserver {s}\n" for s in servers)
    if search:
        out += "search " + " ".join(search) + "\n"
    if options:
        out += "options " + " ".join(options) + "\n"
    return out


_ADJ = ("admiring", "brave", "calm", "eager", "festive", "gallant", "happy", "jolly",
        "keen", "lucid", "modest", "nifty", "quirky", "serene", "trusting", "vibrant")
_NOUN = ("babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "kepler",
         "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yonath")


def generated_name(cid: str) -> str:
    n = int(cid[:8], 16)
    return f"{_ADJ[n % 16]}_{_NOUN[(n >> 4) % 16]}_{cid[:6]}"
