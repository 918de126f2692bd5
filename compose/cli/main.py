"""Entry point of `pycompose`: global flags, dispatch to one subcommand, exit codes.

Only the chosen subcommand's module is imported, so `pycompose --help` and light
commands start fast. Every error a user can cause ends here as one line on stderr and
exit code 1 (as Docker Compose v2); Ctrl-C exits 130; nothing prints a traceback unless
PYCOMPOSE_DEBUG is set.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

# name -> (module under compose.cli.commands, one-line help). Order is the help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("build", "Build or rebuild services"),
    "config": ("config", "Parse, resolve and render compose file in canonical format"),
    "cp": ("cp", "Copy files/folders between a service container and the local filesystem"),
    "create": ("create", "Creates containers for a service"),
    "down": ("down", "Stop and remove containers, networks"),
    "events": ("events", "Receive real time events from containers"),
    "exec": ("exec_", "Execute a command in a running container"),
    "images": ("images", "List images used by the created containers"),
    "kill": ("kill", "Force stop service containers"),
    "login": ("login", "Log in to a registry"),
    "logout": ("logout", "Log out from a registry"),
    "logs": ("logs", "View output from containers"),
    "ls": ("ls", "List running compose projects"),
    "pause": ("pause", "Pause services"),
    "port": ("port", "Print the public port for a port binding"),
    "ps": ("ps", "List containers"),
    "pull": ("pull", "Pull service images"),
    "push": ("push", "Push service images"),
    "restart": ("restart", "Restart service containers"),
    "rm": ("rm", "Removes stopped service containers"),
    "run": ("run", "Run a one-off command on a service"),
    "scale": ("scale", "Scale services"),
    "start": ("start", "Start services"),
    "stats": ("stats", "Display a live stream of container(s) resource usage statistics"),
    "stop": ("stop", "Stop services"),
    "top": ("top", "Display the running processes"),
    "unpause": ("unpause", "Unpause services"),
    "up": ("up", "Create and start containers"),
    "version": ("version", "Show the pycompose version information"),
    "viz": ("viz", "Print the service dependency graph (DOT or Mermaid)"),
    "wait": ("wait", "Block until containers of all (or specified) services stop."),
    "watch": ("watch", "Watch build context for service and rebuild/refresh containers"),
    "dashboard": ("dashboard", "Open the interactive dashboard"),
}

# Low-level commands that look under the hood of the built-in engine.
MANAGEMENT: dict[str, tuple[str, str]] = {
    "container": ("container", "Manage containers of the built-in engine"),
    "image": ("image", "Manage images of the built-in engine"),
    "network": ("network", "Manage networks of the built-in engine"),
    "system": ("system", "Manage the built-in engine"),
    "volume": ("volume", "Manage volumes of the built-in engine"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError (exit 1), not exit 2."""

    def error(self, message: str) -> NoReturn:
        from compose.errors import UsageError

        raise UsageError(f"{self.prog}: {message}")


def _global_parser() -> ArgumentParser:
    p = ArgumentParser(prog="pycompose", add_help=False,
                       description="Define and run multi-container applications")
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("-f", "--file", action="append", dest="files", default=[])
    p.add_argument("-p", "--project-name", dest="project_name")
    p.add_argument("--profile", action="append", dest="profiles", default=[])
    p.add_argument("--env-file", action="append", dest="env_files", default=[])
    p.add_argument("--project-directory", dest="project_directory")
    p.add_argument("--progress", choices=["auto", "tty", "plain", "json", "quiet"])
    p.add_argument("--ansi", choices=["never", "always", "auto"], default="auto")
    p.add_argument("--parallel", type=int, default=-1)
    p.add_argument("--compatibility", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--all-resources", action="store_true")
    p.add_argument("-v", "--version", action="store_true")
    p.add_argument("command", nargs="?")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return p


GLOBAL_HELP = """\
Usage:  pycompose [OPTIONS] COMMAND

Define and run multi-container applications on the built-in engine

Options:
      --all-resources              Include all resources, even those not used by services
      --ansi string                Control when to print ANSI control characters
                                   ("never"|"always"|"auto") (default "auto")
      --compatibility              Run compose in backward compatibility mode
      --dry-run                    Execute command in dry run mode
      --env-file stringArray       Specify an alternate environment file
  -f, --file stringArray           Compose configuration files
      --parallel int               Control max parallelism, -1 for unlimited (default -1)
      --profile stringArray        Specify a profile to enable
      --progress string            Set type of progress output (auto, tty, plain, json, quiet)
      --project-directory string   Specify an alternate working directory
                                   (default: the path of the, first specified, Compose file)
  -p, --project-name string        Project name
"""


def _help_text() -> str:
    lines = [GLOBAL_HELP, "Management Commands:"]
    lines += [f"  {name:<11} {h}" for name, (_, h) in MANAGEMENT.items()]
    lines += ["", "Commands:"]
    lines += [f"  {name:<11} {h}" for name, (_, h) in COMMANDS.items()]
    lines += ["", "Run 'pycompose COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def _command_module(name: str) -> tuple[str, str] | None:
    return COMMANDS.get(name) or MANAGEMENT.get(name)


def dispatch(argv: list[str]) -> int:
    from compose.errors import UsageError

    opts = _global_parser().parse_args(argv)
    if opts.version and not opts.command:
        opts.command, opts.rest = "version", []
    if opts.help and not opts.command or not opts.command:
        sys.stdout.write(_help_text())
        return 0
    entry = _command_module(opts.command)
    if entry is None:
        raise UsageError(f"unknown command: {opts.command!r}; see 'pycompose --help'")
    module = importlib.import_module(f"compose.cli.commands.{entry[0]}")
    sub = ArgumentParser(prog=f"pycompose {opts.command}", description=entry[1])
    sub.add_argument("--dry-run", action="store_true", dest="sub_dry_run",
                     help="Execute command in dry run mode")
    module.add_arguments(sub)
    args = sub.parse_args(opts.rest)
    from compose.cli.context import Context, GlobalOptions  # dataclasses: not for --help

    ctx = Context(GlobalOptions(
        files=tuple(opts.files),
        project_name=opts.project_name,
        profiles=tuple(opts.profiles),
        env_files=tuple(opts.env_files),
        project_directory=opts.project_directory,
        progress=opts.progress or os.environ.get("COMPOSE_PROGRESS") or "auto",
        ansi=opts.ansi,
        parallel=opts.parallel,
        compatibility=opts.compatibility,
        dry_run=opts.dry_run or args.sub_dry_run,
        all_resources=opts.all_resources,
    ))
    result: int = module.run(ctx, args)
    return result


def main(argv: list[str] | None = None) -> NoReturn:
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = dispatch(argv)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # every error ends as one line; PYCOMPOSE_DEBUG shows more
        if os.environ.get("PYCOMPOSE_DEBUG"):
            raise
        from compose.cli.exitcodes import exit_code_for, message_for

        sys.stdout.flush()
        sys.stderr.write(message_for(exc) + "\n")
        code = exit_code_for(exc)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
