"""`include`: other Compose projects loaded on their own and imported into this one.

Each entry (short: a path; long: `path` (string or list), `project_directory`,
`env_file`) is loaded with its own working directory and `.env` (the including
project's variables win), paths resolved; its services, volumes, networks, secrets,
configs and models are copied in; a resource defined differently on both sides is an
error, as in the reference. Including a file already on the include chain is a cycle.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from compose.errors import ConfigError, CycleError, FileNotFound
from compose.loader.paths import expand_user
from compose.loader.source import error_at

if TYPE_CHECKING:
    from compose.loader.pipeline import FileLoader

RESOURCES = ("services", "volumes", "networks", "secrets", "configs", "models")


def _string_list(value: Any, at: tuple[str | int, ...], loader: FileLoader) -> list[str]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise error_at(ConfigError, "must be a string or a list of strings", at, loader.source)
    return list(items)


def _entries(value: Any, loader: FileLoader) -> list[dict[str, Any]]:
    """The include entries in long syntax (path and env_file as lists), checked."""
    if not isinstance(value, list):
        raise error_at(ConfigError, "must be a list", ("include",), loader.source)
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or "path" not in item:
            raise error_at(ConfigError, "must be a path or a mapping with `path`",
                           ("include", i), loader.source)
        entry = dict(item)
        entry["path"] = _string_list(item["path"], ("include", i, "path"), loader)
        entry["env_file"] = _string_list(item.get("env_file") or [],
                                         ("include", i, "env_file"), loader)
        project_dir = item.get("project_directory")
        if project_dir is not None and not isinstance(project_dir, str):
            raise error_at(ConfigError, "must be a string",
                           ("include", i, "project_directory"), loader.source)
        out.append(entry)
    return out


def _cycle(included: list[str], path: str) -> CycleError:
    chain = [*included, path]
    # the reference's message, on one line
    return CycleError("include cycle detected: " + " include ".join(chain))


def _env_files(entry: dict[str, Any], working_dir: str, project_dir: str) -> list[str]:
    if not entry["env_file"]:
        dotenv = os.path.join(project_dir, ".env")
        return [dotenv] if os.path.isfile(dotenv) else []
    files: list[str] = []
    for name in entry["env_file"]:
        if name == "/dev/null":
            continue
        if not os.path.isabs(name):
            name = os.path.join(working_dir, name)
            if not os.path.exists(name):
                raise FileNotFound(f"stat {name}: no such file or directory", file=name)
            if os.path.isdir(name):
                raise ConfigError(f"{name} is not a file")
        files.append(name)
    return files


def apply_include(cfg: dict[str, Any], working_dir: str, loader: FileLoader,
                  included: list[str]) -> None:
    """Load and import every `include` entry of `cfg` (one file's tree), in place."""
    if "include" not in cfg:
        return
    entries = _entries(cfg.pop("include"), loader)
    for number, entry in enumerate(entries):
        paths: list[str] = []
        rel_working_dir = working_dir
        project_dir = entry.get("project_directory")
        for i, raw in enumerate(entry["path"]):
            path = expand_user(str(raw), loader.home)
            path = os.path.normpath(os.path.join(working_dir, path))
            if not os.path.exists(path):
                raise FileNotFound(f"open {path}: no such file or directory", file=path)
            if i == 0:
                if not project_dir:
                    project_dir = os.path.dirname(path)
                elif not os.path.isabs(project_dir):
                    project_dir = os.path.normpath(os.path.join(working_dir, project_dir))
                rel_working_dir = project_dir
                if path in included:
                    cycle = _cycle(included, path)
                    raise error_at(CycleError, cycle.message, ("include", number),
                                   loader.source)
            paths.append(path)
        from compose.loader.environment import read_env_files

        env_files = _env_files(entry, working_dir, str(project_dir))
        from_files = read_env_files(env_files, loader.environment)
        environment = {**from_files, **loader.environment}
        sub = loader.derive(environment=environment, resolve_paths=True,
                            base_dir=rel_working_dir)
        imported = sub.load_model(paths, rel_working_dir, included)
        _import_resources(imported, cfg)


def _import_resources(source: dict[str, Any], target: dict[str, Any]) -> None:
    for kind in RESOURCES:
        found = source.get(kind)
        if not found:
            continue
        into = target.get(kind)
        if not isinstance(into, dict):
            into = {}
        for name, value in found.items():
            if name in into and into[name] != value:
                raise ConfigError(f"{kind}.{name} conflicts with imported resource")
            into[name] = value
        target[kind] = into
