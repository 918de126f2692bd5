"""`-e K=V`-style flags (`--env`, `--env-file`, `--build-arg`) as (key, value) pairs."""

from __future__ import annotations

import os
from collections.abc import Iterable

from compose.errors import UsageError


def pass_through_pairs(items: Iterable[str], invalid: str) -> tuple[tuple[str, str], ...]:
    """`K=V` sets; a bare `K` takes its value from our environment (skipped if unset).
    An empty key is a UsageError: `invalid` formatted with the item's repr."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(invalid.format(repr(item)))
        if sep:
            pairs.append((key, value))
        elif key in os.environ:
            pairs.append((key, os.environ[key]))
    return tuple(pairs)


def env_pairs(values: list[str], files: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """`-e` values after the lines of each `--env-file` (blank and `#` lines skipped)."""
    for path in files:
        try:
            with open(path) as f:
                lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except OSError as exc:
            raise UsageError(f"open {path}: {exc.strerror}") from None
        values = lines + values
    return pass_through_pairs(values, "invalid environment variable {}")
