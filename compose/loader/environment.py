"""Environment sources: `.env` / `--env-file` / `env_file:` files, and their precedence.

The `.env` grammar is compose-go's (a godotenv fork), written out here because
python-dotenv's parser differs from it on the corpus's dotenv vectors (text after a
closing quote, `KEY: value`, bare CR line ends, unterminated quotes and spaces in keys
being errors, escapes in single quotes). Values are interpolated with pycompose's own
`${...}` grammar: unquoted and double-quoted values are, single-quoted ones are not.
`format: raw` files are read as Docker's `--env-file`: `KEY=VALUE` lines taken verbatim.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from compose.errors import FileNotFound, LoadError
from compose.loader.interpolate import InvalidTemplateError, MissingRequiredError, substitute
from compose.loader.source import Path, SourceMap, error_at
from compose.loader.yamlload import go_string

Lookup = Callable[[str], "str | None"]
Warn = Callable[[str], None]

_BOM = "\ufeff"
# Go's isSpace in the dotenv parser: blanks that are not line breaks.
_BLANKS = "\t\v\f\r \x85\xa0"
_EXPORT = re.compile(r"export\s+")
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0\d{0,3})")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", '"': '"', "\\": "\\"}


class EnvFileError(LoadError):
    """A `.env` / env_file that cannot be read: bad syntax or a bad `${...}`."""


@dataclass(frozen=True)
class EnvFileRef:
    """One `env_file:` entry of a service (short syntax = required, default format)."""

    path: str
    required: bool = True
    format: str | None = None


def _go_quote(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + out.replace("\r", "\\r").replace("\t", "\\t") + '"'


def _unescape(match: re.Match[str]) -> str:
    token = match.group(0)
    if token == "\\$":
        return "$$"  # the interpolation step turns `$$` into a literal `$`
    if token.startswith("\\0"):
        digits = token[2:]
        if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) < 256:
            return chr(int(digits, 8))
        return token
    return _SIMPLE_ESCAPES.get(token[1], token)


class _Parser:
    """compose-go's dotenv statement parser over one file's text."""

    def __init__(self, text: str, lookup: Lookup, warn: Warn | None, filename: str | None):
        self.text = text
        self.lookup = lookup
        self.warn = warn
        self.filename = filename
        self.out: dict[str, str] = {}

    def fail(self, message: str, offset: int) -> EnvFileError:
        line = self.text.count("\n", 0, offset) + 1
        return EnvFileError(message, file=self.filename, line=line)

    def parse(self) -> dict[str, str]:
        pos = 0
        while True:
            pos = self._statement_start(pos)
            if pos < 0:
                return self.out
            pos = self._statement(pos)

    def _statement_start(self, pos: int) -> int:
        """Offset of the next statement, skipping blanks and comment lines; -1 at the end."""
        text = self.text
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return -1
            if text[pos] != "#":
                return pos
            newline = text.find("\n", pos)
            if newline < 0:
                return -1
            pos = newline

    def _statement(self, start: int) -> int:
        text = self.text
        pos = start
        export = _EXPORT.match(text, pos)
        if export:
            pos += len("export")
            while pos < len(text) and text[pos] in _BLANKS:
                pos += 1
            if pos == len(text):
                raise self.fail("zero length string", start)
        key, inherited, after = "", False, pos
        for i in range(pos, len(text)):
            char = text[i]
            if char in _BLANKS:
                continue
            if char in "=:\n":
                key, inherited, after = text[pos:i], char == "\n", i + 1
                break
            if char in "_.-[]" or char.isalpha() or char.isnumeric():
                continue
            first_line = text[pos:].split("\n", 1)[0]
            raise self.fail(f"unexpected character {_go_quote(char)} in variable name "
                            f"{_go_quote(first_line)}", start)
        key = key.rstrip()
        while after < len(text) and text[after] in _BLANKS:
            after += 1
        if " " in key:
            raise self.fail("key cannot contain a space", start)
        if inherited:
            value = self.lookup(key)
            if value is not None:
                self.out[key] = value
            return after
        value, end = self._value(after, start)
        self.out[key] = value
        return end

    def _value(self, pos: int, start: int) -> tuple[str, int]:
        text = self.text
        quote = text[pos] if pos < len(text) and text[pos] in "\"'" else ""
        if not quote:
            newline = text.find("\n", pos)
            end = len(text) if newline < 0 else newline
            value = text[pos:end].split(" #", 1)[0].rstrip()
            return self._expand(value, start), (len(text) if newline < 0 else newline + 1)
        chars: list[str] = []
        escaped = False
        for i in range(pos + 1, len(text)):
            char = text[i]
            if char != quote:
                if not escaped and char == "\\":
                    escaped = True
                    continue
                if escaped:
                    escaped = False
                    chars.append("\\")
                chars.append(char)
                continue
            if escaped:
                escaped = False
                chars.append(char)
                continue
            value = "".join(chars)
            if quote == '"':
                value = self._expand(_ESCAPE.sub(_unescape, value), start)
            return value, i + 1
        shown = text[pos:].split("\n", 1)[0]
        raise self.fail(f"unterminated quoted value {shown}", start)

    def _expand(self, value: str, start: int) -> str:
        def lookup(name: str) -> str | None:
            found = self.lookup(name)
            return found if found is not None else self.out.get(name)

        try:
            return substitute(value, lookup, warn=self.warn)
        except InvalidTemplateError as exc:
            raise self.fail(f"Invalid template: {_go_quote(exc.template)}", start) from None
        except MissingRequiredError as exc:
            raise self.fail(exc.message, start) from None


def _no_lookup(_: str) -> str | None:
    return None


def parse_dotenv(text: str, lookup: Lookup | None = None, *, filename: str | None = None,
                 warn: Warn | None = None) -> dict[str, str]:
    """KEY=VALUE pairs of a `.env` text; `${X}` sees `lookup` first, then earlier keys."""
    if text.startswith(_BOM):
        text = text[1:]
    return _Parser(text, lookup or _no_lookup, warn, filename).parse()


def parse_raw_env(text: str, lookup: Lookup | None = None, *,
                  filename: str | None = None) -> dict[str, str]:
    """`format: raw`: `KEY=VALUE` lines taken as they are (no quotes, no interpolation)."""
    lookup = lookup or _no_lookup
    out: dict[str, str] = {}
    if text.startswith(_BOM):
        text = text[1:]
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        key, has_value, value = line.partition("=")
        key = key.lstrip(" \t")
        if " " in key or "\t" in key:
            raise EnvFileError(f"variable '{key}' contains whitespaces", file=filename,
                               line=number)
        if not key:
            raise EnvFileError(f"no variable name on line '{line}'", file=filename, line=number)
        if has_value:
            out[key] = value
        else:
            found = lookup(line)
            if found is not None:
                out[line.strip()] = found
    return out


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise EnvFileError(f"{path} is a directory", file=path) from None
    except OSError as exc:
        raise FileNotFound(f"cannot read env file: {exc.strerror}", file=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EnvFileError("invalid UTF-8 bytes", file=path, line=line) from None


def read_env_file(path: str, lookup: Lookup | None = None, *, format: str | None = None,
                  warn: Warn | None = None) -> dict[str, str]:
    """The variables a `.env`-syntax file defines (`format="raw"`: verbatim lines)."""
    text = _read_text(path)
    if format in (None, "", "env"):
        return parse_dotenv(text, lookup, filename=path, warn=warn)
    if format == "raw":
        return parse_raw_env(text, lookup, filename=path)
    raise EnvFileError(f'unsupported env_file format "{format}"', file=path)


def read_env_files(paths: Iterable[str], os_env: Mapping[str, str], *,
                   warn: Warn | None = None) -> dict[str, str]:
    """Variables of `--env-file`s / `.env` in order: later files win; each file sees the
    OS environment first, then what earlier files set. Missing files are errors."""
    values: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        found = os_env.get(name)
        return found if found is not None else values.get(name)

    for path in paths:
        if not os.path.exists(path):
            raise FileNotFound(f"couldn't find env file: {path}")
        if os.path.isdir(path):
            raise EnvFileError(f"{path} is a directory", file=path)
        values.update(read_env_file(path, lookup, warn=warn))
    return values


def default_env_files(project_dir: str, os_env: Mapping[str, str]) -> list[str]:
    """The env files used when no `--env-file` is given: COMPOSE_ENV_FILES, else `.env`."""
    if "COMPOSE_ENV_FILES" in os_env:
        return os_env["COMPOSE_ENV_FILES"].split(",")
    dotenv = os.path.join(project_dir, ".env")
    if os.path.isfile(dotenv) and not _truthy(os_env.get("COMPOSE_DISABLE_ENV_FILE")):
        return [dotenv]
    return []


def _truthy(value: str | None) -> bool:
    """Go's strconv.ParseBool true values."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def project_environment(os_env: Mapping[str, str], project_dir: str,
                        env_files: Iterable[str] | None = None, *, cwd: str | None = None,
                        warn: Warn | None = None) -> dict[str, str]:
    """The interpolation environment: env files (`--env-file`s, else COMPOSE_ENV_FILES,
    else the project dir's `.env`) under the OS environment, which always wins.
    Relative env file paths are taken from `cwd` (default: `project_dir`)."""
    files = list(env_files or ()) or default_env_files(project_dir, os_env)
    base = cwd or project_dir
    files = [os.path.normpath(os.path.join(base, f)) for f in files]
    values = read_env_files(files, os_env, warn=warn)
    return {**values, **os_env}


