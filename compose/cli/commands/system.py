"""`pycompose system info|df|prune|events`: the built-in engine as a whole, shaped like docker's."""

from __future__ import annotations

import argparse
import json
from typing import Any

from compose.cli.commands.image import confirm, human_size, print_prune, short, since, table
from compose.cli.context import Context
from compose.cli.units import bytes_size


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="system_cmd", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser("info", help="Display system-wide information")
    info.add_argument("-f", "--format", default="")
    df = sub.add_parser("df", help="Show disk usage")
    df.add_argument("-v", "--verbose", action="store_true")
    df.add_argument("--format", default="")
    prune = sub.add_parser("prune", help="Remove unused data")
    prune.add_argument("-a", "--all", action="store_true")
    prune.add_argument("-f", "--force", action="store_true")
    prune.add_argument("--volumes", action="store_true")
    from compose.cli.commands import system_events

    system_events.add_arguments(sub.add_parser("events", help="Get real time events from "
                                                              "the engine"))


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.system_cmd == "events":
        from compose.cli.commands import system_events

        return system_events.run(ctx, args)
    return {"info": _info, "df": _df, "prune": _prune}[args.system_cmd](ctx, args)


def _info(ctx: Context, args: argparse.Namespace) -> int:
    info = ctx.engine().info()
    if args.format == "json":
        print(json.dumps(info), file=ctx.stdout)
        return 0
    if args.format:
        from compose.cli.commands.image import go_template

        print(go_template(args.format, info), file=ctx.stdout)
        return 0
    lines = [
        "Server:",
        f" Containers: {info['Containers']}",
        f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}",
        f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}",
        f" Server Version: {info['ServerVersion']} (pycompose built-in engine)",
        f" Storage Driver: {info['Driver']}",
        f" Logging Driver: {info['LoggingDriver']}",
        f" Cgroup Driver: {info['CgroupDriver']}",
        f" Cgroup Version: {info['CgroupVersion']}",
        f" Default Runtime: {info['DefaultRuntime']}",
        f" Kernel Version: {info['KernelVersion']}",
        f" Operating System: {info['OperatingSystem']}",
        f" OSType: {info['OSType']}",
        f" Architecture: {info['Architecture']}",
        f" CPUs: {info['NCPU']}",
        f" Total Memory: {bytes_size(info['MemTotal'])}",
        f" Name: {info['Name']}",
        f" Docker Root Dir: {info['DockerRootDir']}",
    ]
    print("\n".join(lines), file=ctx.stdout)
    return 0


def _reclaim(kind: dict[str, Any]) -> str:
    text = human_size(kind["reclaimable"])
    if kind["size"]:
        text += f" ({int(100 * kind['reclaimable'] / kind['size'])}%)"
    return text


def _df(ctx: Context, args: argparse.Namespace) -> int:
    engine: Any = ctx.engine()
    usage = engine._system_df()
    kinds = [("Images", "images"), ("Containers", "containers"),
             ("Local Volumes", "volumes"), ("Build Cache", "build_cache")]
    if args.format == "json":
        for label, key in kinds:
            k = usage[key]
            print(json.dumps({"Type": label, "TotalCount": str(k["total"]),
                              "Active": str(k["active"]), "Size": human_size(k["size"]),
                              "Reclaimable": _reclaim(k)}, separators=(",", ":")),
                  file=ctx.stdout)
        return 0
    if args.verbose:
        return _df_verbose(ctx, usage)
    rows = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]]
    for label, key in kinds:
        k = usage[key]
        rows.append([label, str(k["total"]), str(k["active"]), human_size(k["size"]),
                     _reclaim(k)])
    table(rows, ctx.stdout)
    return 0


def _df_verbose(ctx: Context, usage: dict[str, Any]) -> int:
    print("Images space usage:\n", file=ctx.stdout)
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "CONTAINERS"]]
    for im in usage["images"]["rows"]:
        for tag in im["tags"] or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append([repo, t, short(im["id"]), since(im["created"]),
                         human_size(im["size"]), str(im["containers"])])
    table(rows, ctx.stdout)
    print("\nContainers space usage:\n", file=ctx.stdout)
    rows = [["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"]]
    for c in usage["containers"]["rows"]:
        rows.append([c["id"][:12], c["image"], human_size(c["size"]), c["status"], c["name"]])
    table(rows, ctx.stdout)
    print("\nLocal Volumes space usage:\n", file=ctx.stdout)
    rows = [["VOLUME NAME", "LINKS", "SIZE"]]
    for v in usage["volumes"]["rows"]:
        rows.append([v["name"], str(v["links"]), human_size(v["size"])])
    table(rows, ctx.stdout)
    return 0


def _prune(ctx: Context, args: argparse.Namespace) -> int:
    items = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them"
                 if args.all else "all dangling images")
    warning = "WARNING! This will remove:\n" + "\n".join(f"  - {i}" for i in items)
    if not args.force and not confirm(ctx, warning):
        return 0
    engine: Any = ctx.engine()
    report = engine._system_prune(all=args.all, volumes=args.volumes)
    for title, key in (("Deleted Containers:", "containers"), ("Deleted Networks:", "networks"),
                       ("Deleted Volumes:", "volumes")):
        if report[key]:
            print(title, file=ctx.stdout)
            for item in report[key]:
                print(item, file=ctx.stdout)
            print(file=ctx.stdout)
    print_prune(ctx, report["images"], report["reclaimed"])
    return 0
