"""The one exception tree of the `compose` package. Exit codes are decided by the CLI."""

from __future__ import annotations


class ComposeError(Exception):
    """Base of every error pycompose reports to the user as one line."""


class UsageError(ComposeError):
    """A bad command line: unknown flag value, invalid project name, missing argument."""


class LoadError(ComposeError):
    """A problem in the user's files, located where possible.

    Renders as `file:line:col: key.path: message`; parts that are unknown are left out.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class FileNotFound(LoadError):
    """No compose file found, or a referenced file (-f, env_file, include) is missing."""


class YamlError(LoadError):
    """The file is not valid YAML, or has duplicate keys."""


class InterpolationError(LoadError):
    """`${VAR:?msg}` with VAR unset, or an invalid `${...}` form."""


class SchemaError(LoadError):
    """The file does not match the Compose Specification schema."""


class ConfigError(LoadError):
    """A semantic problem: undefined network, unknown service, port conflict..."""


class CycleError(LoadError):
    """A dependency, extends or include cycle; the message names the cycle."""


class PlanError(ComposeError):
    """The desired state cannot be reached from the observed one."""


class ApplyError(ComposeError):
    """Carrying out a plan failed (a dependency unhealthy, a container exited...)."""
