"""`pycompose container ls|inspect|logs|rm|exec|top|stats|cp|diff|export|pause|unpause|kill|
stop|start|create|run`: the built-in engine's containers, in `docker container`'s shapes.

Commands that take several containers act on each in turn, print each one's reference on
success and its error on stderr otherwise, and exit 1 if any failed (as docker does).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from compose.cli.commands import _run_flags
from compose.cli.commands._objects import print_documents
from compose.cli.commands.image import ellipsis, go_template, since, table
from compose.cli.context import Context
from compose.cli.env_flags import env_pairs
from compose.cli.units import bytes_size, human_size
from compose.errors import UsageError

if TYPE_CHECKING:
    from engine.api import Container, ContainerSpec, Engine

# ------------------------------------------------------------------ arguments


def _run_options(p: argparse.ArgumentParser) -> None:
    """The `docker create/run` flags pycompose supports."""
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--entrypoint")
    p.add_argument("--hostname", dest="hostname")
    p.add_argument("--init", action="store_true")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--memory-reservation")
    p.add_argument("--cpus", type=float)
    p.add_argument("--cpu-shares", "-c", type=int)
    p.add_argument("--cpuset-cpus")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--oom-kill-disable", action="store_true")
    p.add_argument("--network", "--net", dest="network", default="")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--tmpfs", action="append", default=[])
    p.add_argument("--restart", default="no")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=float)
    p.add_argument("--rm", action="store_true")
    p.add_argument("--health-cmd")
    p.add_argument("--health-interval")
    p.add_argument("--health-timeout")
    p.add_argument("--health-retries", type=int)
    p.add_argument("--health-start-period")
    p.add_argument("--no-healthcheck", action="store_true")
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", "--dns-opt", dest="dns_option", action="append",
                   default=[])
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--ulimit", action="append", default=[])
    p.add_argument("--log-driver", default="json-file")
    p.add_argument("--log-opt", action="append", default=[])
    p.add_argument("--pid", default="")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="container_cmd", metavar="COMMAND")
    sub.required = True

    ls = sub.add_parser("ls", aliases=["ps", "list"], help="List containers")
    ls.add_argument("-a", "--all", action="store_true")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.add_argument("--no-trunc", action="store_true")
    ls.add_argument("-f", "--filter", action="append", default=[])
    ls.add_argument("--format", default="table")

    ins = sub.add_parser("inspect", help="Display detailed information on one or more containers")
    ins.add_argument("containers", nargs="+")
    ins.add_argument("-f", "--format", default="")

    logs = sub.add_parser("logs", help="Fetch the logs of a container")
    logs.add_argument("container")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--tail", default="all")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("--since", help="timestamp or relative duration (e.g. 42m)")
    logs.add_argument("--until", help="timestamp or relative duration (e.g. 42m)")

    rm = sub.add_parser("rm", aliases=["remove"], help="Remove one or more containers")
    rm.add_argument("containers", nargs="+")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("-v", "--volumes", action="store_true")

    ex = sub.add_parser("exec", help="Execute a command in a running container")
    ex.add_argument("-d", "--detach", action="store_true")
    ex.add_argument("-i", "--interactive", action="store_true")
    ex.add_argument("-t", "--tty", action="store_true")
    ex.add_argument("-e", "--env", action="append", default=[])
    ex.add_argument("-u", "--user")
    ex.add_argument("-w", "--workdir")
    ex.add_argument("--privileged", action="store_true")
    ex.add_argument("container")
    ex.add_argument("command", nargs=argparse.REMAINDER)

    top = sub.add_parser("top", help="Display the running processes of a container")
    top.add_argument("container")

    st = sub.add_parser("stats", help="Display a live stream of container resource usage")
    st.add_argument("containers", nargs="*")
    st.add_argument("-a", "--all", action="store_true")
    st.add_argument("--no-stream", action="store_true")
    st.add_argument("--no-trunc", action="store_true")
    st.add_argument("--format", default="table")

    cp = sub.add_parser("cp", help="Copy files/folders between a container and the local "
                                   "filesystem")
    cp.add_argument("-a", "--archive", action="store_true")
    cp.add_argument("-L", "--follow-link", action="store_true")
    cp.add_argument("-q", "--quiet", action="store_true")
    cp.add_argument("src")
    cp.add_argument("dest")

    diff = sub.add_parser("diff", help="Inspect changes to files on a container's filesystem")
    diff.add_argument("container")

    exp = sub.add_parser("export", help="Export a container's filesystem as a tar archive")
    exp.add_argument("container")
    exp.add_argument("-o", "--output", default="")

    for name, text in (("pause", "Pause all processes within one or more containers"),
                       ("unpause", "Unpause all processes within one or more containers"),
                       ("start", "Start one or more stopped containers")):
        q = sub.add_parser(name, help=text)
        q.add_argument("containers", nargs="+")
        if name == "start":
            q.add_argument("-a", "--attach", action="store_true",
                           help="Attach STDOUT/STDERR and forward signals")
            q.add_argument("-i", "--interactive", action="store_true",
                           help="Attach container's STDIN")

    kill = sub.add_parser("kill", help="Kill one or more running containers")
    kill.add_argument("-s", "--signal", default="SIGKILL")
    kill.add_argument("containers", nargs="+")

    stop = sub.add_parser("stop", help="Stop one or more running containers")
    stop.add_argument("-t", "--timeout", "--time", type=float, dest="timeout")
    stop.add_argument("-s", "--signal")
    stop.add_argument("containers", nargs="+")

    _run_options(sub.add_parser("create", help="Create a new container"))
    run_p = sub.add_parser("run", help="Create and run a new container from an image")
    run_p.add_argument("-d", "--detach", action="store_true")
    _run_options(run_p)


def run(ctx: Context, args: argparse.Namespace) -> int:
    name = {"ps": "ls", "list": "ls", "remove": "rm"}.get(args.container_cmd,
                                                          args.container_cmd)
    handlers: dict[str, Callable[[Context, argparse.Namespace], int]] = {
        "ls": _ls, "inspect": _inspect, "logs": _logs, "rm": _rm, "exec": _exec, "top": _top,
        "stats": _stats, "cp": _cp, "diff": _diff, "export": _export, "pause": _pause,
        "unpause": _unpause, "kill": _kill, "stop": _stop, "start": _start,
        "create": _create, "run": _run}
    return handlers[name](ctx, args)


# ------------------------------------------------------------------ formatting


def _short(cid: str) -> str:
    return cid[:12]


def _command_text(c: Container) -> str:
    data = c.inspect()
    args = [data.get("Path") or ""] + list(data.get("Args") or [])
    return " ".join(a for a in args if a) if args else ""


def _status_text(c: Container) -> str:
    st = c.state
    if st.status in ("running", "paused", "restarting"):
        if st.status == "restarting":
            return f"Restarting ({st.exit_code}) {since(st.finished_at)}"
        text = "Up " + since(st.started_at).removesuffix(" ago")
        if st.status == "paused":
            text += " (Paused)"
        elif st.health is not None and st.health.status != "none":
            text += {"starting": " (health: starting)"}.get(st.health.status,
                                                            f" ({st.health.status})")
        return text
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {since(st.finished_at)}"
    return {"created": "Created", "dead": "Dead", "removing": "Removal In Progress"}.get(
        st.status, st.status)


def _ports_text(c: Container) -> str:
    parts = []
    for p in c.ports:
        ip = p.host_ip or "0.0.0.0"
        parts.append(f"{ip}:{p.host_port}->{p.container_port}/{p.protocol}")
    return ", ".join(parts)


def _each(ctx: Context, refs: list[str], action: Callable[[str], None]) -> int:
    """Apply `action` to each ref; print the ref or its error; 1 if any failed."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except Exception as exc:  # one line per failed container, as docker
            from compose.cli.exitcodes import message_for

            print(f"Error response from daemon: {message_for(exc)}", file=ctx.stderr)
            failed = True
            continue
        print(ref, file=ctx.stdout)
    return 1 if failed else 0


