"""`pycompose viz`: the service dependency graph as Graphviz DOT or Mermaid."""

from __future__ import annotations

import argparse

from compose.cli.context import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["dot", "mermaid"], default="dot",
                   help="Output format (default: dot, as 'docker compose alpha viz')")
    p.add_argument("--image", action="store_true",
                   help="Include service's image name in output graph")
    p.add_argument("--ports", action="store_true",
                   help="Include service's exposed ports in output graph")
    p.add_argument("--networks", action="store_true",
                   help="Include service's attached networks in output graph")
    p.add_argument("--indentation-size", type=int, default=1,
                   help="Number of tabs or spaces to use for indentation")
    p.add_argument("--spaces", action="store_true",
                   help="Indent with spaces instead of tabs")


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.errors import UsageError
    from compose.graph import ServiceGraph

    if args.indentation_size < 0:
        raise UsageError("--indentation-size must not be negative")
    project = ctx.load()
    graph = ServiceGraph(project.data.get("services") or {})
    if args.format == "mermaid":
        text = graph.to_mermaid(image=args.image, ports=args.ports, networks=args.networks)
    else:
        indent = (" " if args.spaces else "\t") * args.indentation_size
        text = graph.to_dot(project.name, image=args.image, ports=args.ports,
                            networks=args.networks, indent=indent)
    ctx.stdout.write(text)
    return 0
