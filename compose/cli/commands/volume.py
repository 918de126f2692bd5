"""`pycompose volume ls|inspect|create|rm|prune`, in docker's shapes."""

from __future__ import annotations

import argparse
import secrets
from typing import TYPE_CHECKING, Any

from compose.cli.commands._objects import for_each_ref, inspect_each, print_records
from compose.cli.commands.image import confirm
from compose.cli.commands.network import labels_match, pairs, parse_filters
from compose.cli.context import Context

if TYPE_CHECKING:
    from engine.api import Engine, Volume

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="volume_cmd", metavar="COMMAND")
    sub.required = True

    ls = sub.add_parser("ls", aliases=["list"], help="List volumes")
    ls.add_argument("-f", "--filter", action="append", default=[],
                    help="Filter output (label=K[=V], name=, driver=, dangling=true|false)")
    ls.add_argument("--format", help="table, json or a {{.Field}} template")
    ls.add_argument("-q", "--quiet", action="store_true")

    ins = sub.add_parser("inspect", help="Display detailed information on volumes")
    ins.add_argument("-f", "--format")
    ins.add_argument("volumes", nargs="+", metavar="VOLUME")

    cr = sub.add_parser("create", help="Create a volume")
    cr.add_argument("-d", "--driver", default="local")
    cr.add_argument("--label", action="append", default=[])
    cr.add_argument("-o", "--opt", action="append", default=[])
    cr.add_argument("name", nargs="?", metavar="VOLUME")

    rm = sub.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("volumes", nargs="+", metavar="VOLUME")

    pr = sub.add_parser("prune", help="Remove unused local volumes")
    pr.add_argument("-a", "--all", action="store_true",
                    help="Remove all unused volumes, not just anonymous ones")
    pr.add_argument("-f", "--force", action="store_true")


def run(ctx: Context, args: argparse.Namespace) -> int:
    action = {"ls": _ls, "list": _ls, "inspect": _inspect, "create": _create, "rm": _rm,
              "remove": _rm, "prune": _prune}[args.volume_cmd]
    return action(ctx, args)


def volume_json(vol: Volume) -> dict[str, Any]:
    return {"CreatedAt": vol.created, "Driver": vol.driver, "Labels": dict(vol.labels) or None,
            "Mountpoint": vol.mountpoint, "Name": vol.name,
            "Options": dict(vol.options) or None, "Scope": "local"}


def _used_volumes(engine: Engine) -> set[str]:
    return {m.source for c in engine.container_list(all=True) for m in c.spec.mounts
            if m.type == "volume"}


def _row(vol: Volume) -> dict[str, Any]:
    return {"Name": vol.name, "Driver": vol.driver, "Scope": "local",
            "Mountpoint": vol.mountpoint, "Labels": ",".join(f"{k}={v}" for k, v in vol.labels)}


def _ls(ctx: Context, args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter, ("label", "name", "driver", "dangling"))
    engine = ctx.engine()
    used = _used_volumes(engine) if "dangling" in filters else set()
    vols = []
    for vol in engine.volume_list():
        if not labels_match(dict(vol.labels), filters.get("label", [])):
            continue
        if "name" in filters and not any(f in vol.name for f in filters["name"]):
            continue
        if "driver" in filters and vol.driver not in filters["driver"]:
            continue
        if "dangling" in filters:
            dangling = filters["dangling"][-1].lower() in ("true", "1")
            if (vol.name not in used) != dangling:
                continue
        vols.append(vol)
    if args.quiet:
        for vol in vols:
            print(vol.name, file=ctx.stdout)
    else:
        print_records(ctx, [_row(vol) for vol in vols], args.format,
                      (("DRIVER", "Driver"), ("VOLUME NAME", "Name")))
    return 0


def _inspect(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    return inspect_each(ctx, args.volumes,
                        lambda name: volume_json(engine.volume_inspect(name)), args.format)


def _create(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import VolumeSpec

    name = args.name or secrets.token_hex(32)
    vol = ctx.engine().volume_create(VolumeSpec(
        name=name, driver=args.driver, driver_opts=pairs(args.opt, "--opt"),
        labels=pairs(args.label, "--label")))
    print(vol.name, file=ctx.stdout)
    return 0


def _rm(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()

    def remove(name: str) -> None:
        engine.volume_remove(name, force=args.force)
        print(name, file=ctx.stdout)

    return for_each_ref(ctx, args.volumes, remove)


def _prune(ctx: Context, args: argparse.Namespace) -> int:
    warning = ("WARNING! This will remove all local volumes not used by at least one "
               "container." if args.all else
               "WARNING! This will remove anonymous local volumes not used by at least one "
               "container.")
    if not args.force and not confirm(ctx, warning):
        return 0
    removed = ctx.engine().volume_prune(all=args.all)
    if removed:
        print("Deleted Volumes:", file=ctx.stdout)
        for name in removed:
            print(name, file=ctx.stdout)
        print(file=ctx.stdout)
    print("Total reclaimed space: 0B", file=ctx.stdout)
    return 0
