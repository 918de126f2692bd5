"""`pycompose network ls|inspect|create|rm|prune|connect|disconnect`, in docker's shapes.

Commands that take several networks act on each in turn, print each reference on
success and the error on stderr otherwise, and exit 1 if any failed (as docker does).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from compose.cli.commands._objects import for_each_ref, inspect_each, print_records
from compose.cli.commands.image import confirm
from compose.cli.context import Context
from compose.errors import UsageError

if TYPE_CHECKING:
    from engine.api import Engine, Network


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="network_cmd", metavar="COMMAND")
    sub.required = True

    ls = sub.add_parser("ls", aliases=["list"], help="List networks")
    ls.add_argument("-f", "--filter", action="append", default=[],
                    help="Filter output (label=K[=V], name=, id=, driver=)")
    ls.add_argument("--format", help="table, json or a {{.Field}} template")
    ls.add_argument("--no-trunc", action="store_true")
    ls.add_argument("-q", "--quiet", action="store_true")

    ins = sub.add_parser("inspect", help="Display detailed information on networks")
    ins.add_argument("-f", "--format")
    ins.add_argument("networks", nargs="+", metavar="NETWORK")

    cr = sub.add_parser("create", help="Create a network")
    cr.add_argument("-d", "--driver", default="bridge")
    cr.add_argument("--subnet", action="append", default=[])
    cr.add_argument("--gateway", action="append", default=[])
    cr.add_argument("--ip-range", action="append", default=[])
    cr.add_argument("--aux-address", action="append", default=[], help="NAME=IP")
    cr.add_argument("--internal", action="store_true")
    cr.add_argument("--attachable", action="store_true")
    cr.add_argument("--ipv6", action="store_true")
    cr.add_argument("--label", action="append", default=[])
    cr.add_argument("-o", "--opt", action="append", default=[])
    cr.add_argument("name", metavar="NETWORK")

    rm = sub.add_parser("rm", aliases=["remove"], help="Remove one or more networks")
    rm.add_argument("-f", "--force", action="store_true",
                    help="Do not error if the network does not exist")
    rm.add_argument("networks", nargs="+", metavar="NETWORK")

    pr = sub.add_parser("prune", help="Remove all unused networks")
    pr.add_argument("-f", "--force", action="store_true")

    co = sub.add_parser("connect", help="Connect a container to a network")
    co.add_argument("--alias", action="append", default=[])
    co.add_argument("--ip")
    co.add_argument("network", metavar="NETWORK")
    co.add_argument("container", metavar="CONTAINER")

    dc = sub.add_parser("disconnect", help="Disconnect a container from a network")
    dc.add_argument("-f", "--force", action="store_true")
    dc.add_argument("network", metavar="NETWORK")
    dc.add_argument("container", metavar="CONTAINER")


def run(ctx: Context, args: argparse.Namespace) -> int:
    action = {"ls": _ls, "list": _ls, "inspect": _inspect, "create": _create, "rm": _rm,
              "remove": _rm, "prune": _prune, "connect": _connect,
              "disconnect": _disconnect}[args.network_cmd]
    return action(ctx, args)


def pairs(items: list[str], what: str) -> tuple[tuple[str, str], ...]:
    """`K=V` options (a bare `K` means an empty value, as docker's --label)."""
    out = []
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return tuple(out)


def parse_filters(specs: list[str], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or key not in allowed:
            raise UsageError(f"invalid filter {spec!r}: expected one of "
                             f"{', '.join(k + '=' for k in allowed)}")
        filters.setdefault(key, []).append(value)
    return filters


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


# ------------------------------------------------------------------ docker's inspect shape


def network_json(engine: Engine, net: Network) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    for cid in net.containers:
        try:
            c = engine.container_inspect(cid)
        except Exception:  # removed meanwhile, or not inspectable: not listed, as docker
            continue
        for att in c.networks:
            if att.network_id == net.id:
                containers[cid] = {"Name": c.name, "EndpointID": "",
                                   "MacAddress": att.mac_address,
                                   "IPv4Address": f"{att.ip_address}/{att.prefix_len}",
                                   "IPv6Address": ""}
    return {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
        "Driver": net.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        "Options": dict(net.options), "Labels": dict(net.labels),
    }


def _row(net: Network, no_trunc: bool) -> dict[str, Any]:
    return {"ID": net.id if no_trunc else net.id[:12], "Name": net.name, "Driver": net.driver,
            "Scope": "local", "IPv6": "false", "Internal": str(net.internal).lower(),
            "CreatedAt": net.created,
            "Labels": ",".join(f"{k}={v}" for k, v in net.labels)}


# ------------------------------------------------------------------ commands


def _ls(ctx: Context, args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter, ("label", "name", "id", "driver"))
    nets = []
    for net in ctx.engine().network_list():
        if not labels_match(dict(net.labels), filters.get("label", [])):
            continue
        if "name" in filters and not any(f in net.name for f in filters["name"]):
            continue
        if "id" in filters and not any(net.id.startswith(f) for f in filters["id"]):
            continue
        if "driver" in filters and net.driver not in filters["driver"]:
            continue
        nets.append(net)
    nets.sort(key=lambda n: n.name)
    if args.quiet:
        for net in nets:
            print(net.id if args.no_trunc else net.id[:12], file=ctx.stdout)
        return 0
    print_records(ctx, [_row(net, args.no_trunc) for net in nets], args.format,
                  (("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"),
                   ("SCOPE", "Scope")))
    return 0


def _inspect(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    return inspect_each(ctx, args.networks,
                        lambda ref: network_json(engine, engine.network_inspect(ref)),
                        args.format)


def _create(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import IPAMConfig, NetworkSpec

    if len(args.subnet) > 1:
        raise UsageError("only one --subnet (IPv4) is supported by the built-in engine")
    if (args.gateway or args.ip_range or args.aux_address) and not args.subnet:
        raise UsageError("--gateway, --ip-range and --aux-address need a --subnet")
    ipam: tuple[IPAMConfig, ...] = ()
    if args.subnet:
        ipam = (IPAMConfig(subnet=args.subnet[0],
                           gateway=args.gateway[0] if args.gateway else None,
                           ip_range=args.ip_range[0] if args.ip_range else None,
                           aux_addresses=pairs(args.aux_address, "--aux-address")),)
    net = ctx.engine().network_create(NetworkSpec(
        name=args.name, driver=args.driver, driver_opts=pairs(args.opt, "--opt"), ipam=ipam,
        internal=args.internal, attachable=args.attachable, enable_ipv6=args.ipv6,
        labels=pairs(args.label, "--label")))
    print(net.id, file=ctx.stdout)
    return 0


def _rm(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import NotFound

    engine = ctx.engine()

    def remove(ref: str) -> None:
        try:
            engine.network_remove(ref)
        except NotFound:
            if args.force:
                return
            raise
        print(ref, file=ctx.stdout)

    return for_each_ref(ctx, args.networks, remove)


def _prune(ctx: Context, args: argparse.Namespace) -> int:
    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not args.force and not confirm(ctx, warning):
        return 0
    removed = ctx.engine().network_prune()
    if removed:
        print("Deleted Networks:", file=ctx.stdout)
        for name in removed:
            print(name, file=ctx.stdout)
    return 0


def _connect(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import EndpointSpec

    ctx.engine().network_connect(args.network, args.container, EndpointSpec(
        network=args.network, aliases=tuple(args.alias), ipv4_address=args.ip))
    return 0


def _disconnect(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine().network_disconnect(args.network, args.container, force=args.force)
    return 0
