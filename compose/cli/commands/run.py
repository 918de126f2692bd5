"""`pycompose run SERVICE [COMMAND...]`: a one-off container of a service
(`project-service-run-<hex>`, labelled oneoff), after bringing its dependencies up.
Without -d our stdin, stdout and stderr are attached to it (a terminal when stdin is one,
unless -T) until it exits, and its exit code becomes ours."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from compose import labels as L
from compose.cli.context import Context
from compose.cli.env_flags import env_pairs
from compose.cli.project import Project, load_project
from compose.errors import UsageError

if TYPE_CHECKING:
    from engine.api import ContainerSpec, Mount, PortBinding


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="Run container in background and print container ID")
    p.add_argument("--rm", action="store_true",
                   help="Automatically remove the container when it exits")
    p.add_argument("-e", "--env", action="append", default=[],
                   help="Set environment variables")
    p.add_argument("-l", "--label", action="append", default=[], help="Add or override a label")
    p.add_argument("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    p.add_argument("-p", "--publish", action="append", default=[],
                   help="Publish a container's port(s) to the host")
    p.add_argument("-P", "--service-ports", action="store_true",
                   help="Run command with all service's ports enabled and mapped to the host")
    p.add_argument("--entrypoint", help="Override the entrypoint of the image")
    p.add_argument("--no-deps", action="store_true", help="Don't start linked services")
    p.add_argument("--name", help="Assign a name to the container")
    p.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true",
                   help="Disable pseudo-TTY allocation (default: auto-detected)")
    p.add_argument("-i", "--interactive", action="store_true", default=True,
                   help="Keep STDIN open even if not attached")
    p.add_argument("-u", "--user", help="Run as specified username or uid")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("--build", action="store_true", help="Build image before starting container")
    p.add_argument("--pull", choices=["always", "missing", "never"],
                   help="Pull image before running")
    p.add_argument("--remove-orphans", action="store_true",
                   help="Remove containers for services not defined in the Compose file")
    p.add_argument("-q", "--quiet", action="store_true", help="Don't print anything to STDOUT")
    p.add_argument("--quiet-pull", action="store_true", help="Pull without printing progress")
    p.add_argument("--use-aliases", action="store_true",
                   help="Use the service's network aliases in the network(s) the container "
                        "connects to")
    p.add_argument("--cap-add", action="append", default=[], help="Add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    p.add_argument("service")
    p.add_argument("command", nargs=argparse.REMAINDER)


def parse_volume(text: str, project: Project) -> Mount:
    from engine.api import Mount

    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 3 or parts[2:] not in ([], ["ro"], ["rw"]):
        raise UsageError(f"invalid volume {text!r}: expected SOURCE:TARGET[:ro]")
    source, target = parts[0], parts[1]
    read_only = parts[2:] == ["ro"]
    if source.startswith((".", "/", "~")):
        base = project.info.working_dir or os.getcwd()
        return Mount("bind", target, os.path.abspath(os.path.join(base,
                                                                 os.path.expanduser(source))),
                     read_only)
    from compose.convert import volume_name

    data = project.data or {"name": project.name}
    return Mount("volume", target, volume_name(data, source), read_only)


def parse_publish(text: str) -> PortBinding:
    from engine.api import PortBinding

    spec, _, proto = text.partition("/")
    parts = spec.rsplit(":", 2)
    if not parts[-1].isdigit():
        raise UsageError(f"invalid port {text!r}")
    host_ip = parts[0] if len(parts) == 3 else ""
    host_port = parts[-2] if len(parts) >= 2 else ""
    return PortBinding(int(parts[-1]), proto or "tcp", host_ip, host_port)  # type: ignore[arg-type]


def one_off_spec(args: argparse.Namespace, project: Project, name: str) -> ContainerSpec:
    from compose.convert import container_spec

    assert project.data is not None
    spec = container_spec(project.info, project.data, args.service, 1, name=name, oneoff=True)
    labels = dict(spec.labels)
    labels[L.SLUG] = name.rsplit("-", 1)[-1]
    for label in args.label:
        key, _, value = label.partition("=")
        labels[key] = value
    env = dict(spec.env)
    env.update(env_pairs(args.env))
    tty = not args.no_tty and not args.detach and sys.stdin.isatty()
    return replace(
        spec,
        command=tuple(args.command) if args.command else spec.command,
        entrypoint=tuple(shlex.split(args.entrypoint)) if args.entrypoint is not None
        else spec.entrypoint,
        env=tuple(env.items()), labels=tuple(labels.items()),
        user=args.user or spec.user, working_dir=args.workdir or spec.working_dir,
        tty=tty or spec.tty and not args.no_tty, stdin_open=args.interactive and not args.detach,
        mounts=spec.mounts + tuple(parse_volume(v, project) for v in args.volume),
        ports=(spec.ports if args.service_ports else ()) +
        tuple(parse_publish(p) for p in args.publish),
        cap_add=spec.cap_add + tuple(args.cap_add), cap_drop=spec.cap_drop + tuple(args.cap_drop),
        networks=spec.networks if args.use_aliases else tuple(
            replace(ep, aliases=()) for ep in spec.networks),
        auto_remove=args.rm and args.detach)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from compose.cli.commands.up import converge
    from compose.plan import UpOptions

    project = load_project(ctx, (args.service,), need_model=True)
    project.check([args.service])
    name = args.name or f"{project.name}-{args.service}-run-{secrets.token_hex(6)}"
    options = UpOptions(services=(args.service,), no_deps=args.no_deps,
                        build="always" if args.build else "auto", pull=args.pull,
                        remove_orphans=args.remove_orphans, run=True,
                        inactive=project.inactive)
    spec = one_off_spec(args, project, name)  # bad flags fail before anything starts
    if converge(ctx, project, options, timeout=None, title="Creating") is None:
        ctx.stdout.write(f"run {args.service} as {name}\n")
        return 0
    engine = ctx.engine()
    container = engine.container_create(spec)
    try:
        engine.container_start(container.id)
    except BaseException:
        if args.rm:
            engine.container_remove(container.id, force=True)
        raise
    if args.detach:
        if not args.quiet:
            ctx.stdout.write(f"{name}\n")
        return 0
    return attached(ctx, container.id, remove=args.rm, interactive=spec.stdin_open,
                    tty=spec.tty)


def attached(ctx: Context, container_id: str, *, remove: bool, interactive: bool,
             tty: bool) -> int:
    """Relay our stdio to the one-off until it exits; its exit code (130 on Ctrl-C
    without a terminal; with one, Ctrl-C is a byte for the container's terminal)."""
    engine = ctx.engine()
    try:
        ctx.stdout.flush()
        return engine.container_attach(container_id, sys.stdin if interactive else None,
                                       ctx.stdout, ctx.stderr, tty)
    except KeyboardInterrupt:
        engine.container_stop(container_id)
        return 130
    finally:
        if remove:
            from engine.api import NotFound

            with contextlib.suppress(NotFound):
                engine.container_remove(container_id, force=True)
