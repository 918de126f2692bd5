"""The installed pycompose version, found without importing importlib.metadata (which
costs tens of milliseconds per command): the `Version:` line of our dist-info on sys.path,
else importlib.metadata's answer, else "0.0.0"."""

from __future__ import annotations

import functools
import os
import sys

DIST = "pycompose"


@functools.cache
def version() -> str:
    prefix = f"{DIST}-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(".dist-info"):
                found = _metadata_version(os.path.join(entry, name, "METADATA"))
                if found:
                    return found
    return _slow_version()


def _metadata_version(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip() or None
                if not line.strip():  # the headers end at the first blank line
                    return None
    except OSError:
        return None
    return None


def _slow_version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DIST)
    except PackageNotFoundError:
        return "0.0.0"
