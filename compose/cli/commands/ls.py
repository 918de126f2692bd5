"""`pycompose ls`: the projects on the engine, from the labels of their containers."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from compose import labels as L
from compose.cli.commands.ps import table
from compose.cli.context import Context
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all stopped Compose projects")
    p.add_argument("--filter", action="append", default=[], help="Filter output based on "
                   "conditions provided (name=...)")
    p.add_argument("--format", default="table", help="Format the output: table or json")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display project names")


def run(ctx: Context, args: argparse.Namespace) -> int:
    names: list[str] = []
    for f in args.filter:
        key, _, value = f.partition("=")
        if key != "name":
            raise UsageError(f"invalid filter {f!r}: only name=<project> is supported")
        names.append(value)
    if args.format not in ("table", "json"):
        raise UsageError(f"unsupported format {args.format!r}: use table or json")
    states: dict[str, Counter[str]] = {}
    files: dict[str, str] = {}
    for c in ctx.engine().container_list(all=True, labels={L.PROJECT: None}):
        project = c.labels[L.PROJECT]
        states.setdefault(project, Counter())[c.state.status] += 1
        files.setdefault(project, c.labels.get(L.CONFIG_FILES, ""))
    rows = []
    for project in sorted(states):
        if names and not any(n in project for n in names):
            continue
        if not args.all and not states[project]["running"]:
            continue
        status = ", ".join(f"{s}({n})" for s, n in sorted(states[project].items()))
        rows.append([project, status, files[project]])
    if args.quiet:
        ctx.stdout.write("".join(f"{r[0]}\n" for r in rows))
    elif args.format == "json":
        ctx.stdout.write(json.dumps([{"Name": r[0], "Status": r[1], "ConfigFiles": r[2]}
                                     for r in rows]) + "\n")
    else:
        ctx.stdout.write(table(rows, ["NAME", "STATUS", "CONFIG FILES"]))
    return 0
