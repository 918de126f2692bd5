"""Registry settings: insecure registries and docker.io mirrors, from a daemon.json.

Read from `$PYCOMPOSE_DAEMON_CONFIG`, else `<data root>/daemon.json`, else
`/etc/pycompose/daemon.json` (the same keys as Docker's: `insecure-registries`,
`registry-mirrors`). Loopback registries are always insecure, as in Docker.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.api import InvalidArgument
from engine.images.reference import DEFAULT_DOMAIN

SYSTEM_CONFIG = "/etc/pycompose/daemon.json"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


@dataclass(frozen=True)
class Endpoint:
    """Where to talk to a registry: host[:port], the schemes to try in order, TLS check."""

    host: str
    schemes: tuple[str, ...]
    verify: bool = True
    mirror: bool = False

    def base(self, scheme: str) -> str:
        return f"{scheme}://{self.host}"


@dataclass(frozen=True)
class RegistryConfig:
    insecure: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()

    @classmethod
    def load(cls, root: Path | None = None) -> RegistryConfig:
        candidates = [os.environ.get("PYCOMPOSE_DAEMON_CONFIG", "")]
        if root is not None:
            candidates.append(str(root / "daemon.json"))
        candidates.append(SYSTEM_CONFIG)
        for path in filter(None, candidates):
            try:
                with open(path, "rb") as f:
                    data = json.load(f)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                raise InvalidArgument(f"{path}: invalid registry configuration: {exc}") from None
            if not isinstance(data, dict):
                raise InvalidArgument(f"{path}: invalid registry configuration: not an object")
            return cls(tuple(_strings(data, "insecure-registries", path)),
                       tuple(m.rstrip("/") for m in _strings(data, "registry-mirrors", path)))
        return cls()

    def is_insecure(self, host: str) -> bool:
        name = _hostname(host)
        if name == "localhost" or _is_loopback(name):
            return True
        for entry in self.insecure:
            if entry in (host, name):
                return True
            if "/" in entry:
                try:
                    if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def endpoints(self, domain: str) -> list[Endpoint]:
        """The endpoints to try for a registry domain, mirrors first for docker.io."""
        out: list[Endpoint] = []
        if domain == DEFAULT_DOMAIN:
            for mirror in self.mirrors:
                scheme, _, host = mirror.partition("://")
                if not host:
                    scheme, host = "https", mirror
                out.append(self._endpoint(host, mirror=True, preferred=scheme))
            out.append(Endpoint(DOCKER_HUB_ENDPOINT, ("https",)))
            return out
        out.append(self._endpoint(domain))
        return out

    def _endpoint(self, host: str, mirror: bool = False, preferred: str = "https") -> Endpoint:
        if self.is_insecure(host):
            # As Docker: HTTPS without verification first, then plain HTTP.
            schemes = ("http", "https") if preferred == "http" else ("https", "http")
            return Endpoint(host, schemes, verify=False, mirror=mirror)
        return Endpoint(host, (preferred,), mirror=mirror)


def _strings(data: dict[str, object], key: str, path: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{path}: {key} must be a list of strings")
    return list(value)  # type: ignore[arg-type]


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
