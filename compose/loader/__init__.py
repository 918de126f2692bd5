"""Load a Compose project: files + environment -> the canonical tree (and, lazily, a model).

Phases, in compose-go's order: discover files/env/name -> per file (YAML, interpolate,
extends, include, merge, schema, canonical) -> defaults -> relative paths ->
normalise -> profiles -> consistency -> service environment -> unused resources
dropped -> the reference's typed form. Nothing here reads `os.environ`: the caller
passes `environ`, so tests run in-process.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compose.loader.source import SourceMap

if TYPE_CHECKING:
    from compose.model import Project


def _process_environment() -> dict[str, str]:
    """os.environ without the LC_CTYPE that Python itself adds when it coerces the C
    locale (PEP 538): the user's environment is what `config --environment` shows."""
    environ = dict(os.environ)
    if "LC_CTYPE" in environ:
        try:
            with open("/proc/self/environ", "rb") as handle:
                original = handle.read().split(b"\0")
        except OSError:
            return environ
        if not any(item.startswith(b"LC_CTYPE=") for item in original):
            del environ["LC_CTYPE"]
    return environ


@dataclass(frozen=True)
class LoadOptions:
    """Everything a load depends on (the global flags plus the process environment)."""

    files: tuple[str, ...] = ()
    project_name: str | None = None
    project_directory: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    workdir: str = "."
    environ: Mapping[str, str] = field(default_factory=dict)
    interpolate: bool = True
    normalize: bool = True
    resolve_paths: bool = True
    consistency: bool = True
    resolve_env_files: bool = True
    all_resources: bool = False
    warn: Callable[[str], None] | None = None

    @classmethod
    def from_globals(cls, globals_: Any, **overrides: Any) -> LoadOptions:
        """From the CLI's GlobalOptions; the process environment and cwd are read here."""
        values: dict[str, Any] = {
            "files": tuple(getattr(globals_, "files", ()) or ()),
            "project_name": getattr(globals_, "project_name", None),
            "project_directory": getattr(globals_, "project_directory", None),
            "profiles": tuple(getattr(globals_, "profiles", ()) or ()),
            "env_files": tuple(getattr(globals_, "env_files", ()) or ()),
            "all_resources": bool(getattr(globals_, "all_resources", False)),
            "workdir": os.getcwd(),
            "environ": _process_environment(),
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class LoadedProject:
    """A loaded project: `data` is exactly what `config --format json` prints."""

    name: str
    working_dir: str
    config_files: tuple[str, ...]
    environment: dict[str, str]
    data: dict[str, Any]
    source: SourceMap
    warnings: list[str] = field(default_factory=list)
    profiles: tuple[str, ...] = ()
    disabled: dict[str, Any] = field(default_factory=dict)  # services switched off or not selected
    env_files: tuple[str, ...] = ()
    raw: bool = False  # `data` is the bare model (not interpolated, no typed form)
    _model: Project | None = None

    def model(self) -> Project:
        """The typed pydantic view, built on first use (pydantic is slow to import)."""
        if self._model is None:
            from compose.model import Project

            self._model = Project.from_tree(self.data)
        return self._model

    @property
    def services(self) -> dict[str, Any]:
        services: dict[str, Any] = self.data.get("services") or {}
        return services


def load(options: LoadOptions) -> LoadedProject:
    """Run every phase; raises a compose.errors.LoadError subclass on bad input."""
    from compose.loader.project import load_project

    # The phases allocate many small containers and free nothing cyclic: Python's cyclic
    # collector would rescan the growing trees again and again (half the time of a large
    # file). Reference counting still frees everything; the collector resumes afterwards.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return load_project(options)
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["LoadOptions", "LoadedProject", "load"]
