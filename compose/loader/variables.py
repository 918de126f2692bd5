"""`config --variables`: the `${...}` variables a model uses, with defaults and flags."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


@dataclass(frozen=True)
class Variable:
    name: str
    default: str = ""
    presence: str = ""
    required: bool = False


def _braced_end(text: str, start: int) -> int:
    """Index of the `}` closing the `${` whose `{` is at `start - 1`, or -1."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def variables_in(text: str) -> list[Variable]:
    """Variables of one template, nested defaults and alternates included."""
    found: list[Variable] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            i += 1
            continue
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            end = _braced_end(text, i + 2)
            if end < 0:
                break
            found += _from_braced(text[i + 2:end])
            i = end + 1
            continue
        match = _NAME.match(text, i + 1)
        if match:
            found.append(Variable(match.group(0)))
            i = match.end()
        else:
            i += 1
    return found


def _from_braced(body: str) -> list[Variable]:
    match = re.match(r"[_a-zA-Z0-9]*", body)
    name = match.group(0) if match else ""
    rest = body[len(name):]
    default = presence = ""
    required = False
    if rest.startswith((":?", "?")):
        required = True
    elif rest.startswith(":-"):
        default = rest[2:]
    elif rest.startswith("-"):
        default = rest[1:]
    elif rest.startswith(":+"):
        presence = rest[2:]
    elif rest.startswith("+"):
        presence = rest[1:]
    found = [Variable(name, default, presence, required)]
    for nested in (default, presence):
        if nested:
            found += variables_in(nested)
    return found


def extract_variables(tree: Any) -> dict[str, Variable]:
    """Every variable used in the string values of `tree` (later uses win)."""
    out: dict[str, Variable] = {}

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for var in variables_in(value):
                out[var.name] = var
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(tree)
    return out


def render_variables(variables: dict[str, Variable], fmt: str = "yaml") -> str:
    """The reference's table (or its JSON form with `fmt="json"`), sorted by name."""
    names = sorted(variables)
    if fmt == "json":
        data = {n: {"Name": n, "DefaultValue": variables[n].default,
                    "PresenceValue": variables[n].presence,
                    "Required": variables[n].required} for n in names}
        return json.dumps(data, indent=4) + "\n\n"
    rows = [["NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"]]
    rows += [[n, "true" if variables[n].required else "false", variables[n].default,
              variables[n].presence] for n in names]
    widths = [max(20, max(len(r[c]) for r in rows) + 1) for c in range(3)]
    return "".join("".join(r[c].ljust(widths[c]) for c in range(3)) + r[3] + "\n"
                   for r in rows)
