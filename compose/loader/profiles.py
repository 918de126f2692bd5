"""Profiles: which services are active, and the selection of services named on the CLI.

A service without `profiles` is always active; one with profiles is active when one
of them is enabled (`*` enables all). Naming a service on the command line enables
its profiles; selecting services keeps them and what they depend on (required or not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from compose.errors import ConfigError


def is_active(service: dict[str, Any], profiles: Sequence[str]) -> bool:
    own = service.get("profiles") or []
    if not own:
        return True
    return "*" in profiles or any(p in profiles for p in own)


def enable_named(services: dict[str, Any], names: Iterable[str],
                 profiles: Sequence[str]) -> list[str]:
    """The profiles plus those of the explicitly named services (WithServicesEnabled)."""
    enabled = list(profiles)
    for name in names:
        service = services.get(name)
        if isinstance(service, dict):
            for p in service.get("profiles") or []:
                if p not in enabled:
                    enabled.append(str(p))
    return enabled


def split_by_profiles(services: dict[str, Any], profiles: Sequence[str]
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(active, disabled) services."""
    active: dict[str, Any] = {}
    disabled: dict[str, Any] = {}
    for name, service in services.items():
        target = active if is_active(service or {}, profiles) else disabled
        target[name] = service
    return active, disabled


def dependencies(services: dict[str, Any], name: str) -> set[str]:
    """`name` and every service it depends on, transitively."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        service = services.get(current) or {}
        stack += [d for d in (service.get("depends_on") or {}) if d in services]
    return seen


def select(services: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Only `names` and their dependencies (WithSelectedServices); dependencies on
    services outside the selection are dropped."""
    if not names:
        return services
    keep: set[str] = set()
    for name in names:
        if name not in services:
            raise ConfigError(f"no such service: {name}")
        keep |= dependencies(services, name)
    selected: dict[str, Any] = {}
    for name, service in services.items():
        if name not in keep:
            continue
        if isinstance(service, dict) and isinstance(service.get("depends_on"), dict):
            service["depends_on"] = {d: c for d, c in service["depends_on"].items()
                                     if d in keep}
            if not service["depends_on"]:
                del service["depends_on"]
        selected[name] = service
    return selected


def all_profiles(services: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    for service in services.values():
        found.update(str(p) for p in (service or {}).get("profiles") or [])
    return sorted(found)
