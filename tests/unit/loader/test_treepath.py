"""Rule lookup by key path: the indexed lookups give what a plain first-match scan gives."""

from __future__ import annotations

import random
from typing import Any

from compose.loader import canonical, defaults, merge, paths
from compose.loader.interpolate import _CASTS, cast_for
from compose.loader.treepath import TreePath, find_rule

TABLES: list[dict[tuple[str, ...], Any]] = [
    canonical.TRANSFORMS, defaults.DEFAULTS, merge.MERGE_RULES, merge.UNIQUE_KEYS, paths.RULES,
    {("a", "*"): "a*", ("*", "b"): "*b", ("*", "*"): "**", ("a", "b", "*"): "ab*",
     ("*",): "*"},
]


def first_match(path: TreePath, rules: dict[tuple[str, ...], Any]) -> Any:
    for pat, rule in rules.items():
        if len(pat) == len(path) and all(p == "*" or p == part
                                         for p, part in zip(pat, path, strict=True)):
            return rule
    return None


def first_cast(path: TreePath) -> str | None:
    for pat, kind in _CASTS.items():
        if len(pat) == len(path) and all(
                isinstance(part, int) if p == "[]" else p in ("*", part)
                for p, part in zip(pat, path, strict=True)):
            return kind
    return None


def random_paths(patterns: list[tuple[str, ...]], rng: random.Random) -> list[TreePath]:
    words: list[str | int] = sorted({p for pat in patterns for p in pat if p not in "*[]"})
    words += ["zz", 0, 1]
    found: list[TreePath] = []
    for pat in patterns:  # near misses of every pattern
        for _ in range(20):
            found.append(tuple(rng.choice(words) if p in ("*", "[]") or rng.random() < 0.2
                               else p for p in pat))
    for _ in range(1000):
        found.append(tuple(rng.choice(words) for _ in range(rng.randint(0, 6))))
    return found


def test_find_rule_is_the_first_written_pattern_that_matches() -> None:
    rng = random.Random(7)
    for rules in TABLES:
        for path in random_paths(list(rules), rng):
            assert find_rule(path, rules) is first_match(path, rules), path
    assert find_rule(("a", "b"), TABLES[-1]) == "a*"
    assert find_rule(("z", "b"), TABLES[-1]) == "*b"
    assert find_rule(("a", 1), TABLES[-1]) == "a*"
    assert find_rule(("a", "b", "c", "d"), TABLES[-1]) is None


def test_cast_for_matches_a_plain_scan() -> None:
    rng = random.Random(11)
    for path in random_paths(list(_CASTS), rng):
        assert cast_for(path) == first_cast(path), path
    assert cast_for(("services", "web", "ports", 0, "target")) == "int"
    assert cast_for(("services", "web", "ports", "x", "target")) is None
    assert cast_for(("services", "web", "ulimits", "nofile")) == "int"
