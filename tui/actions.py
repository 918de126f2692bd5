"""What the dashboard's keys do to a service, through the same code as the commands:
restart, stop and start run `pycompose restart|stop|start SERVICE`, rebuild runs
`pycompose up --build -d SERVICE`, and shell gives the argv of `pycompose exec SERVICE sh`.

Commands run in-process (in a worker thread) with their output captured; the shell runs
as a child process on the terminal while the app is suspended.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from compose.cli.context import Context, GlobalOptions
from compose.errors import ComposeError

if TYPE_CHECKING:
    from engine.api import Engine


class _SharedEngineContext(Context):
    """A command context that uses the dashboard's engine and captures the output."""

    def __init__(self, options: GlobalOptions, engine: Engine, out: io.StringIO) -> None:
        super().__init__(options, stdout=out, stderr=out)
        self.shared_engine = engine

    def engine(self) -> Engine:
        return self.shared_engine


def pycompose_argv() -> list[str]:
    """How to run pycompose itself: the venv's script, else this interpreter."""
    script = Path(sys.executable).parent / "pycompose"
    return [str(script)] if script.exists() else [sys.executable, "-m", "compose.cli.main"]


class ServiceActions:
    """Acts on one project's services; each method returns the command's progress text
    and raises (ComposeError, EngineError) when the command fails."""

    def __init__(self, options: GlobalOptions, engine: Engine, project: str) -> None:
        # Commands must act on the project the dashboard shows, whatever found it; with
        # the global --dry-run they only say what they would do, as on the command line.
        self.options = replace(options, project_name=project, progress="plain")
        self.engine = engine
        self.project = project

    def command(self, name: str, argv: list[str]) -> str:
        """Run `pycompose NAME ARGV...` in-process as the CLI dispatch does."""
        from compose.cli.main import COMMANDS, ArgumentParser

        module = importlib.import_module(f"compose.cli.commands.{COMMANDS[name][0]}")
        parser = ArgumentParser(prog=f"pycompose {name}")
        parser.add_argument("--dry-run", action="store_true", dest="sub_dry_run")
        module.add_arguments(parser)
        args: argparse.Namespace = parser.parse_args(argv)
        out = io.StringIO()
        code = module.run(_SharedEngineContext(self.options, self.engine, out), args)
        if code:
            raise ComposeError(f"{name} exited with code {code}: {out.getvalue().strip()}")
        return out.getvalue()

    def restart(self, service: str) -> str:
        return self.command("restart", [service])

    def stop(self, service: str) -> str:
        return self.command("stop", [service])

    def start(self, service: str) -> str:
        return self.command("start", [service])

    def rebuild(self, service: str) -> str:
        return self.command("up", ["--build", "-d", service])

    def shell_argv(self, service: str, index: int | None = None) -> list[str]:
        """`pycompose [global flags] exec [--index N] SERVICE sh` for this project."""
        argv = pycompose_argv()
        o = self.options
        for f in o.files:
            argv += ["-f", f]
        argv += ["-p", self.project]
        for profile in o.profiles:
            argv += ["--profile", profile]
        for env_file in o.env_files:
            argv += ["--env-file", env_file]
        if o.project_directory:
            argv += ["--project-directory", o.project_directory]
        if o.dry_run:
            argv.append("--dry-run")
        argv.append("exec")
        if index is not None and index > 1:
            argv += ["--index", str(index)]
        return [*argv, service, "sh"]