# --- a service's env_file / environment ---

def env_file_refs(value: Any, working_dir: str, home: str | None = None) -> list[EnvFileRef]:
    """`env_file:` in short (string or list of strings) or long syntax, paths absolute
    (`~/` expanded with `home`, the environment's HOME: never read from this process)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    refs: list[EnvFileRef] = []
    for item in items:
        if isinstance(item, str):
            path, required, fmt = item, True, None
        else:
            path = str(item["path"])
            required = _as_bool(item.get("required", True))
            fmt = item.get("format")
        if home and (path == "~" or path.startswith("~/")):
            path = home + path[1:]
        refs.append(EnvFileRef(os.path.normpath(os.path.join(working_dir, path)), required, fmt))
    return refs


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "yes", "y", "on", "1")
    return bool(value)


def environment_mapping(value: Any) -> dict[str, str | None]:
    """`environment:` (mapping or `KEY[=VALUE]` list) as a mapping; bare KEY -> None."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): None if v is None else go_string(v) for k, v in value.items()}
    out: dict[str, str | None] = {}
    for item in value:
        key, has_value, rest = str(item).partition("=")
        out[key] = rest if has_value else None
    return out


def resolve_environment(environment: Mapping[str, str | None],
                        lookup: Lookup) -> dict[str, str | None]:
    """Bare entries take their value from `lookup` (the project environment), else None."""
    return {k: (lookup(k) if v is None and lookup(k) is not None else v)
            for k, v in environment.items()}


