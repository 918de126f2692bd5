"""'Did you mean ...?' hints: the closest known name to a misspelt one."""

from __future__ import annotations

from collections.abc import Iterable


def _canonical(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def did_you_mean(word: str, candidates: Iterable[object]) -> str | None:
    """The candidate a user most likely meant by `word`, or None when nothing is close.

    Spelling variants (case, `-` for `_`, a plural `s`) win over edit distance.
    """
    names = [c for c in candidates if isinstance(c, str) and c != word]
    if not names or not word:
        return None
    wanted = _canonical(word)
    for name in names:
        canon = _canonical(name)
        if canon in (wanted, wanted.rstrip("s"), wanted + "s"):
            return name
    import difflib

    by_canon = {_canonical(n): n for n in names}
    close = difflib.get_close_matches(wanted, list(by_canon), n=1, cutoff=0.75)
    return by_canon[close[0]] if close else None