# ------------------------------------------------------------------ ls, inspect, logs


def _filter_match(c: Container, filters: list[str]) -> bool:
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {f}")
        if key == "name" and value not in c.name:
            return False
        if key == "id" and not c.id.startswith(value):
            return False
        if key == "status" and c.state.status != value:
            return False
        if key == "label":
            k, has_value, v = value.partition("=")
            if k not in c.labels or (has_value and c.labels[k] != v):
                return False
        if key == "exited" and (c.state.status != "exited"
                                or str(c.state.exit_code) != value):
            return False
        if key == "health" and (c.state.health.status if c.state.health else "none") != value:
            return False
        if key == "ancestor" and value not in (c.image_id, c.image):
            return False
        if key not in ("name", "id", "status", "label", "exited", "health", "ancestor"):
            raise UsageError(f"invalid filter '{key}'")
    return True


def _resolve_ancestors(engine: Engine, filters: list[str]) -> list[str]:
    """`ancestor=<ref or id prefix>` as `ancestor=<image id>` (unknown images match none)."""
    from engine.api import NotFound

    out = []
    for f in filters:
        key, sep, value = f.partition("=")
        if key == "ancestor" and sep:
            try:
                f = f"ancestor={engine.image_inspect(value).id}"
            except NotFound:
                pass
        out.append(f)
    return out


