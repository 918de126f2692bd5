"""`${VAR}` interpolation: Compose's template grammar, and its walk over a YAML tree.

The grammar is compose-go's: `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?msg}`,
`${VAR?msg}`, `${VAR:+alt}`, `${VAR+alt}`, nesting inside the default/message/alternative
(evaluated even when not used), and `$$` for a literal `$`. Only values are interpolated,
never mapping keys. A few attributes that must be numbers or booleans are cast after
interpolation, as compose-go does, so `privileged: "${PRIV}"` works.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from compose.errors import InterpolationError
from compose.loader.source import Path, SourceMap, format_path
from compose.loader.yamlload import Tagged

Lookup = Callable[[str], "str | None"]
Warn = Callable[[str], None]

# Go's case-insensitive `[_a-z]` also takes the two non-ASCII letters whose simple case
# folding reaches an ASCII one: U+017F (long s) and U+212A (Kelvin sign).
_NAME_START = "[_a-z\u017f\u212a]"
_NAME_REST = "[_a-z0-9\u017f\u212a]*"
_PATTERN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME_START}{_NAME_REST})"
    rf"|\{{(?:(?P<braced>{_NAME_START}{_NAME_REST}(?::?[-+?].*)?)\}}|(?P<invalid>)))",
    re.IGNORECASE | re.ASCII)
# Operators, tried in the order they first appear in the expression.
_OPERATORS = (":?", "?", ":-", "-", ":+", "+")


class InvalidTemplateError(InterpolationError):
    """A `${...}` that is not one of the supported forms."""

    def __init__(self, template: str) -> None:
        super().__init__(f'invalid interpolation format "{template}": '
                         "you may need to escape any $ with another $")
        self.template = template


class MissingRequiredError(InterpolationError):
    """`${VAR:?msg}` or `${VAR?msg}` with VAR missing."""

    def __init__(self, variable: str, reason: str) -> None:
        message = f"required variable {variable} is missing a value"
        super().__init__(f"{message}: {reason}" if reason else message)
        self.variable = variable
        self.reason = reason


def _closing_brace(text: str) -> int:
    """Where compose-go ends the `${...}` that starts `text`, or -1.

    Every `{` opens a level and the character right after it is skipped (so `{}` does
    not close it); the first `}` that brings the count back to zero ends the expression.
    """
    depth = 0
    i = 0
    while i < len(text):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        if text[i] == "{":
            depth += 1
            i += 1
        i += 1
    return -1


def _first_operator(expression: str) -> str | None:
    found = [(expression.find(op), n, op) for n, op in enumerate(_OPERATORS)
             if op in expression]
    return min(found)[2] if found else None


def _apply(operator: str, name: str, argument: str, lookup: Lookup) -> str:
    value = lookup(name)
    if operator in (":?", "?"):
        if value is None or (operator == ":?" and value == ""):
            raise MissingRequiredError(name, argument)
        return value
    if operator in (":-", "-"):
        if value is None or (operator == ":-" and value == ""):
            return argument
        return value
    if value is not None and (operator == "+" or value != ""):
        return argument
    return value or ""


def substitute(template: str, lookup: Lookup, *, warn: Warn | None = None) -> str:
    """`template` with every variable replaced; unset plain variables become "" (+ warning).

    Raises InvalidTemplateError / MissingRequiredError (InterpolationError, no location).
    """
    if "$" not in template:
        return template

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        operator = _first_operator(whole)
        end = _closing_brace(whole)
        rest = ""
        if end > -1:
            whole, rest = whole[:end + 1], whole[end + 1:]
        inner = _PATTERN.match(whole)
        if inner is None:  # cannot happen: `$` + `{` always matches the invalid branch
            raise InvalidTemplateError(template)
        if inner.group("escaped"):
            return "$"
        name: str | None = inner.group("named")
        if not name:
            expression = inner.group("braced")
            if not expression:
                raise InvalidTemplateError(template)
            if operator is not None and operator in expression:
                name, argument = expression.split(operator, 1)
                argument = substitute(argument, lookup, warn=warn)
                applied = _apply(operator, name, argument, lookup)
                return applied + substitute(rest, lookup, warn=warn)
            name = expression
        value = lookup(name)
        if value is None:
            if warn is not None:
                warn(f'The "{name}" variable is not set. Defaulting to a blank string.')
            return ""
        return value

    return _PATTERN.sub(replace, template)


# --- casts applied after interpolation (compose-go's interpolateTypeCastMapping) ---

def _to_int(value: str) -> int:
    if not re.fullmatch(r"[-+]?[0-9]+", value):
        raise ValueError(f'strconv.Atoi: parsing "{value}": invalid syntax')
    return int(value)


def _to_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{value}": invalid syntax')


def _to_bool(value: str, warn: Warn | None) -> bool:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("y", "yes", "on", "n", "no", "off"):
        result = lowered in ("y", "yes", "on")
        if warn is not None:
            warn(f'"{value}" for boolean is not supported by YAML 1.2, '
                 f"please use `{'true' if result else 'false'}`")
        return result
    raise ValueError(f"invalid boolean: {value}")


_ANY = "*"
_LIST = "[]"
_CASTS: dict[tuple[str, ...], str] = {
    **{("services", _ANY, key): "int" for key in (
        "cpu_count", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
        "cpu_shares", "oom_score_adj", "pids_limit", "scale")},
    **{("services", _ANY, key): "float" for key in ("cpu_percent", "cpus")},
    **{("services", _ANY, key): "bool" for key in (
        "init", "oom_kill_disable", "privileged", "read_only", "stdin_open", "tty")},
    ("services", _ANY, "deploy", "replicas"): "int",
    ("services", _ANY, "deploy", "update_config", "parallelism"): "int",
    ("services", _ANY, "deploy", "update_config", "max_failure_ratio"): "float",
    ("services", _ANY, "deploy", "rollback_config", "parallelism"): "int",
    ("services", _ANY, "deploy", "rollback_config", "max_failure_ratio"): "float",
    ("services", _ANY, "deploy", "restart_policy", "max_attempts"): "int",
    ("services", _ANY, "deploy", "placement", "max_replicas_per_node"): "int",
    ("services", _ANY, "healthcheck", "retries"): "int",
    ("services", _ANY, "healthcheck", "disable"): "bool",
    ("services", _ANY, "ports", _LIST, "target"): "int",
    ("services", _ANY, "ulimits", _ANY): "int",
    ("services", _ANY, "ulimits", _ANY, "hard"): "int",
    ("services", _ANY, "ulimits", _ANY, "soft"): "int",
    ("services", _ANY, "volumes", _LIST, "read_only"): "bool",
    ("services", _ANY, "volumes", _LIST, "volume", "nocopy"): "bool",
    **{(kind, _ANY, "external"): "bool" for kind in ("networks", "volumes", "secrets", "configs")},
    **{("networks", _ANY, key): "bool" for key in (
        "internal", "attachable", "enable_ipv4", "enable_ipv6")},
}


# indexed by (length, first part, last part); patterns ending in `*` by (length, first)
_CASTS_BY_END: dict[tuple[int, str, str], list[tuple[tuple[str, ...], str]]] = {}
_CASTS_ANY_END: dict[tuple[int, str], list[tuple[tuple[str, ...], str]]] = {}
for _pattern, _kind in _CASTS.items():
    if _pattern[-1] in (_ANY, _LIST):
        _CASTS_ANY_END.setdefault((len(_pattern), _pattern[0]), []).append((_pattern, _kind))
    else:
        _CASTS_BY_END.setdefault((len(_pattern), _pattern[0], _pattern[-1]), []).append(
            (_pattern, _kind))


def cast_for(path: Path) -> str | None:
    """The type the value at `path` is cast to after interpolation, if any."""
    if not path or not isinstance(path[0], str):
        return None
    length, first = len(path), path[0]
    candidates = _CASTS_BY_END.get((length, first, path[-1]), ())  # type: ignore[arg-type]
    for group in (candidates, _CASTS_ANY_END.get((length, first), ())):
        for pattern, kind in group:
            for want, part in zip(pattern, path, strict=True):
                if want == _LIST:
                    if not isinstance(part, int):
                        break
                elif want != _ANY and want != part:
                    break
            else:
                return kind
    return None


def cast_value(kind: str, value: str, warn: Warn | None = None) -> Any:
    """Convert an interpolated string; raises ValueError with Go's wording."""
    if kind == "int":
        return _to_int(value)
    if kind == "float":
        return _to_float(value)
    return _to_bool(value, warn)


