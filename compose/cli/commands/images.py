"""`pycompose images`: the images used by the project's containers."""

from __future__ import annotations

import argparse
import json

from compose.cli.commands.ps import since, table
from compose.cli.context import Context
from compose.cli.project import containers, load_project
from compose.cli.units import human_duration
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--format", default="table", help="Format the output: table or json")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")


def _size(n: int) -> str:
    """Docker's HumanSize: 3 significant digits, decimal units."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


def run(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import NotFound

    if args.format not in ("table", "json"):
        raise UsageError(f"unsupported format {args.format!r}: use table or json")
    project = load_project(ctx)
    project.check(args.services)
    engine = ctx.engine()
    rows: list[list[str]] = []
    records: list[dict[str, object]] = []
    for c in sorted(containers(engine, project.name, args.services, oneoff=None),
                    key=lambda c: c.name):
        try:
            image = engine.image_inspect(c.image_id)
            tag = image.repo_tags[0] if image.repo_tags else c.image
            size, created = image.size, image.created
        except NotFound:
            tag, size, created = c.image, 0, ""
        repo, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] \
            else (tag, "", "latest")
        short = c.image_id.removeprefix("sha256:")[:12]
        rows.append([c.name, repo, version, short, _size(size)])
        records.append({"ContainerName": c.name, "Repository": repo, "Tag": version,
                        "ID": c.image_id, "Size": size, "Created": created,
                        "LastTagTime": created and human_duration(since(created))})
    if args.quiet:
        ctx.stdout.write("".join(f"{r[3]}\n" for r in rows))
    elif args.format == "json":
        ctx.stdout.write(json.dumps(records, indent=2) + "\n")
    else:
        ctx.stdout.write(table(rows, ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]))
    return 0