_LS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
               "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS",
               "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS"}


def _unescape(template: str) -> str:
    """docker's formatter turns the two-character `\\t` and `\\n` into tab and newline."""
    return template.replace("\\t", "\t").replace("\\n", "\n")


def _template_table(ctx: Context, template: str, rows: list[dict[str, str]]) -> None:
    """`--format "table {{.ID}}\\t{{.Status}}"`: a header row, then tab-separated cells."""
    template = _unescape(template).strip(" ")
    lines = [go_template(template, _LS_HEADERS).split("\t")]
    lines += [go_template(template, row).split("\t") for row in rows]
    table(lines, ctx.stdout)


def _ls(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    filters = _resolve_ancestors(engine, args.filter)
    containers = [c for c in engine.container_list(all=args.all)
                  if _filter_match(c, filters)]
    containers.sort(key=lambda c: c.created, reverse=True)
    if args.quiet:
        for c in containers:
            print(c.id if args.no_trunc else _short(c.id), file=ctx.stdout)
        return 0
    rows = []
    for c in containers:
        cmd = _command_text(c)
        row = {"ID": c.id if args.no_trunc else _short(c.id), "Image": c.image,
               "Command": json.dumps(cmd if args.no_trunc else ellipsis(cmd, 20),
                                     ensure_ascii=False),
               "CreatedAt": c.created, "RunningFor": since(c.created),
               "Status": _status_text(c), "State": c.state.status,
               "Ports": _ports_text(c), "Names": c.name,
               "Labels": ",".join(f"{k}={v}" for k, v in c.labels.items())}
        rows.append(row)
    if args.format == "json":
        for row in rows:
            print(json.dumps(row), file=ctx.stdout)
        return 0
    if args.format.startswith("table "):
        _template_table(ctx, args.format.removeprefix("table "), rows)
        return 0
    if args.format != "table":
        for row in rows:
            print(go_template(_unescape(args.format), row), file=ctx.stdout)
        return 0
    lines = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    lines += [[r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"],
               r["Names"]] for r in rows]
    table(lines, ctx.stdout)
    return 0


def _inspect(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    found, failed = [], False
    for ref in args.containers:
        try:
            found.append(engine.container_inspect(ref).inspect())
        except Exception as exc:
            from compose.cli.exitcodes import message_for

            print(f"Error: {message_for(exc)}", file=ctx.stderr)
            failed = True
    print_documents(ctx, found, args.format)
    return 1 if failed else 0


def _logs(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    tail = None if args.tail in ("all", "-1") else _int(args.tail, "--tail")
    from compose.cli.commands.system_events import moment

    if engine.container_inspect(args.container).spec.log_config.driver == "none":
        from engine.api import InvalidArgument

        raise InvalidArgument("configured logging driver does not support reading")
    since = moment(args.since, "--since") if args.since else None
    until = moment(args.until, "--until") if args.until else None
    for line in engine.container_logs(args.container, follow=args.follow, tail=tail,
                                      since=since, until=until):
        out = ctx.stdout if line.stream == "stdout" else ctx.stderr
        out.write((f"{line.time} " if args.timestamps else "") + line.text)
        out.flush()
    return 0


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"invalid value {text!r} for {flag}") from None


# ------------------------------------------------------------------ lifecycle


def _rm(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    return _each(ctx, args.containers,
                 lambda r: engine.container_remove(r, force=args.force, volumes=args.volumes))


def _pause(ctx: Context, args: argparse.Namespace) -> int:
    return _each(ctx, args.containers, ctx.engine().container_pause)


def _unpause(ctx: Context, args: argparse.Namespace) -> int:
    return _each(ctx, args.containers, ctx.engine().container_unpause)


def _start(ctx: Context, args: argparse.Namespace) -> int:
    if not (args.attach or args.interactive):
        return _each(ctx, args.containers, ctx.engine().container_start)
    if len(args.containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    engine = ctx.engine()
    c = engine.container_inspect(args.containers[0])
    if c.spec.tty and args.interactive and not sys.stdin.isatty():
        raise UsageError("the input device is not a TTY")
    engine.container_start(c.id)
    return _attach(ctx, engine, c.id, args.interactive and c.spec.stdin_open, c.spec.tty)


def _kill(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    return _each(ctx, args.containers, lambda r: engine.container_kill(r, args.signal))


def _stop(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()

    def stop(ref: str) -> None:
        if args.signal:
            engine.container_kill(ref, args.signal)
        engine.container_stop(ref, timeout=args.timeout)

    return _each(ctx, args.containers, stop)


# ------------------------------------------------------------------ exec, top, stats


def _exec(ctx: Context, args: argparse.Namespace) -> int:
    from engine.api import ExecSpec

    if not args.command:
        raise UsageError("exec requires at least 2 arguments: CONTAINER COMMAND [ARG...]")
    if args.tty and not args.detach and not sys.stdin.isatty() and args.interactive:
        raise UsageError("the input device is not a TTY")
    spec = ExecSpec(cmd=tuple(args.command), user=args.user, working_dir=args.workdir,
                    env=env_pairs(args.env), tty=args.tty, stdin=args.interactive,
                    privileged=args.privileged, detach=args.detach)
    ctx.stdout.flush()
    return ctx.engine().container_exec(args.container, spec)


def _top(ctx: Context, args: argparse.Namespace) -> int:
    titles, rows = ctx.engine().container_top(args.container)
    lines = [titles] + rows
    widths = [max(20, max(len(r[i]) for r in lines) + 3) for i in range(len(titles))]
    for row in lines:
        cells = [c.ljust(widths[i]) for i, c in enumerate(row[:-1])] + [row[-1]]
        print("".join(cells).rstrip(), file=ctx.stdout)
    return 0


def _stats_rows(engine: Engine, containers: list[Container], no_trunc: bool
                ) -> list[dict[str, str]]:
    rows = []
    for c in containers:
        try:
            s = engine.container_stats(c.id)
        except Exception:
            continue
        mem_pct = 100.0 * s.memory_usage / s.memory_limit if s.memory_limit else 0.0
        rows.append({
            "Container": c.id if no_trunc else _short(c.id), "ID": c.id if no_trunc
            else _short(c.id), "Name": c.name, "CPUPerc": f"{s.cpu_percent:.2f}%",
            "MemUsage": f"{bytes_size(s.memory_usage)} / {bytes_size(s.memory_limit)}",
            "MemPerc": f"{mem_pct:.2f}%",
            "NetIO": f"{human_size(s.net_rx, 3)} / {human_size(s.net_tx, 3)}",
            "BlockIO": f"{human_size(s.block_read, 3)} / {human_size(s.block_write, 3)}",
            "PIDs": str(s.pids)})
    return rows


def _stats(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    if args.containers:
        containers = [engine.container_inspect(ref) for ref in args.containers]
    else:
        containers = engine.container_list(all=args.all)
    while True:
        rows = _stats_rows(engine, containers, args.no_trunc)
        if not args.no_stream:
            ctx.stdout.write("\x1b[2J\x1b[H")
        if args.format == "json":
            for row in rows:
                print(json.dumps(row), file=ctx.stdout)
        elif args.format != "table":
            for row in rows:
                print(go_template(args.format, row), file=ctx.stdout)
        else:
            head = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                    "NET I/O", "BLOCK I/O", "PIDS"]
            table([head] + [[r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"],
                             r["NetIO"], r["BlockIO"], r["PIDs"]] for r in rows], ctx.stdout)
        ctx.stdout.flush()
        if args.no_stream:
            return 0
        time.sleep(1.0)


# ------------------------------------------------------------------ cp, diff, export


def _split_cp_arg(arg: str) -> tuple[str | None, str]:
    """`CONTAINER:PATH` -> (container, path); a local path -> (None, path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    if not name:
        return None, arg
    return name, path


def _cp(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    src_ctr, src = _split_cp_arg(args.src)
    dst_ctr, dest = _split_cp_arg(args.dest)
    if src_ctr and dst_ctr:
        raise UsageError("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise UsageError("must specify at least one container source")
    if not (src if src_ctr else dest):
        raise UsageError("filesystem path in the container must not be empty")
    if src_ctr:
        if dest == "-" and sys.stdout.isatty():
            raise UsageError("cowardly refusing to write a tar archive to a terminal")
        # archive/follow_link are the built-in engine's extensions of the protocol
        engine.container_copy_from(src_ctr, src, dest, archive=args.archive,  # type: ignore[call-arg]
                                   follow_link=args.follow_link)
    else:
        assert dst_ctr is not None
        engine.container_copy_to(dst_ctr, src, dest, archive=args.archive,  # type: ignore[call-arg]
                                 follow_link=args.follow_link)
    return 0


def _diff(ctx: Context, args: argparse.Namespace) -> int:
    for kind, path in ctx.engine().container_diff(args.container):
        print(f"{kind} {path}", file=ctx.stdout)
    return 0


def _export(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.engine()
    if args.output:
        engine.container_export(args.container, args.output)
        return 0
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or "
                         "redirect")
    engine.container_export(args.container, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


# ------------------------------------------------------------------ create, run

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _ram(text: str | None, flag: str) -> int | None:
    """docker's RAMInBytes: `64m`, `1g`, `512k`, `1048576`; -1 for unlimited."""
    if text is None:
        return None
    t = text.strip().lower()
    if t == "-1":
        return -1
    num = t.rstrip("bkmgt")
    unit = t[len(num):].rstrip("b") or ""
    try:
        value = float(num)
        return int(value * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise UsageError(f"invalid size: {text!r} for {flag}") from None


def _spec(args: argparse.Namespace) -> ContainerSpec:
    from engine.api import (
        ContainerSpec,
        LogConfig,
        Mount,
        Resources,
        RestartPolicy,
    )

    ports = [_run_flags.publish(p) for p in args.publish]
    mounts = []
    for v in args.volume:
        bits = v.split(":")
        if len(bits) < 2:
            mounts.append(Mount("volume", bits[0]))
            continue
        ro = len(bits) > 2 and "ro" in bits[2].split(",")
        kind = "bind" if bits[0].startswith(("/", ".")) else "volume"
        source = os.path.abspath(bits[0]) if kind == "bind" else bits[0]
        mounts.append(Mount(kind, bits[1], source, read_only=ro))  # type: ignore[arg-type]
    for t in args.tmpfs:
        mounts.append(Mount("tmpfs", t.split(":")[0]))
    mounts.extend(_run_flags.mount(m) for m in args.mount)
    name, _, count = args.restart.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise UsageError(f"invalid restart policy {args.restart!r}")
    healthcheck = _run_flags.healthcheck(
        args.health_cmd, args.health_interval, args.health_timeout, args.health_retries,
        args.health_start_period, args.no_healthcheck)
    if args.pid and args.pid != "host" and not args.pid.startswith("container:"):
        raise UsageError(f"invalid --pid {args.pid!r}: expected host or container:NAME")
    return ContainerSpec(
        image=args.image, name=args.name,
        command=tuple(args.command) if args.command else None,
        entrypoint=tuple(shlex.split(args.entrypoint)) if args.entrypoint is not None
        else None,
        env=env_pairs(args.env, args.env_file),
        labels=tuple((k, v) for k, _, v in (lb.partition("=") for lb in args.label)),
        user=args.user, working_dir=args.workdir, hostname=args.hostname, tty=args.tty,
        stdin_open=args.interactive, init=args.init, read_only=args.read_only,
        privileged=args.privileged, cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop), security_opt=tuple(args.security_opt),
        stop_signal=args.stop_signal, stop_grace_period=args.stop_timeout,
        restart=RestartPolicy(name, int(count) if count.isdigit() else 0),  # type: ignore[arg-type]
        healthcheck=healthcheck, mounts=tuple(mounts),
        resources=Resources(memory=_ram(args.memory, "--memory"),
                            memory_swap=_ram(args.memory_swap, "--memory-swap"),
                            memory_reservation=_ram(args.memory_reservation,
                                                    "--memory-reservation"),
                            cpus=args.cpus, cpu_shares=args.cpu_shares,
                            cpuset_cpus=args.cpuset_cpus, pids_limit=args.pids_limit,
                            oom_kill_disable=args.oom_kill_disable),
        network_mode=args.network, ports=tuple(ports),
        dns=tuple(args.dns), dns_search=tuple(args.dns_search),
        dns_opt=tuple(args.dns_option), extra_hosts=tuple(args.add_host),
        ulimits=tuple(_run_flags.ulimit(u) for u in args.ulimit),
        log_config=LogConfig(args.log_driver, _run_flags.log_options(args.log_opt)),
        pid_mode=args.pid,
        auto_remove=args.rm and getattr(args, "detach", True))


def _create(ctx: Context, args: argparse.Namespace) -> int:
    c = ctx.engine().container_create(_spec(args))
    print(c.id, file=ctx.stdout)
    return 0


def _run(ctx: Context, args: argparse.Namespace) -> int:
    """create + start + attach (stdin too with -i); the container's exit code becomes ours."""
    engine = ctx.engine()
    if args.tty and args.interactive and not args.detach and not sys.stdin.isatty():
        raise UsageError("the input device is not a TTY")
    spec = _spec(args)
    c = engine.container_create(spec)
    try:
        engine.container_start(c.id)
    except Exception:
        if args.rm:  # as docker: a --rm container that cannot start is not left behind
            from engine.api import NotFound

            try:
                engine.container_remove(c.id, force=True)
            except NotFound:
                pass
        raise
    if args.detach:
        print(c.id, file=ctx.stdout)
        return 0
    code = _attach(ctx, engine, c.id, args.interactive, args.tty)
    if args.rm:
        from engine.api import NotFound

        try:
            engine.container_remove(c.id, force=True)
        except NotFound:
            pass  # auto_remove already did it
    return code


def _attach(ctx: Context, engine: Engine, cid: str, interactive: bool, tty: bool) -> int:
    """Relay our stdio until the container exits; its exit code (with a terminal, Ctrl-C
    is a byte for the container; without, it stops the container: 130)."""
    try:
        ctx.stdout.flush()
        return engine.container_attach(cid, sys.stdin if interactive else None, ctx.stdout,
                                       ctx.stderr, tty)
    except KeyboardInterrupt:
        engine.container_stop(cid)
        return 130
