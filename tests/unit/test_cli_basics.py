"""The `pycompose` command itself: help, version, unknown commands, one-line errors."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compose.cli.main", *args],
                          capture_output=True, text=True, timeout=60)


def test_help_lists_commands() -> None:
    r = _run("--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage:  pycompose [OPTIONS] COMMAND")
    for cmd in ("up", "down", "config", "ps", "logs", "exec", "run", "build"):
        assert f"\n  {cmd} " in r.stdout


def test_version() -> None:
    r = _run("version", "--short")
    assert r.returncode == 0 and r.stdout.strip()[0].isdigit()


def test_unknown_command_is_one_line_exit_1() -> None:
    r = _run("frobnicate")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "unknown command" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_flag_is_one_line_exit_1() -> None:
    r = _run("version", "--no-such-flag")
    assert r.returncode == 1
    assert "unrecognized arguments" in r.stderr and "Traceback" not in r.stderr
