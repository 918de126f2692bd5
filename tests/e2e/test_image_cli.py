"""`pycompose image ...` and `pycompose system ...` end to end, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.e2e]


class CLI:
    def __init__(self, root: Path) -> None:
        self.env = {**os.environ, "PYCOMPOSE_ROOT": str(root)}
        self.env.pop("PYCOMPOSE_DEBUG", None)

    def __call__(self, *args: str, ok: bool = True, stdin: bytes | None = None,
                 ) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run([sys.executable, "-m", "compose.cli.main", *args],
                             env=self.env, capture_output=True, timeout=60,
                             input=stdin if stdin is not None else b"")
        proc = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(),
                                           raw.stderr.decode())
        if ok:
            assert proc.returncode == 0, proc.stderr
        else:
            assert proc.returncode != 0, proc.stdout
            assert "Traceback" not in proc.stderr
        return proc


@pytest.fixture
def cli(engine_root: Path) -> CLI:
    return CLI(engine_root)


def test_image_lifecycle(cli: CLI, busybox_tar: Path, tmp_path: Path) -> None:
    out = cli("image", "import", str(busybox_tar), "busybox", "-c", 'CMD ["sh"]',
              "-c", "ENV A=1").stdout.strip()
    assert out.startswith("sha256:") and len(out) == 71
    short = out[7:19]

    ls = cli("image", "ls").stdout.splitlines()
    assert ls[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert ls[1].split()[:3] == ["busybox", "latest", short]
    assert ls[1].endswith("MB")
    assert cli("image", "ls", "-q").stdout.split() == [short]

    cli("image", "tag", "busybox", "localhost:5000/bb:v1")
    rows = [json.loads(line) for line in cli("image", "ls", "--format", "json").stdout.splitlines()]
    assert {(r["Repository"], r["Tag"]) for r in rows} == {("busybox", "latest"),
                                                           ("localhost:5000/bb", "v1")}
    only = cli("image", "ls", "localhost:5000/bb").stdout.splitlines()
    assert [line.split()[0] for line in only[1:]] == ["localhost:5000/bb"]
    only = cli("image", "ls", "--filter", "reference=busy*:latest").stdout.splitlines()
    assert [line.split()[:2] for line in only[1:]] == [["busybox", "latest"]]
    doc = json.loads(cli("image", "inspect", short).stdout)
    assert doc[0]["Id"] == out and doc[0]["Config"]["Cmd"] == ["sh"]
    assert doc[0]["Config"]["Env"] == ["A=1"]
    assert cli("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip() == out

    hist = cli("image", "history", "busybox").stdout.splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and hist[1].startswith(short)
    assert "Imported from -" in hist[1]

    archive = tmp_path / "bb.tar"
    cli("image", "save", "-o", str(archive), "busybox")
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()

    rm = cli("image", "rm", short, ok=False)
    assert "image is referenced in multiple repositories" in rm.stderr
    assert cli("image", "rm", "localhost:5000/bb:v1").stdout == "Untagged: localhost:5000/bb:v1\n"
    assert cli("image", "rm", "busybox").stdout.splitlines() == [
        "Untagged: busybox:latest", f"Deleted: {out}"]
    assert cli("image", "ls", "-q").stdout == ""

    load = cli("image", "load", "-i", str(archive)).stdout
    assert load == "Loaded image: busybox:latest\n"
    assert cli("image", "ls", "-q").stdout.split() == [short]

    oci = tmp_path / "bb-oci.tar"
    cli("image", "save", "--format", "oci", "-o", str(oci), "busybox")
    cli("image", "rm", "-f", "busybox")
    assert cli("image", "load", stdin=oci.read_bytes()).stdout == "Loaded image: busybox:latest\n"

    df = cli("system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "1", "0"]
    info = json.loads(cli("system", "info", "--format", "json").stdout)
    assert info["Images"] == 1 and info["Driver"] == "overlay2"

    prune = cli("image", "prune", "-a", "-f").stdout
    assert "Deleted Images:\nuntagged: busybox:latest\n" in prune
    assert f"deleted: {out}" in prune and "Total reclaimed space: " in prune


def test_image_errors_are_one_line(cli: CLI, tmp_path: Path) -> None:
    for args, text in [
        (("image", "inspect", "nope"), "No such image: nope"),
        (("image", "rm", "nope"), "No such image: nope"),
        (("image", "tag", "nope", "x"), "No such image: nope"),
        (("image", "import", str(tmp_path / "missing.tar")), "cannot read"),
        (("image", "import", "-", "Upper:Case"), "must be lowercase"),
        (("image", "import", "-", "x", "-c", "RUN true"), "not a valid change command"),
        (("image", "load", "-i", str(tmp_path / "missing.tar")), "cannot read"),
        (("image", "save", "-o", str(tmp_path / "o.tar"), "nope"), "No such image"),
        (("image", "bogus",), "invalid choice"),
        (("image", "save", "-o", str(tmp_path / "no" / "x.tar"), "nope"), "No such image"),
    ]:
        proc = cli(*args, ok=False)
        assert text in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "o.tar").exists()
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    proc = cli("image", "import", str(garbage), "g", ok=False)
    assert "invalid archive" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_prune_asks_first(cli: CLI, busybox_tar: Path) -> None:
    cli("image", "import", str(busybox_tar))  # untagged: dangling
    out = cli("image", "prune", stdin=b"n\n").stdout
    assert "WARNING! This will remove all dangling images." in out
    assert len(cli("image", "ls", "-q").stdout.split()) == 1
    out = cli("system", "prune", stdin=b"y\n").stdout
    assert "Total reclaimed space:" in out and "deleted: sha256:" in out
    assert cli("image", "ls", "-q").stdout == ""
