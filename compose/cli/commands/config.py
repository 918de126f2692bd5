"""`pycompose config`: parse, resolve and render the project in canonical form."""

from __future__ import annotations

import argparse
import os
from typing import Any

from compose.cli.context import Context
from compose.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("--format", choices=["yaml", "json"], default=None,
                   help="Format the output. Values: [yaml | json]")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Only validate the configuration, don't print anything")
    p.add_argument("--services", action="store_true", dest="list_services",
                   help="Print the service names, one per line.")
    p.add_argument("--volumes", action="store_true", help="Print the volume names, one per line.")
    p.add_argument("--networks", action="store_true",
                   help="Print the network names, one per line.")
    p.add_argument("--profiles", action="store_true",
                   help="Print the profile names, one per line.")
    p.add_argument("--images", action="store_true", help="Print the image names, one per line.")
    p.add_argument("--models", action="store_true", help="Print the model names, one per line.")
    p.add_argument("--hash", help="Print the service config hash, one per line.")
    p.add_argument("--environment", action="store_true",
                   help="Print environment used for interpolation.")
    p.add_argument("--variables", action="store_true",
                   help="Print model variables and default values.")
    p.add_argument("--no-interpolate", action="store_true",
                   help="Don't interpolate environment variables")
    p.add_argument("--no-normalize", action="store_true", help="Don't normalize compose model")
    p.add_argument("--no-path-resolution", action="store_true",
                   help="Don't resolve file paths")
    p.add_argument("--no-consistency", action="store_true",
                   help="Don't check model consistency - warning: may produce invalid "
                        "Compose output")
    p.add_argument("--no-env-resolution", action="store_true",
                   help="Don't resolve service env files")
    p.add_argument("--resolve-image-digests", action="store_true",
                   help="Pin image tags to digests")
    p.add_argument("--lock-image-digests", action="store_true",
                   help="Produces an override file with image digests")
    p.add_argument("-o", "--output", help="Save to file (default to stdout)")


def _warn(ctx: Context) -> Any:
    def warn(message: str) -> None:
        ctx.stderr.write(f"WARN[0000] {message}\n")
        ctx.stderr.flush()

    return warn


def _load(ctx: Context, args: argparse.Namespace) -> Any:
    # the reference hashes services before their env_file is read into environment
    resolve_env = not args.no_env_resolution and args.hash is None
    # as the reference, `--services` lists every active service whatever is named
    services = () if args.list_services else tuple(args.services)
    return ctx.load(services, warn=_warn(ctx),
                    interpolate=not args.no_interpolate,
                    normalize=not args.no_normalize,
                    resolve_paths=not args.no_path_resolution,
                    consistency=not args.no_consistency,
                    resolve_env_files=resolve_env)


def dependency_order(services: dict[str, Any]) -> list[str]:
    """Service names, dependencies first, ties by name."""
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in done or name in trail or name not in services:
            return
        for dep in sorted((services[name] or {}).get("depends_on") or {}):
            visit(dep, (*trail, name))
        done.add(name)
        order.append(name)

    for name in sorted(services):
        visit(name, ())
    return order


def service_hash(service: dict[str, Any]) -> str:
    """Compose's config hash: sha256 of the service's JSON without the fields that must
    not force a recreate (build, pull_policy, scale, replicas, depends_on, profiles)."""
    import hashlib

    from compose.loader.render import go_json, service_json

    data = {k: v for k, v in service_json(service).items()
            if k not in ("build", "pull_policy", "scale", "depends_on", "profiles")}
    if isinstance(data.get("env_file"), list):
        # the reference marshals an env_file entry as its bare path, or as
        # {path, required: false} for an optional one (its format is left out)
        data["env_file"] = [
            (e["path"] if e.get("required", True) is True
             else {"path": e["path"], "required": False}) if isinstance(e, dict) else e
            for e in data["env_file"]]
    if isinstance(data.get("deploy"), dict):
        data["deploy"] = {k: v for k, v in data["deploy"].items() if k != "replicas"}
    return hashlib.sha256(go_json(data).encode()).hexdigest()


def _listing(args: argparse.Namespace, loaded: Any) -> list[str] | None:
    data = loaded.data
    if args.list_services:
        return dependency_order(data.get("services") or {})
    if args.volumes:
        return sorted(data.get("volumes") or {})
    if args.networks:
        return sorted(data.get("networks") or {})
    if args.models:
        return sorted(data.get("models") or {})
    if args.profiles:
        from compose.loader.profiles import all_profiles

        return all_profiles({**(data.get("services") or {}), **loaded.disabled})
    if args.images:
        return [svc.get("image") or f"{loaded.name}-{name}"
                for name, svc in (data.get("services") or {}).items()]
    if args.hash is not None:
        services = data.get("services") or {}
        wanted = sorted(services) if args.hash == "*" else \
            sorted(s.strip() for s in args.hash.split(",") if s.strip())
        for name in wanted:
            if name not in services:
                raise UsageError(f"no such service: {name}")
        return [f"{name} {service_hash(services[name])}" for name in wanted]
    return None


def _variables(ctx: Context, args: argparse.Namespace) -> str:
    from compose.loader.variables import extract_variables, render_variables

    loaded = ctx.load(tuple(args.services), warn=lambda _: None, interpolate=False,
                      normalize=False)
    return render_variables(extract_variables(loaded.data), args.format or "yaml")


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.resolve_image_digests or args.lock_image_digests:
        raise UsageError("image digests need a registry; not supported by `config` yet")
    if args.variables:
        text = _variables(ctx, args)
    else:
        loaded = _load(ctx, args)
        if args.environment:
            text = "".join(f"{k}={v}\n" for k, v in sorted(loaded.environment.items()))
        else:
            lines = _listing(args, loaded)
            if lines is not None:
                text = "".join(f"{line}\n" for line in lines)
            else:
                from compose.loader.render import render

                text = render(loaded.data, args.format or "yaml", raw=loaded.raw)
    if args.quiet:
        return 0
    if args.output:
        path = os.path.abspath(args.output)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return 0
    ctx.stdout.write(text)
    ctx.stdout.flush()
    return 0
