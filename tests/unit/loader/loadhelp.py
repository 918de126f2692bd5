"""Write a small project into a directory and load it in-process (for loader tests)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from compose.loader import LoadedProject, LoadOptions, load


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def load_project(root: Path, files: dict[str, str], *args: str,
                 env: dict[str, str] | None = None, **options: Any) -> LoadedProject:
    """`args` are the -f files (default discovery when empty); project name `t`."""
    write(root, files)
    opts = {"project_name": "t", "workdir": str(root),
            "environ": {"HOME": "/home/u", **(env or {})}, "files": tuple(args)}
    opts.update(options)
    return load(LoadOptions(**opts))


def service(root: Path, files: dict[str, str], name: str, *args: str,
            **options: Any) -> dict[str, Any]:
    loaded = load_project(root, files, *args, **options)
    result: dict[str, Any] = loaded.data["services"][name]
    return result