def interpolate_tree(tree: Any, env: Mapping[str, str], *, source: SourceMap | None,
                     warn: Warn, path: Path = ()) -> Any:
    """A copy of `tree` with every string value interpolated from `env` and cast.

    Errors are InterpolationError located at the value (file:line:col), naming the key
    path and the variable: `error while interpolating services.web.image: required ...`.
    `path` is where `tree` sits in the document (for subtrees).
    """
    lookup = env.get
    return _walk(tree, tuple(path), lookup, source, warn)


def located_error(reason: InterpolationError | str, path: Path,
                  source: SourceMap | None) -> InterpolationError:
    """`reason` at `path`, worded as compose-go does (the key path is in the message)."""
    where = format_path(path)
    if isinstance(reason, InvalidTemplateError):
        shown = json.dumps(reason.template, ensure_ascii=False)  # one line, even for "\n"
        message = (f"invalid interpolation format for {where}: {shown} "
                   "(you may need to escape any $ with another $)")
    else:
        text = reason.message if isinstance(reason, InterpolationError) else reason
        message = f"error while interpolating {where}: {text}"
    mark = source.locate(path) if source is not None else None
    if mark is None:
        return InterpolationError(message)
    return InterpolationError(message, file=mark.file, line=mark.line, column=mark.column)


def _walk(node: Any, path: Path, lookup: Lookup, source: SourceMap | None, warn: Warn) -> Any:
    if isinstance(node, str):
        try:
            value: Any = substitute(node, lookup, warn=warn)
        except InterpolationError as exc:
            raise located_error(exc, path, source) from None
        kind = cast_for(path)
        if kind is not None:
            try:
                value = cast_value(kind, value, warn)
            except ValueError as exc:
                raise located_error(f"failed to cast to expected type: {exc}", path,
                                    source) from None
        return value
    if isinstance(node, dict):
        return {key: _walk(value, (*path, key), lookup, source, warn)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(item, (*path, i), lookup, source, warn) for i, item in enumerate(node)]
    if isinstance(node, Tagged):
        return Tagged(node.tag, _walk(node.value, path, lookup, source, warn))
    return node
