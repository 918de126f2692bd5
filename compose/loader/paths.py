"""Relative paths -> absolute, against the directory that declared them (`~` from HOME)."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from typing import Any

from compose.errors import ConfigError
from compose.loader.treepath import TreePath, find_rule, pattern

_REMOTE_CONTEXT = re.compile(r"^(https?://|git@|git://|github\.com/)")
_WINDOWS_ABS = re.compile(r"^([a-zA-Z]:[\\/]|\\\\)")


def expand_user(path: str, home: str | None) -> str:
    if home and (path == "~" or path.startswith("~/")):
        return home + path[1:]
    return path


def is_remote_context(value: str) -> bool:
    return "://" in value or bool(_REMOTE_CONTEXT.match(value))


class _Relative(str):
    """A path already made relative to the main project (--no-path-resolution of an
    included or extended file): later resolution passes leave it alone."""


class _Resolver:
    def __init__(self, working_dir: str, home: str | None,
                 relative_to: str | None = None) -> None:
        self.working_dir = working_dir
        self.home = home
        self.relative_to = relative_to

    def abs_path(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.abs_path(v) for v in value]
        if not isinstance(value, str) or not value or isinstance(value, _Relative):
            return value
        value = expand_user(value, self.home)
        if posixpath.isabs(value):
            return value
        return posixpath.normpath(posixpath.join(self.working_dir, value))

    def maybe_unix_path(self, value: Any) -> Any:
        if not isinstance(value, str) or isinstance(value, _Relative):
            return value
        value = expand_user(value, self.home)
        if posixpath.isabs(value) or _WINDOWS_ABS.match(value):
            return value
        return posixpath.normpath(posixpath.join(self.working_dir, value))

    def ssh_key(self, value: Any) -> Any:
        if isinstance(value, str) and "=" in value:
            key, path = value.split("=", 1)
            return f"{key}={self.maybe_unix_path(path)}"
        return value

    def context_path(self, value: Any) -> Any:
        if isinstance(value, str) and (is_remote_context(value)
                                       or value.startswith("service:")):
            return value
        return self.abs_path(value)

    def watch_path(self, value: Any) -> Any:
        """A path that is a symbolic link is replaced by the path it resolves to."""
        resolved = self.abs_path(value)
        if isinstance(resolved, str) and not isinstance(resolved, _Relative) \
                and os.path.islink(resolved):
            return os.path.realpath(resolved)
        return resolved

    def extends_path(self, value: Any) -> Any:
        if isinstance(value, str) and is_remote_context(value):
            return value
        return self.abs_path(value)

    def volume_mount(self, value: Any) -> Any:
        if not isinstance(value, dict) or value.get("type") != "bind":
            return value
        if "source" not in value:
            raise ConfigError('invalid mount config for type "bind": '
                              "field Source must not be empty")
        value["source"] = self.maybe_unix_path(value["source"])
        return value

    def volume_driver_opts(self, value: Any) -> Any:
        if not isinstance(value, dict) or value.get("driver") != "local":
            return value
        opts = value.get("driver_opts")
        if isinstance(opts, dict) and opts.get("o") == "bind" and "device" in opts:
            opts["device"] = self.maybe_unix_path(opts["device"])
        return value

    def _relative(self, before: Any, after: Any) -> Any:
        if self.relative_to is None or not isinstance(after, str) or before == after:
            return after
        if isinstance(after, str) and posixpath.isabs(after):
            return _Relative(posixpath.relpath(after, self.relative_to))
        return after

    def walk(self, value: Any, path: TreePath) -> Any:
        rule = find_rule(path, RULES)
        if rule is not None:
            if self.relative_to is not None and isinstance(value, dict):
                before = value.get("source")
                result = rule(self, value)
                if isinstance(result, dict) and "source" in result:
                    result["source"] = self._relative(before, result["source"])
                return result
            return self._relative(value, rule(self, value))
        if isinstance(value, dict):
            for key in list(value):
                value[key] = self.walk(value[key], (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = self.walk(item, (*path, "[]"))
        return value


RULES: dict[tuple[str, ...], Callable[[_Resolver, Any], Any]] = {
    pattern("services.*.build.context"): _Resolver.context_path,
    pattern("services.*.build.additional_contexts.*"): _Resolver.context_path,
    pattern("services.*.build.ssh.*"): _Resolver.ssh_key,
    pattern("services.*.env_file.*.path"): _Resolver.abs_path,
    pattern("services.*.label_file.*"): _Resolver.abs_path,
    pattern("services.*.extends.file"): _Resolver.extends_path,
    pattern("services.*.develop.watch.*.path"): _Resolver.watch_path,
    pattern("services.*.volumes.*"): _Resolver.volume_mount,
    pattern("configs.*.file"): _Resolver.maybe_unix_path,
    pattern("secrets.*.file"): _Resolver.maybe_unix_path,
    pattern("include.*.path"): _Resolver.abs_path,
    pattern("include.*.project_directory"): _Resolver.abs_path,
    pattern("include.*.env_file"): _Resolver.abs_path,
    pattern("volumes.*"): _Resolver.volume_driver_opts,
}


def resolve_relative_paths(tree: dict[str, Any], working_dir: str, home: str | None,
                           relative_to: str | None = None) -> dict[str, Any]:
    """Make the tree's file paths absolute against `working_dir` (mutates and returns);
    with `relative_to`, rewritten paths are made relative to that directory instead
    (extended/included files under --no-path-resolution)."""
    resolved: dict[str, Any] = _Resolver(working_dir, home, relative_to).walk(tree, ())
    return resolved


def abs_from(base_dir: str, path: str, home: str | None = None) -> str:
    """One path made absolute against `base_dir`."""
    path = expand_user(path, home)
    return path if os.path.isabs(path) else posixpath.normpath(posixpath.join(base_dir, path))
