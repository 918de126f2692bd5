"""What every subcommand gets: the global options, the loaded project, the engine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.api import Engine


@dataclass(frozen=True)
class GlobalOptions:
    files: tuple[str, ...] = ()
    project_name: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    project_directory: str | None = None
    progress: str = "auto"
    ansi: str = "auto"
    parallel: int = -1
    compatibility: bool = False
    dry_run: bool = False
    all_resources: bool = False


class Context:
    """Lazily loads the project and connects to the engine, once each."""

    def __init__(self, options: GlobalOptions, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.options = options
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._engine: Engine | None = None

    def load(self, services: tuple[str, ...] = (), **overrides: Any) -> Any:
        """Load the project with the global options (see compose.loader.load)."""
        from compose.loader import LoadOptions, load

        opts = LoadOptions.from_globals(self.options, services=services, **overrides)
        return load(opts)

    # Tests replace this (e.g. with an in-memory engine); None means engine.api.connect().
    engine_factory: Callable[[], Engine] | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            from engine.api import connect

            factory = type(self).engine_factory
            self._engine = factory() if factory is not None else connect()
        return self._engine
