"""Key paths into plain trees and the `*` patterns the phases use to pick rules."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

TreePath = tuple[str | int, ...]


def pattern(text: str) -> tuple[str, ...]:
    """"services.*.ports" -> ("services", "*", "ports")."""
    return tuple(text.split("."))


def matches(path: TreePath, pat: tuple[str, ...]) -> bool:
    """True when `path` has the same length as `pat` and every non-`*` part is equal."""
    if len(path) != len(pat):
        return False
    return all(p == "*" or p == str(part) for part, p in zip(path, pat, strict=True))


# rule tables are module-level constants: each is indexed once. Patterns of one length
# whose literal parts sit at the same positions form a group; a group is a dict from those
# literal parts (picked from a path by an itemgetter) to (order, rule), so a lookup costs
# one dict probe per group, and the pattern written first wins among the groups that
# match, as in a linear scan. This runs for every node of every tree: it must be cheap.
_Group = tuple[Callable[[TreePath], Any], dict[Any, tuple[int, Any]]]
_Index = dict[int, list[_Group]]
_INDEXES: dict[int, tuple[dict[Any, Any], _Index]] = {}


def _no_literals(path: TreePath) -> tuple[()]:
    return ()


def _build_index(rules: dict[tuple[str, ...], Any]) -> _Index:
    groups: dict[int, dict[tuple[int, ...], dict[Any, tuple[int, Any]]]] = {}
    for order, (pat, rule) in enumerate(rules.items()):
        positions = tuple(i for i, p in enumerate(pat) if p != "*")
        literals = tuple(pat[i] for i in positions)
        key = literals[0] if len(literals) == 1 else literals  # what itemgetter returns
        table = groups.setdefault(len(pat), {}).setdefault(positions, {})
        table.setdefault(key, (order, rule))
    return {length: [(itemgetter(*positions) if positions else _no_literals, table)
                     for positions, table in by_positions.items()]
            for length, by_positions in groups.items()}


def find_rule(path: TreePath, rules: dict[tuple[str, ...], Any]) -> Any:
    """The rule of the first pattern (in `rules` order) that matches `path`, or None."""
    cached = _INDEXES.get(id(rules))
    if cached is None or cached[0] is not rules:
        cached = _INDEXES[id(rules)] = (rules, _build_index(rules))
    groups = cached[1].get(len(path))
    if not groups:
        return None
    if len(groups) == 1:
        getter, table = groups[0]
        found = table.get(getter(path))
        return None if found is None else found[1]
    best: tuple[int, Any] | None = None
    for getter, table in groups:
        found = table.get(getter(path))
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return None if best is None else best[1]


def delete_path(tree: Any, path: TreePath) -> None:
    """Remove the value at `path` (patterns allowed) from `tree`, if present."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        keys = list(tree) if head == "*" else [head] if head in tree else []
        for key in keys:
            if rest:
                delete_path(tree[key], rest)
            else:
                del tree[key]
