"""Which files, which directory, which environment, which name: the loader's first phase.

Follows `docker compose`'s option order: OS environment (+ PWD), env files (`--env-file`,
else COMPOSE_ENV_FILES, else `.env` of the project directory), COMPOSE_FILE, the default
file search (walking up parent directories, plus an override file), then the env files
again for the directory that search found, COMPOSE_PROFILES, and the project name.
Nothing here reads `os.environ`: the caller passes the environment in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compose.errors import FileNotFound, InterpolationError, UsageError
from compose.loader.environment import Warn, default_env_files, read_env_files
from compose.loader.interpolate import located_error, substitute

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml",
                  "docker-compose.override.yml", "docker-compose.override.yaml")
STDIN = "-"
_NAME_CHARS = re.compile(r"[a-z0-9_-]")


@dataclass(frozen=True)
class Discovery:
    """What the loader works from, before any compose file is parsed."""

    config_files: tuple[str, ...]  # absolute paths, in merge order; "-" is stdin
    working_dir: str  # the project directory (absolute)
    environment: dict[str, str]  # interpolation env: OS (+PWD) over env files
    env_files: tuple[str, ...]  # the env files that were read (absolute)
    profiles: tuple[str, ...]
    explicit_name: str | None  # -p or COMPOSE_PROJECT_NAME, already validated
    warnings: tuple[str, ...] = field(default=())


def normalize_project_name(name: str) -> str:
    """Lower-case, keep `[a-z0-9_-]`, drop leading `_`/`-` (compose's NormalizeProjectName)."""
    return "".join(_NAME_CHARS.findall(name.lower())).lstrip("_-")


def validate_project_name(name: str) -> str:
    """An explicitly given name must already be normal; returns it, or raises UsageError."""
    if not name or normalize_project_name(name) != name:
        raise UsageError(f'invalid project name "{name}": must consist only of lowercase '
                         "alphanumeric characters, hyphens, and underscores as well as "
                         "start with a letter or number")
    return name


def find_default_files(start: str) -> tuple[list[str], list[str]]:
    """The first directory from `start` upward holding a compose file: (files, warnings).

    Files are the compose file and its override file, if any; warnings report several
    candidate names in one directory, as compose does.
    """
    directory = os.path.abspath(start)
    while True:
        found = [os.path.join(directory, n) for n in DEFAULT_FILES
                 if os.path.isfile(os.path.join(directory, n))]
        if found:
            warnings: list[str] = []
            if len(found) > 1:
                warnings += [f"Found multiple config files with supported names: "
                             f"{', '.join(found)}", f"Using {found[0]}"]
            files = [found[0]]
            overrides = [os.path.join(directory, n) for n in OVERRIDE_FILES
                         if os.path.isfile(os.path.join(directory, n))]
            if overrides:
                if len(overrides) > 1:
                    warnings += [f"Found multiple override files with supported names: "
                                 f"{', '.join(overrides)}", f"Using {overrides[0]}"]
                files.append(overrides[0])
            return files, warnings
        parent = os.path.dirname(directory)
        if parent == directory:
            return [], []
        directory = parent


def _working_dir(cwd: str, project_directory: str | None, files: Sequence[str]) -> str:
    if project_directory:
        return project_directory
    for path in files:
        if path != STDIN:
            return os.path.dirname(path)
    return cwd


def _absolute(cwd: str, path: str, environ: Mapping[str, str]) -> str:
    if path == STDIN:
        return path
    home = environ.get("HOME")
    if home and (path == "~" or path.startswith("~/")):
        path = home + path[1:]
    return os.path.normpath(os.path.join(cwd, path))


def _logical_cwd(workdir: str, environ: Mapping[str, str]) -> str:
    """`workdir`, spelled as $PWD when that names the same directory (as Go's os.Getwd):
    in a symlinked directory the project is named after the link, as compose does."""
    physical = os.path.abspath(workdir)
    logical = environ.get("PWD", "")
    if logical and os.path.isabs(logical) and logical != physical:
        try:
            if os.path.samefile(logical, physical):
                return os.path.normpath(logical)
        except OSError:
            pass
    return physical


def discover(*, workdir: str, environ: Mapping[str, str], files: Sequence[str] = (),
             project_directory: str | None = None, env_files: Sequence[str] = (),
             profiles: Sequence[str] = (), project_name: str | None = None,
             warn: Warn | None = None) -> Discovery:
    """Resolve files, project directory, environment, profiles and explicit name.

    `workdir` is the current directory, `environ` the OS environment; the other
    arguments are the global flags (-f, --project-directory, --env-file, --profile, -p).
    """
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    cwd = _logical_cwd(workdir, environ)
    if project_name:
        validate_project_name(project_name)
    environment = dict(environ)
    environment["PWD"] = cwd
    project_dir = _absolute(cwd, project_directory, environ) if project_directory else None
    config = [_absolute(cwd, f, environ) for f in files]
    read: list[str] = []

    def load_env_files() -> None:
        names = list(env_files) or default_env_files(
            _working_dir(cwd, project_dir, config), environ)
        paths = [_absolute(cwd, p, environ) for p in names]
        if paths == read:
            return
        for key, value in read_env_files(paths, environment, warn=note).items():
            environment.setdefault(key, value)
        read.extend(p for p in paths if p not in read)

    load_env_files()
    if not config and "COMPOSE_FILE" in environment:
        separator = environment.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        config = [_absolute(cwd, f, environ)
                  for f in environment["COMPOSE_FILE"].split(separator)]
    if not config:
        found, found_warnings = find_default_files(project_dir or cwd)
        for message in found_warnings:
            note(message)
        if not found:
            raise FileNotFound("no configuration file provided: not found")
        config = found
    # A project directory found only now (from COMPOSE_FILE or the search) has its own .env.
    load_env_files()

    chosen = profiles_from(environment, profiles)
    explicit = project_name or environment.get("COMPOSE_PROJECT_NAME") or None
    if explicit:
        validate_project_name(explicit)
    return Discovery(config_files=tuple(config),
                     working_dir=_working_dir(cwd, project_dir, config),
                     environment=environment, env_files=tuple(read), profiles=chosen,
                     explicit_name=explicit, warnings=tuple(warnings))


def resolve_project_name(discovery: Discovery, names: Sequence[Any], *,
                         interpolate: bool = True, warn: Warn | None = None) -> str:
    """-p / COMPOSE_PROJECT_NAME, else the last file's top-level `name:` (interpolated,
    normalised), else the project directory's normalised base name.

    `names` are the raw `name` values of the compose files in order (None if absent).
    """
    if discovery.explicit_name:
        return discovery.explicit_name
    from_files = ""
    for value in names:
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            break
        from_files = value
    if interpolate and from_files:
        try:
            from_files = substitute(from_files, discovery.environment.get, warn=warn)
        except InterpolationError as exc:
            raise located_error(exc, ("name",), None) from None
    name = normalize_project_name(from_files)
    if not name:
        name = normalize_project_name(os.path.basename(discovery.working_dir.rstrip(os.sep)))
        if name and warn is not None and os.path.realpath(discovery.working_dir) != \
                discovery.working_dir:
            warn("project has been loaded without an explicit name from a symlink. "
                 f'Using name "{name}"')
    if not name:
        raise UsageError("project name must not be empty")
    return name


def interpolation_environment(discovery: Discovery, name: str) -> dict[str, str]:
    """The environment `${...}` sees in the model: COMPOSE_PROJECT_NAME is the resolved
    name, even where the shell set it to something else (`-p` wins there too)."""
    environment = dict(discovery.environment)
    environment["COMPOSE_PROJECT_NAME"] = name
    return environment


def profiles_from(environment: Mapping[str, str], explicit: Sequence[str] = ()) -> tuple[str, ...]:
    """--profile flags, else COMPOSE_PROFILES (comma-separated) of `environment`."""
    if explicit:
        return tuple(p for p in explicit if p)
    raw = environment.get("COMPOSE_PROFILES", "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())
