"""The code stays ruff clean, and mypy clean on `compose` and `engine.api` (pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    r = _run(str(BIN / "ruff"), "check", "--no-cache", "compose", "engine", "tui", "tests",
             "bench", "scripts")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean(tmp_path: Path) -> None:
    r = _run(str(BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy"))
    assert r.returncode == 0, r.stdout + r.stderr
