"""Malformed compose projects through the real `pycompose config`: one clear line, exit 1.

Every case checks: exit code 1, exactly one line on stderr, no traceback, the
`file:line:col:` position where the problem has one, and the key path or the detail
that tells the user what to fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes]
    expected: tuple[str, ...]  # substrings of the one stderr line, in order
    where: str | None = None  # "line:col" of compose.yaml, when the problem has a position
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def svc(body: str) -> dict[str, str | bytes]:
    """A compose.yaml with one service `web` whose keys are `body` (indented 4)."""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return {"compose.yaml": f"services:\n  web:\n    image: busybox\n{lines}"}


CASES: dict[str, Case] = {
    # -- YAML --------------------------------------------------------------------------
    "bad-yaml-unclosed-flow": Case({"compose.yaml": "services:\n  web: [a, b\n"}, ("",),
                                   where=None),
    "bad-yaml-tab-indent": Case({"compose.yaml": "services:\n\tweb:\n\t\timage: x\n"},
                                ("tab characters are not allowed for indentation",),
                                where="2:1"),
    "duplicate-service": Case({"compose.yaml": "services:\n  web:\n    image: a\n  web:\n"
                                               "    image: b\n"}, ("web",), where="4:3"),
    "duplicate-key-in-service": Case({"compose.yaml": "services:\n  web:\n    image: a\n"
                                                      "    image: b\n"},
                                     ("image",), where="4:5"),
    "binary-garbage": Case({"compose.yaml": b"\x00\xff\xfe\x01garbage\x9c\x00"}, ("",)),
    "empty-file": Case({"compose.yaml": ""}, ("empty compose file",)),
    "only-comments": Case({"compose.yaml": "# nothing here\n"}, ("empty compose file",)),
    "list-at-top-level": Case({"compose.yaml": "- services\n- web\n"},
                              ("compose.yaml", "must be a mapping"), where="1:1"),
    "scalar-at-top-level": Case({"compose.yaml": "hello\n"}, ("compose.yaml", "must be a mapping"),
                                where="1:1"),
    "trailing-empty-document": Case({"compose.yaml": "services:\n  web:\n    image: x\n---\n"},
                                    ("top-level object must be a mapping",), where="4:1"),
    "empty-document-first": Case({"compose.yaml": "---\n---\nservices:\n  web:\n"
                                                  "    image: x\n"},
                                 ("top-level object must be a mapping",), where="1:1"),
    "unknown-anchor": Case({"compose.yaml": "services:\n  web: *nothing\n"},
                           ('undefined alias "nothing"',), where="2:8"),
    # -- schema ------------------------------------------------------------------------
    "unknown-key-typo": Case(svc("imag: x"), ("services.web", 'unknown key "imag"',
                                              'did you mean "image"'), where="4:5"),
    "unknown-top-level-key": Case({"compose.yaml": "servics:\n  web:\n    image: x\n"},
                                  ('unknown key "servics"', '"services"'), where="1:1"),
    "services-is-a-list": Case({"compose.yaml": "services:\n  - web\n"},
                               ("services", "must be a mapping"), where="2:3"),
    "wrong-type-image": Case({"compose.yaml": "services:\n  web:\n    image: [a]\n"},
                             ("services.web.image", "must be a string"), where="3:12"),
    "ports-not-a-list": Case(svc("ports: {a: 1}"), ("services.web.ports", "must be a list"),
                             where="4:12"),
    "bad-port": Case(svc("ports:\n  - 8080:80\n  - '80:abc'"),
                     ("services.web.ports[1]", '"80:abc" is not a valid port'), where="6:9"),
    "bad-port-protocol": Case(svc("ports: ['80/xyz']"),
                              ("services.web.ports[0]", "protocol"), where="4:13"),
    "bad-port-range": Case(svc("ports: ['8000-8001:80-82']"),
                           ("services.web.ports[0]", "differ in length"), where="4:13"),
    "bad-duration": Case(svc("healthcheck:\n  test: [CMD, 'true']\n  interval: 10x"),
                         ("services.web.healthcheck.interval", '"10x" is not a valid duration'),
                         where="6:17"),
    "duration-is-a-number": Case(svc("stop_grace_period: 10"),
                                 ("services.web.stop_grace_period", "must be a string"),
                                 where="4:24"),
    "bad-size": Case(svc("mem_limit: 10q"),
                     ("services.web.mem_limit", '"10q" is not a valid byte size'),
                     where="4:16"),
    "bad-shm-size": Case(svc("shm_size: lots"),
                         ("services.web.shm_size", "not a valid byte size"), where="4:15"),
    "bad-volume-spec": Case(svc("volumes: ['a:b:c:d']"),
                            ("services.web.volumes[0]", "not a valid volume"), where="4:15"),
    "bad-enum": Case(svc("depends_on:\n  db: {condition: service_ready}\n"),
                     ("services.web.depends_on.db.condition", '"service_ready"'),
                     where="5:23"),
    "missing-required-key": Case(svc("depends_on:\n  db: {required: true}"),
                                 ("services.web.depends_on.db", 'missing required key '
                                  '"condition"'), where="5:11"),
    "invalid-service-name": Case({"compose.yaml": "services:\n  'we b':\n    image: x\n"},
                                 ("services", 'invalid name "we b"'), where="2:3"),
    "container-name-pattern": Case(svc("container_name: '-x'"),
                                   ("services.web.container_name", '"-x" is not valid'),
                                   where="4:21"),
    # -- interpolation and env files ---------------------------------------------------
    "missing-required-variable": Case(svc("environment:\n  A: ${NEEDED:?set NEEDED please}"),
                                      ("services.web.environment.A",
                                       "required variable NEEDED is missing a value: "
                                       "set NEEDED please"), where="5:10"),
    "invalid-interpolation": Case(svc("labels:\n  a: 'x ${ y'"),
                                  ("invalid interpolation format", "services.web.labels.a"),
                                  where="5:10"),
    "missing-env-file": Case(svc("env_file: [missing.env]"),
                             ("services.web.env_file[0]", "missing.env", "not found"),
                             where="4:16"),
    "missing-env-file-long-syntax": Case(
        {**svc("env_file:\n  - path: ok.env\n  - path: no.env"), "ok.env": "A=1\n"},
        ("services.web.env_file[1]", "no.env", "not found"), where="6:9"),
    "unreadable-env-file": Case({**svc("env_file: [conf.env]"), "conf.env/x": "A=1\n"},
                                ("services.web.env_file[0]", "conf.env", "is a directory"),
                                where="4:16"),
    "missing-dotenv-file-flag": Case(svc(""), ("nope.env",), args=("--env-file", "nope.env")),
    "missing-compose-file-flag": Case(svc(""), ("other.yaml",), args=("-f", "other.yaml")),
    # -- semantics ---------------------------------------------------------------------
    "depends-on-cycle": Case({"compose.yaml": "services:\n  web:\n    image: x\n    "
                                              "depends_on: [api]\n  api:\n    image: x\n"
                                              "    depends_on: [web]\n"},
                             ("dependency cycle detected: api -> web -> api",)),
    "self-dependency": Case(svc("depends_on: [web]"),
                            ("dependency cycle detected: web -> web",)),
    "extends-cycle": Case({"compose.yaml": "services:\n  a:\n    image: x\n    extends: b\n"
                                           "  b:\n    image: x\n    extends: a\n"},
                          ("services.a.extends", "Circular reference", "extends b",
                           "extends a"), where="4:14"),
    "extends-unknown-service": Case(svc("extends: nothere"), ("nothere",)),
    "include-cycle": Case({"compose.yaml": "include: [compose.yaml]\nservices:\n  web:\n"
                                           "    image: x\n"}, ("include[0]", "include cycle"),
                          where="1:11"),
    "undefined-dependency": Case(svc("depends_on: [db]"),
                                 ('service "web" depends on undefined service "db"',),
                                 where="4:17"),
    "undefined-network": Case(svc("networks: [front]"),
                              ("services.web.networks", "undefined network front")),
    "undefined-volume": Case(svc("volumes: ['data:/data']"),
                             ("services.web.volumes[0]", "undefined volume data"),
                             where="4:15"),
    "undefined-secret": Case(svc("secrets: [token]"),
                             ("services.web.secrets[0]", "undefined secret token"),
                             where="4:15"),
    "network-mode-unknown-service": Case(svc("network_mode: service:db"),
                                         ("services.web.network_mode",
                                          'depends on undefined service "db"'), where="4:5"),
    "container-name-with-scale": Case(svc("container_name: fixed\nscale: 2"),
                                      ("services.web.scale", "container_name"), where="5:5"),
    "no-image-no-build": Case({"compose.yaml": "services:\n  web:\n    command: [x]\n"},
                              ('service "web" has neither an image nor a build context',),
                              where="2:3"),
}


def write_project(root: Path, case: Case) -> None:
    for name, content in case.files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def argv(case: Case) -> list[str]:
    return ["-p", "malformed", *case.args, "config"]


def run_in_process(tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`pycompose config` through compose.cli.main.main, in a clean environment."""
    from compose.cli.main import main

    write_project(tmp_path, case)
    path = os.environ.get("PATH", "/usr/bin:/bin")
    for key in list(os.environ):
        if not key.startswith("PYTEST_"):
            monkeypatch.delenv(key)
    for key, value in {"PATH": path, "HOME": str(tmp_path), **case.env}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv(case))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def check_one_clear_line(tmp_path: Path, case: Case, code: int, out: str, err: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err and "internal error" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert out == ""
    position = 0
    for part in case.expected:
        found = line.find(part, position)
        assert found >= 0, f"{part!r} not in {line!r}"
        position = found + len(part)
    if case.where is not None:
        assert line.startswith(f"{tmp_path / 'compose.yaml'}:{case.where}: ") or \
            line.startswith(f"compose.yaml:{case.where}: "), line


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_project_gives_one_clear_line(tmp_path: Path, name: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    code, out, err = run_in_process(tmp_path, case, monkeypatch, capsys)
    check_one_clear_line(tmp_path, case, code, out, err)


@pytest.mark.parametrize("name", ["unknown-key-typo", "binary-garbage", "depends-on-cycle"])
def test_the_real_command_in_its_own_process(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    write_project(tmp_path, case)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "compose.cli.main", *argv(case)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    check_one_clear_line(tmp_path, case, done.returncode, done.stdout, done.stderr)


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
