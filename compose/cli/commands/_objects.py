"""Docker-shaped output shared by the object commands (`network`, `volume`, `image`,
`container`): `inspect` documents, `ls` records as JSON lines, a `{{.Field}}` template or
a table, and commands that act on several refs in turn."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from compose.cli.commands.image import go_template, table
from compose.cli.context import Context


def print_documents(ctx: Context, docs: list[dict[str, Any]], fmt: str | None) -> None:
    """`inspect` output: each document through the template, else one indented JSON list."""
    if fmt:
        for doc in docs:
            print(go_template(fmt, doc), file=ctx.stdout)
    else:
        print(json.dumps(docs, indent=4), file=ctx.stdout)


def for_each_ref(ctx: Context, refs: list[str], action: Callable[[str], None]) -> int:
    """Run `action` on each ref in turn; an engine error goes to stderr as the daemon's
    and the next ref is tried. 1 if any failed."""
    from engine.api import EngineError

    failed = False
    for ref in refs:
        try:
            action(ref)
        except EngineError as exc:
            print(f"Error response from daemon: {exc}", file=ctx.stderr)
            failed = True
    return 1 if failed else 0


def inspect_each(ctx: Context, refs: list[str], fetch: Callable[[str], dict[str, Any]],
                 fmt: str | None) -> int:
    """Inspect each ref (errors on stderr, as the daemon's), print what was found;
    1 if any failed."""
    found: list[dict[str, Any]] = []
    code = for_each_ref(ctx, refs, lambda ref: found.append(fetch(ref)))
    print_documents(ctx, found, fmt)
    return code


def print_records(ctx: Context, records: list[dict[str, Any]], fmt: str | None,
                  columns: Sequence[tuple[str, str]]) -> None:
    """`ls` output: JSON lines for `json`, a template for any other format but `table`,
    else a table of `columns` (header, record key)."""
    if fmt == "json":
        for record in records:
            print(json.dumps(record), file=ctx.stdout)
    elif fmt and fmt != "table":
        for record in records:
            print(go_template(fmt, record), file=ctx.stdout)
    else:
        rows = [[header for header, _ in columns]]
        rows += [[str(record[key]) for _, key in columns] for record in records]
        table(rows, ctx.stdout)
