"""`extends`: a service built on another one, in the same file or another, recursively.

The base is merged under the extending service with the multi-file merge rules
(compose-go's `ApplyExtends` / `ExtendService`); a chain that comes back to a
service already on it is a CycleError naming the whole chain.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compose.errors import ConfigError, CycleError
from compose.loader.merge import apply_resets, merge_value
from compose.loader.source import error_at
from compose.loader.treepath import TreePath

if TYPE_CHECKING:
    from compose.loader.pipeline import FileLoader


@dataclass(frozen=True)
class Tracker:
    """The chain of (file, service) already being extended, to detect cycles."""

    chain: tuple[tuple[str, str], ...] = ()

    def add(self, filename: str, service: str) -> Tracker:
        ref = (filename, service)
        if ref in self.chain:
            # the reference's message, on one line
            parts = [f"{self.chain[0][1]} in {self.chain[0][0]}"]
            parts += [f"extends {s} in {f}" for f, s in (*self.chain[1:], ref)]
            raise CycleError("Circular reference: " + " ".join(parts))
        return Tracker((*self.chain, ref))


def apply_extends(cfg: dict[str, Any], filename: str, loader: FileLoader,
                  resets: list[TreePath], tracker: Tracker | None = None) -> None:
    """Resolve every service's `extends` of one file's tree, in place."""
    services = cfg.get("services")
    if not isinstance(services, dict):
        return  # not a mapping: the schema check reports it, with its position
    for name in list(services):
        services[name] = _extend(name, services, filename, loader, resets,
                                 tracker or Tracker())


def _base_from_file(name: str, ref: str, filename: str, ref_file: str,
                    loader: FileLoader
                    ) -> tuple[dict[str, Any], list[TreePath], str, FileLoader]:
    from compose.loader.paths import expand_user, resolve_relative_paths

    path = expand_user(ref_file, loader.home)
    if not os.path.isabs(path):
        path = os.path.normpath(os.path.join(loader.base_dir, path))
    if not os.path.exists(path):
        raise ConfigError(f"open {path}: no such file or directory")
    sub = loader.derive(skip_extends=True, skip_include=True, skip_validation=True,
                        skip_defaults=True, base_dir=os.path.dirname(path))
    source, resets = sub.load_file(path, os.path.dirname(path), {}, [])
    services = source.get("services")
    if services is None:
        raise ConfigError(f"cannot extend service {name!r} in {path}: no services section")
    if not isinstance(services, dict):
        raise ConfigError(f"cannot extend service {name!r} in {ref_file}: "
                          "services must be a mapping")
    if ref not in services:
        raise error_at(ConfigError, f'cannot extend service "{name}" in {filename}: '
                       f'service "{ref}" not found in {ref_file}',
                       ("services", name, "extends"), loader.source)
    resolve_relative_paths(source, os.path.dirname(path), loader.home, loader.relative_to())
    return services, resets, path, sub


def _extends_ref(name: str, extends: Any, loader: FileLoader) -> tuple[str, str | None]:
    """(service, file or None) of an `extends` value, or a located ConfigError."""
    at = ("services", name, "extends")
    if isinstance(extends, str):
        return extends, None
    if not isinstance(extends, dict):
        raise error_at(ConfigError, "must be a string or a mapping", at, loader.source)
    ref, ref_file = extends.get("service"), extends.get("file")
    if not isinstance(ref, str) or not ref:
        raise error_at(ConfigError, "`service` is required and must be a string",
                       (*at, "service"), loader.source)
    if ref_file is not None and not isinstance(ref_file, str):
        raise error_at(ConfigError, "`file` must be a string", (*at, "file"), loader.source)
    return ref, ref_file


def _extend(name: str, services: dict[str, Any], filename: str, loader: FileLoader,
            resets: list[TreePath], tracker: Tracker) -> Any:
    service = services.get(name)
    if not isinstance(service, dict) or service.get("extends") is None:
        return service  # a service that is not a mapping is reported by the schema check
    ref, ref_file = _extends_ref(name, service["extends"], loader)
    base_resets: list[TreePath] = []
    if ref_file is not None:
        services, base_resets, filename, loader = _base_from_file(
            name, ref, filename, str(ref_file), loader)
    elif ref not in services:
        raise error_at(ConfigError, f'cannot extend service "{name}" in {filename}: '
                       f'service "{ref}" not found', ("services", name, "extends"),
                       loader.source)
    try:
        tracker = tracker.add(filename, name)
    except CycleError as exc:
        raise error_at(CycleError, exc.message, ("services", name, "extends"),
                       loader.source) from None
    base = _extend(ref, services, filename, loader, resets, tracker)
    if base is None:
        return service
    if not isinstance(base, dict):
        raise error_at(ConfigError, f'service "{ref}" must be a mapping to be extended',
                       ("services", name, "extends"), loader.source)
    source = copy.deepcopy(base)
    holder = {"services": {name: source}}
    apply_resets(holder, resets)
    apply_resets(holder, base_resets)
    source = holder["services"].get(name, {})
    merged = merge_value(source, service, ("services", "x"))
    merged.pop("extends", None)
    services[name] = merged
    return merged
