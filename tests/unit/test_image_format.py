"""Docker's output helpers used by `pycompose image` and `pycompose system`."""

from __future__ import annotations

import io

import pytest

from compose.cli.commands.image import go_template, human_duration, human_size, table
from compose.errors import UsageError


@pytest.mark.parametrize(("size", "precision", "text"), [
    (0, 4, "0B"), (999, 4, "999B"), (1000, 4, "1kB"), (1982468, 4, "1.982MB"),
    (4260000, 3, "4.26MB"), (1982468, 3, "1.98MB"), (5_300_000_000, 3, "5.3GB"),
])
def test_human_size(size: int, precision: int, text: str) -> None:
    assert human_size(size, precision) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (59 * 60, "59 minutes"), (3600, "About an hour"), (47 * 3600, "47 hours"),
    (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_table_layout() -> None:
    out = io.StringIO()
    table([["REPOSITORY", "TAG", "SIZE"], ["busybox", "latest", "1.98MB"]], out)
    assert out.getvalue().splitlines() == ["REPOSITORY   TAG       SIZE",
                                           "busybox      latest    1.98MB"]


def test_go_template_subset() -> None:
    doc = {"Id": "sha256:x", "Config": {"Cmd": ["sh"], "Env": None, "Tty": False}}
    assert go_template("{{.Id}} {{json .Config.Cmd}}", doc) == 'sha256:x ["sh"]'
    assert go_template("{{ .Config.Env }}|{{.Config.Tty}}", doc) == "<no value>|false"
    with pytest.raises(UsageError, match="Missing"):
        go_template("{{.Missing}}", doc)
