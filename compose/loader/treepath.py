"""Key paths into plain trees and the `*` patterns the phases use to pick rules."""

from __future__ import annotations

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


# rule tables are module-level constants: each is indexed once, by pattern length, with
# the literal parts of each pattern as (position, text) pairs
_Index = dict[int, list[tuple[tuple[tuple[int, str], ...], Any]]]
_INDEXES: dict[int, tuple[dict[Any, Any], _Index]] = {}


def _index(rules: dict[tuple[str, ...], Any]) -> _Index:
    cached = _INDEXES.get(id(rules))
    if cached is None or cached[0] is not rules:
        index: _Index = {}
        for pat, rule in rules.items():
            literals = tuple((i, p) for i, p in enumerate(pat) if p != "*")
            index.setdefault(len(pat), []).append((literals, rule))
        cached = (rules, index)
        _INDEXES[id(rules)] = cached
    return cached[1]


def find_rule(path: TreePath, rules: dict[tuple[str, ...], Any]) -> Any:
    """The rule whose pattern matches `path`, or None."""
    for literals, rule in _index(rules).get(len(path), ()):
        for i, text in literals:
            if path[i] != text:
                break
        else:
            return rule
    return None


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
