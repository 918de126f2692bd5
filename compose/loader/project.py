"""The whole load, from LoadOptions to a LoadedProject (see the package docstring)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from compose.errors import FileNotFound, LoadError
from compose.loader.pipeline import FileLoader
from compose.loader.source import SourceMap

if TYPE_CHECKING:
    from compose.loader import LoadedProject, LoadOptions


def _raw_names(loader: FileLoader, files: tuple[str, ...]) -> list[Any]:
    names: list[Any] = []
    for filename in files:
        for doc, _ in loader.documents(filename):
            names.append(doc.get("name") if isinstance(doc, dict) else None)
    return names


def _resolve_service_environments(services: dict[str, Any], env: dict[str, str],
                                  working_dir: str, warn: Any, source: SourceMap) -> None:
    from compose.loader.environment import env_file_refs, service_environment

    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        refs = env_file_refs(service.get("env_file"), working_dir)
        if refs or "environment" in service:
            resolved = service_environment(service.get("environment"), refs, env, warn=warn,
                                           source=source, path=("services", name))
            if resolved:
                service["environment"] = resolved
            else:
                service.pop("environment", None)
        service.pop("env_file", None)


def _resolve_label_files(services: dict[str, Any], working_dir: str) -> None:
    from compose.loader.environment import read_env_file
    from compose.loader.paths import abs_from

    for service in services.values():
        files = service.get("label_file") if isinstance(service, dict) else None
        if not files:
            continue
        labels: dict[str, Any] = {}
        for name in files if isinstance(files, list) else [files]:
            path = abs_from(working_dir, str(name))
            if not os.path.isfile(path):
                raise FileNotFound(f"label file {path} not found: stat {path}: "
                                   "no such file or directory")
            labels.update(read_env_file(path))
        from compose.loader.canonical_values import labels as as_labels

        labels.update(as_labels(service.get("labels") or {}))
        service["labels"] = labels
        del service["label_file"]


def _used_resources(services: dict[str, Any]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {k: set() for k in
                                 ("networks", "volumes", "secrets", "configs", "models")}
    for service in services.values():
        if not isinstance(service, dict):
            continue
        used["networks"].update(service.get("networks") or {})
        for vol in service.get("volumes") or []:
            if isinstance(vol, dict) and vol.get("type") == "volume" and vol.get("source"):
                used["volumes"].add(vol["source"])
        for secret in [*(service.get("secrets") or []),
                       *((service.get("build") or {}).get("secrets") or [])]:
            if isinstance(secret, dict):
                used["secrets"].add(str(secret.get("source")))
        for config in service.get("configs") or []:
            if isinstance(config, dict):
                used["configs"].add(str(config.get("source")))
        used["models"].update(service.get("models") or {})
    return used


def _drop_unused(tree: dict[str, Any]) -> None:
    used = _used_resources(tree.get("services") or {})
    for kind, names in used.items():
        resources = tree.get(kind)
        if isinstance(resources, dict):
            kept = {k: v for k, v in resources.items() if k in names}
            if kept:
                tree[kind] = kept
            else:
                del tree[kind]


def load_project(options: LoadOptions) -> LoadedProject:
    from compose.loader import LoadedProject
    from compose.loader.canonical_model import bind_project
    from compose.loader.defaults import normalize
    from compose.loader.discover import (
        discover,
        interpolation_environment,
        resolve_project_name,
    )
    from compose.loader.profiles import enable_named, select, split_by_profiles

    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        if options.warn is not None:
            options.warn(message)

    discovery = discover(workdir=options.workdir, environ=options.environ,
                         files=options.files, project_directory=options.project_directory,
                         env_files=options.env_files, profiles=options.profiles,
                         project_name=options.project_name, warn=warn)
    source = SourceMap()
    working_dir = discovery.working_dir
    loader = FileLoader(environment=discovery.environment, warn=warn, source=source,
                        base_dir=working_dir, home=options.environ.get("HOME"),
                        project_dir=working_dir, keep_relative=not options.resolve_paths,
                        interpolate=options.interpolate,
                        resolve_paths=options.resolve_paths)
    names = _raw_names(loader, discovery.config_files)
    name = resolve_project_name(discovery, names, interpolate=options.interpolate, warn=warn)
    env = interpolation_environment(discovery, name)
    loader.environment = env
    tree = loader.load_model(list(discovery.config_files), working_dir, [])
    if not tree:
        raise LoadError("empty compose file")
    tree["name"] = name
    profiles = tuple(discovery.profiles)
    disabled: dict[str, Any] = {}
    raw = not options.interpolate
    if options.normalize:
        tree = normalize(tree, env)
    if raw:
        # the reference prints the bare model here: no profiles, no typed form
        from compose.loader.canonical_values import sorted_deep

        data = sorted_deep(tree)
    else:
        services: dict[str, Any] = tree.get("services") or {}
        profiles = tuple(enable_named(services, options.services, profiles))
        active, disabled = split_by_profiles(services, profiles)
        tree["services"] = active
        if options.consistency:
            from compose.loader.validate import check_semantics

            check_semantics(tree, source, disabled=set(disabled), warn=warn)
        if options.resolve_env_files:
            _resolve_service_environments(active, env, working_dir, warn, source)
        _resolve_label_files(active, working_dir)
        tree["services"] = select(active, options.services)
        # like compose-go's DisabledServices: profile-disabled and not selected
        disabled.update({n: s for n, s in active.items() if n not in tree["services"]})
        if not options.all_resources:
            _drop_unused(tree)
        data = bind_project(tree, source)
        disabled = bind_project({"services": disabled})["services"]
    return LoadedProject(name=name, working_dir=working_dir,
                         config_files=tuple(discovery.config_files), environment=env,
                         data=data, source=source, warnings=warnings, profiles=profiles,
                         disabled=disabled, env_files=tuple(discovery.env_files), raw=raw)


__all__ = ["load_project"]
