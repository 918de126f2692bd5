"""`pycompose image ls|inspect|history|import|load|save|tag|rm|prune`, shaped like docker's."""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import time
from datetime import datetime
from typing import IO, Any

from compose.cli.context import Context
from compose.cli.units import human_duration, human_size
from compose.errors import UsageError

# ------------------------------------------------------------------ formatting (docker's)


def epoch(created: str) -> float:
    text = created.replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = re.match(r"\d*", tail)
        frac = digits.group(0) if digits else ""
        text = f"{head}.{frac[:6]}{tail[len(frac):]}" if frac else head + tail[len(frac):]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def since(created: str) -> str:
    t = epoch(created)
    return f"{human_duration(time.time() - t)} ago" if t else "N/A"


def table(rows: list[list[str]], out: IO[str]) -> None:
    """Docker's tabwriter layout: min width 10, padding 3."""
    if not rows:
        return
    widths = [max(10, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(widths[i]) for i, c in enumerate(row[:-1])] + [row[-1]]
        print("".join(cells).rstrip(), file=out)


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def go_template(template: str, value: Any) -> str:
    """The `{{.Field.Sub}}` and `{{json .Field}}` subset of Go templates."""
    def render(m: re.Match[str]) -> str:
        v = value
        for part in [p for p in m.group(2).split(".") if p]:
            if not isinstance(v, dict) or part not in v:
                raise UsageError(f"template: can't evaluate field {part}")
            v = v[part]
        if m.group(1):
            return json.dumps(v)
        if v is None:
            return "<no value>"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + " ".join(str(x) for x in v) + "]"
        if isinstance(v, dict):
            return "map[" + " ".join(f"{k}:{x}" for k, x in v.items()) + "]"
        return str(v)

    return re.sub(r"\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}", render, template)


# ------------------------------------------------------------------ arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="image_cmd", metavar="COMMAND")
    sub.required = True

    ls = sub.add_parser("ls", aliases=["list"], help="List images")
    ls.add_argument("repository", nargs="?")
    ls.add_argument("-a", "--all", action="store_true")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.add_argument("--no-trunc", action="store_true")
    ls.add_argument("--digests", action="store_true")
    ls.add_argument("-f", "--filter", action="append", default=[])
    ls.add_argument("--format", default="table")

    ins = sub.add_parser("inspect", help="Display detailed information on one or more images")
    ins.add_argument("images", nargs="+")
    ins.add_argument("-f", "--format", default="")

    hist = sub.add_parser("history", help="Show the history of an image")
    hist.add_argument("image")
    hist.add_argument("-q", "--quiet", action="store_true")
    hist.add_argument("--no-trunc", action="store_true")
    hist.add_argument("-H", "--human", default="true", choices=["true", "false"])
    hist.add_argument("--format", default="table")

    imp = sub.add_parser("import", help="Import the contents from a tarball to create an image")
    imp.add_argument("file", help="tarball path, or - for stdin")
    imp.add_argument("reference", nargs="?")
    imp.add_argument("-c", "--change", action="append", default=[])
    imp.add_argument("-m", "--message", default="")

    load = sub.add_parser("load", help="Load an image from a tar archive or STDIN")
    load.add_argument("-i", "--input", default="")
    load.add_argument("-q", "--quiet", action="store_true")

    save = sub.add_parser("save", help="Save one or more images to a tar archive")
    save.add_argument("images", nargs="+")
    save.add_argument("-o", "--output", default="")
    save.add_argument("--format", choices=["docker", "oci"], default="docker",
                      help="docker: docker save layout; oci: OCI image layout")

    tag = sub.add_parser("tag", help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    tag.add_argument("source")
    tag.add_argument("target")

    rm = sub.add_parser("rm", aliases=["remove", "rmi"], help="Remove one or more images")
    rm.add_argument("images", nargs="+")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("--no-prune", action="store_true")

    prune = sub.add_parser("prune", help="Remove unused images")
    prune.add_argument("-a", "--all", action="store_true")
    prune.add_argument("-f", "--force", action="store_true")
    prune.add_argument("--filter", action="append", default=[])

    build = sub.add_parser("build", help="Build an image from a Dockerfile")
    build.add_argument("context", help="the build context directory")
    build.add_argument("-t", "--tag", action="append", default=[])
    build.add_argument("-f", "--file", default=None, help="Name of the Dockerfile")
    build.add_argument("--build-arg", action="append", default=[])
    build.add_argument("--target", default=None)
    build.add_argument("--no-cache", action="store_true")
    build.add_argument("--no-cache-filter", action="append", default=[])
    build.add_argument("--pull", action="store_true")
    build.add_argument("--network", default=None)
    build.add_argument("--label", action="append", default=[])
    build.add_argument("-q", "--quiet", action="store_true")
    build.add_argument("--progress", dest="build_progress", default=None,
                       choices=["auto", "tty", "plain", "quiet"])

    from compose.cli.commands._registry import add_registry_parsers

    add_registry_parsers(sub)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.commands import _registry

    name = {"list": "ls", "remove": "rm", "rmi": "rm"}.get(args.image_cmd, args.image_cmd)
    handler = {"ls": _ls, "inspect": _inspect, "history": _history, "import": _import,
               "load": _load, "save": _save, "tag": _tag, "rm": _rm, "prune": _prune,
               "build": _build, "pull": _registry.pull, "push": _registry.push}[name]
    return handler(ctx, args)


# ------------------------------------------------------------------ commands


def _filters(specs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or key not in ("dangling", "reference", "label"):
            raise UsageError(f"invalid filter {spec!r} (dangling=, reference=, label=)")
        if key == "dangling" and value not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter 'dangling={value}'")
        out.setdefault(key, []).append(value)
    return out


def _tag_matches(tag: str, patterns: list[str]) -> bool:
    """Docker's reference filter: `repo` matches any tag of repo, `repo:tag` one tag."""
    for pattern in patterns:
        want_tag = ":" in pattern.rsplit("/", 1)[-1]
        if not fnmatch.fnmatchcase(tag if want_tag else tag.rpartition(":")[0], pattern):
            return False
    return True


def _matches(image: Any, filters: dict[str, list[str]]) -> bool:
    """Image-level filters: dangling and label."""
    dangling = not image.repo_tags
    for value in filters.get("dangling", []):
        if dangling != (value in ("true", "1")):
            return False
    labels = image.config.get("Labels") or {}
    for value in filters.get("label", []):
        key, sep, want = value.partition("=")
        if key not in labels or (sep and labels[key] != want):
            return False
    return True


def _listed(images: list[Any], filters: dict[str, list[str]],
            repository: str | None) -> list[tuple[Any, list[str]]]:
    """(image, its tags to show) after the filters; tags are filtered one by one."""
    patterns = filters.get("reference", []) + ([repository] if repository else [])
    out = []
    for im in images:
        if not _matches(im, filters):
            continue
        tags = [t for t in im.repo_tags if _tag_matches(t, patterns)]
        if patterns and not tags:
            continue
        out.append((im, tags))
    return out


def _ls(ctx: Context, args: argparse.Namespace) -> int:
    listed = _listed(ctx.engine().image_list(), _filters(args.filter), args.repository)
    if args.quiet:
        seen: list[str] = []
        for im, _ in listed:
            ident = im.id if args.no_trunc else short(im.id)
            if ident not in seen:
                seen.append(ident)
                print(ident, file=ctx.stdout)
        return 0
    rows = []
    for im, shown in listed:
        ident = im.id if args.no_trunc else short(im.id)
        tags = [t.rpartition(":") for t in shown] or [("<none>", ":", "<none>")]
        digest = im.repo_digests[0].partition("@")[2] if im.repo_digests else "<none>"
        for repo, _, tag in tags:
            rows.append({"Repository": repo, "Tag": tag, "ID": ident, "Digest": digest,
                         "CreatedSince": since(im.created), "CreatedAt": im.created,
                         "Size": human_size(im.size, 3), "Containers": "N/A"})
    if args.format == "json":
        for row in rows:
            print(json.dumps(row, separators=(",", ":")), file=ctx.stdout)
        return 0
    if args.format not in ("table", ""):
        for row in rows:
            print(go_template(args.format, row), file=ctx.stdout)
        return 0
    head = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + [
        "IMAGE ID", "CREATED", "SIZE"]
    body = [[r["Repository"], r["Tag"]] + ([r["Digest"]] if args.digests else [])
            + [r["ID"], r["CreatedSince"], r["Size"]] for r in rows]
    table([head, *body], ctx.stdout)
    return 0


def _inspect(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import NotFound

    engine = ctx.engine()
    found, missing = [], []
    for ref in args.images:
        try:
            found.append(engine.image_inspect(ref).inspect())
        except NotFound as exc:
            missing.append(str(exc))
    if args.format and args.format != "json":
        for doc in found:
            print(go_template(args.format, doc), file=ctx.stdout)
    else:
        print(json.dumps(found, indent=4), file=ctx.stdout)
    for line in missing:
        print(f"Error: {line}", file=ctx.stderr)
    return 1 if missing else 0


def _history(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.engine().image_history(args.image)
    human = args.human == "true"
    if args.quiet:
        for r in rows:
            print(r["Id"] if args.no_trunc or r["Id"] == "<missing>" else short(r["Id"]),
                  file=ctx.stdout)
        return 0
    out = []
    for r in rows:
        created = datetime.fromtimestamp(r["Created"]).astimezone().isoformat(
            timespec="seconds") if r["Created"] else "N/A"
        out.append({
            "ID": r["Id"] if args.no_trunc or r["Id"] == "<missing>" else short(r["Id"]),
            "CreatedSince": f"{human_duration(time.time() - r['Created'])} ago"
            if human and r["Created"] else created,
            "CreatedAt": created,
            "CreatedBy": r["CreatedBy"] if args.no_trunc else ellipsis(r["CreatedBy"], 45),
            "Size": human_size(r["Size"], 3) if human else str(r["Size"]),
            "Comment": r["Comment"]})
    if args.format == "json":
        for row in out:
            print(json.dumps(row, separators=(",", ":")), file=ctx.stdout)
        return 0
    table([["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
          + [[o["ID"], o["CreatedSince"], o["CreatedBy"], o["Size"], o["Comment"]]
             for o in out], ctx.stdout)
    return 0


def _import(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    source: Any = sys.stdin.buffer if args.file == "-" else args.file
    kwargs: dict[str, Any] = {"message": args.message} if args.message else {}
    image = engine.image_import(source, args.reference, tuple(args.change), **kwargs)
    print(image.id, file=ctx.stdout)
    return 0


def _load(ctx: Context, args: argparse.Namespace) -> int:
    if not args.input and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is empty")
    images = ctx.engine().image_load(args.input or sys.stdin.buffer)
    for image in images:
        if image.repo_tags:
            for tag in image.repo_tags:
                print(f"Loaded image: {tag}", file=ctx.stdout)
        else:
            print(f"Loaded image ID: {image.id}", file=ctx.stdout)
    return 0


def _save(ctx: Context, args: argparse.Namespace) -> int:
    engine: Any = ctx.engine()
    if args.output:
        engine.image_save(args.images, args.output, format=args.format)
        return 0
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or "
                         "redirect")
    ctx.stdout.flush()
    engine.image_save(args.images, sys.stdout.buffer, format=args.format)
    sys.stdout.buffer.flush()
    return 0


def _tag(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine().image_tag(args.source, args.target)
    return 0


def _rm(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.commands._objects import for_each_ref  # it imports this module

    engine = ctx.engine()

    def remove(ref: str) -> None:
        for line in engine.image_remove(ref, force=args.force):
            print(line, file=ctx.stdout)

    return for_each_ref(ctx, args.images, remove)


def confirm(ctx: Context, warning: str) -> bool:
    ctx.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    ctx.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _prune(ctx: Context, args: argparse.Namespace) -> int:
    if args.filter:
        raise UsageError("image prune --filter is not supported by the built-in engine")
    warning = ("WARNING! This will remove all images without at least one container "
               "associated to them." if args.all else
               "WARNING! This will remove all dangling images.")
    if not args.force and not confirm(ctx, warning):
        return 0
    engine: Any = ctx.engine()
    report = getattr(engine, "_image_prune_report", None)
    if report is not None:
        lines, freed = report(args.all)
    else:
        lines, freed = [f"Deleted: {i}" for i in engine.image_prune(all=args.all)], 0
    print_prune(ctx, lines, freed)
    return 0


def print_prune(ctx: Context, lines: list[str], freed: int) -> None:
    if lines:
        print("Deleted Images:", file=ctx.stdout)
        for line in lines:
            kind, _, what = line.partition(": ")
            print(f"{kind.lower()}: {what}", file=ctx.stdout)
        print(file=ctx.stdout)
    print(f"Total reclaimed space: {human_size(freed)}", file=ctx.stdout)


def _build(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.commands.build import image_build

    return image_build(ctx, args)
