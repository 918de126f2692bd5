"""DESIGN.md's import directions, read from every module's imports with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = ("compose/loader", "compose/model.py", "compose/graph.py", "compose/errors.py")
# The one CLI command that opens the dashboard may import it (lazily, when it runs).
DASHBOARD_LAUNCHER = "compose/cli/commands/dashboard.py"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if node.module in ("engine", "compose", "tui")]
    return found


def _modules(top: str) -> list[Path]:
    return sorted((ROOT / top).rglob("*.py"))


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def _breaches() -> list[str]:
    bad: list[str] = []
    for path in _modules("compose"):
        rel = _rel(path)
        for line, name in _imports(path):
            top = name.split(".")[0]
            if rel.startswith(PURE) and top in ("engine", "tui"):
                bad.append(f"{rel}:{line}: pure compose module imports {name}")
            elif top == "engine" and name not in ("engine", "engine.api") \
                    and not name.startswith("engine.api."):
                bad.append(f"{rel}:{line}: compose reaches the engine through {name}, "
                           "not engine.api")
            elif top == "tui" and rel != DASHBOARD_LAUNCHER:
                bad.append(f"{rel}:{line}: compose imports the dashboard ({name})")
    for path in _modules("engine"):
        for line, name in _imports(path):
            if name.split(".")[0] in ("compose", "tui"):
                bad.append(f"{_rel(path)}:{line}: engine imports {name}")
    for path in _modules("tui"):
        for line, name in _imports(path):
            if name.startswith("engine") and name not in ("engine", "engine.api") \
                    and not name.startswith("engine.api."):
                bad.append(f"{_rel(path)}:{line}: tui imports engine internals ({name})")
    return bad


def test_import_directions_hold() -> None:
    assert _breaches() == []


def test_checker_sees_a_breach(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from engine.runtime import monitor\nimport engine.api\n")
    names = [n for _, n in _imports(f)]
    assert "engine.runtime" in names and "engine.api" in names