def service_environment(environment: Any, env_files: Iterable[EnvFileRef],
                        project_env: Mapping[str, str], *, warn: Warn | None = None,
                        source: SourceMap | None = None,
                        path: Path = ()) -> dict[str, str | None]:
    """A service's container environment, as Compose resolves it for `config`.

    env_file values (later files win) are overridden by `environment:`; bare entries
    take the project environment's value or stay None. env_file `${X}` sees the project
    environment, then the service's `environment:`, then the values of earlier env_files
    (and the file's own earlier keys).
    With `source` and the service's `path` (("services", name)), a missing or unreadable
    env_file is reported at its `env_file` entry.
    """
    declared = resolve_environment(environment_mapping(environment), project_env.get)

    merged: dict[str, str | None] = {}

    def lookup(name: str) -> str | None:
        for scope in (project_env, declared, merged):
            found = scope.get(name)
            if found is not None:
                return found
        return None

    for index, ref in enumerate(env_files):
        if not os.path.exists(ref.path):
            if ref.required:
                message = (f"env file {ref.path} not found: stat {ref.path}: "
                           "no such file or directory")
                if source is None:
                    raise FileNotFound(message)
                raise error_at(FileNotFound, message, (*path, "env_file", index), source)
            continue
        if source is not None and (os.path.isdir(ref.path) or not os.access(ref.path, os.R_OK)):
            reason = "is a directory" if os.path.isdir(ref.path) else "permission denied"
            raise error_at(EnvFileError, f"cannot read env file {ref.path}: {reason}",
                           (*path, "env_file", index), source)
        merged.update(read_env_file(ref.path, lookup, format=ref.format, warn=warn))
    merged.update(declared)
    return merged


__all__ = [
    "EnvFileError", "EnvFileRef", "default_env_files",
    "env_file_refs", "environment_mapping", "parse_dotenv", "parse_raw_env",
    "project_environment", "read_env_file", "read_env_files", "resolve_environment",
    "service_environment",
]
