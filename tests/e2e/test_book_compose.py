"""The book's Compose scenarios (seed-inventory section 8.5, E1-E9) on the book's
four-service project with busybox stand-ins, driven through the real `pycompose` command.

Adaptations, each for the test's speed or isolation on a shared machine: host ports come
from `${ROCKETCHAT_HOST_PORT:-3000}`/`${HUBOT_HOST_PORT:-3001}` (free ports in the tests),
and mongo's health check runs every second (Docker's default interval is 30 s).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.book_fixtures import BASE, Pyc, free_port, http_get, pyc, wait_for, write_files

pytestmark = [pytest.mark.root, pytest.mark.e2e]
__all__ = ["pyc"]

HEALTHCHECK_SCRIPT = ("#!/bin/sh\ntest -f /tmp/ready && "
                      "wget -q -O /dev/null http://127.0.0.1:27017/ready || exit 1\n")
MONGO_DOCKERFILE = f"""\
FROM {BASE}
COPY docker-healthcheck /usr/local/bin/
HEALTHCHECK CMD ["docker-healthcheck"]
CMD ["sh", "-c", "sleep 1; touch /tmp/ready; exec httpd -f -p 27017 -h /tmp"]
"""

COMPOSE = """\
version: '3'
services:
  mongo:
    build:
      context: ../mongodb/docker
    image: spkane/mongo:4.4
    restart: unless-stopped
    healthcheck:
      interval: 1s
    environment:
      MONGODB_REPLICA_SET_NAME: rs0
      MONGODB_PORT_NUMBER: 27017
      MONGODB_ENABLE_JOURNAL: "true"
      ALLOW_EMPTY_PASSWORD: "yes"
    networks:
      - botnet
  rocketchat:
    image: busybox:local
    restart: unless-stopped
    labels:
      traefik.enable: "true"
      traefik.http.routers.rocketchat.rule: Host(`127.0.0.1`)
    volumes:
      - "../rocketchat/data/uploads:/app/uploads"
    environment:
      ROOT_URL: http://127.0.0.1:3000
      PORT: 3000
      MONGO_URL: "mongodb://mongo:27017/rocketchat?replicaSet=rs0"
    command: ["sh", "-c", "wget -qO /app/uploads/mongo.txt http://mongo:27017/ready && echo SERVER RUNNING && exec httpd -f -p 3000 -h /app/uploads"]
    depends_on:
      mongo:
        condition: service_healthy
    ports:
      - ${ROCKETCHAT_HOST_PORT:-3000}:3000
    networks:
      - botnet
  zmachine:
    image: busybox:local
    restart: unless-stopped
    command: ["httpd", "-f", "-p", "80", "-h", "/root/saves"]
    volumes:
      - "../zmachine/saves:/root/saves"
      - "../zmachine/zcode:/root/zcode"
    depends_on:
      - rocketchat
    expose:
      - "80"
    networks:
      - botnet
  hubot:
    image: busybox:local
    restart: unless-stopped
    volumes:
      - "../hubot/scripts:/home/hubot/scripts"
    environment:
      HUBOT_ALIAS: ". "
      ROCKETCHAT_URL: "rocketchat:3000"
      ROCKETCHAT_ROOM: ""
      ROCKETCHAT_PASSWORD: "${HUBOT_ROCKETCHAT_PASSWORD:-bot-pw!}"
      HUBOT_ZMACHINE_SERVER: "http://zmachine:80"
    command: ["sh", "-c", "env | sort > /home/hubot/scripts/env.txt; until wget -qO- http://zmachine:80/ >/dev/null; do sleep 0.2; done; echo zmachine-ok; exec httpd -f -p 8080 -h /home/hubot/scripts"]
    depends_on:
      - zmachine
    ports:
      - ${HUBOT_HOST_PORT:-3001}:8080
    networks:
      - botnet
networks:
  botnet:
    driver: bridge
"""


def make_book_tree(base: Path, project: str = "compose") -> Path:
    """The book's layout: <project>/docker-compose.yaml and its sibling directories."""
    write_files(base, {
        f"{project}/docker-compose.yaml": COMPOSE,
        "mongodb/docker/Dockerfile": MONGO_DOCKERFILE,
        "mongodb/docker/docker-healthcheck": HEALTHCHECK_SCRIPT,
        "rocketchat/data/uploads/.keep": "",
        "zmachine/saves/index.html": "<p>zmachine</p>\n",
        "zmachine/zcode/.keep": "",
        "hubot/scripts/.keep": "",
    })
    (base / "mongodb/docker/docker-healthcheck").chmod(0o755)
    return base / project


class Project:
    """`pyc` in a project directory, with free host ports in its environment."""

    def __init__(self, pyc: Pyc, directory: Path) -> None:
        self.pyc = pyc
        self.directory = directory
        self.ports = {"ROCKETCHAT_HOST_PORT": str(free_port()),
                      "HUBOT_HOST_PORT": str(free_port())}

    def __call__(self, *args: str, code: int | None = 0, env: dict[str, str] | None = None,
                 timeout: float = 120) -> tuple[str, str]:
        proc = self.pyc("--progress", "plain", *args, cwd=self.directory, code=code,
                        env={**self.ports, **(env or {})}, timeout=timeout)
        return proc.stdout, proc.stderr

    def fails(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = self.pyc.fails("--progress", "plain", *args, cwd=self.directory,
                              env={**self.ports, **(env or {})})
        return proc.stderr

    def down(self) -> None:
        self("down", "-v", "--remove-orphans", "-t", "0", code=None)


@pytest.fixture
def book(pyc: Pyc, tmp_path: Path) -> Iterator[Project]:
    project = Project(pyc, make_book_tree(tmp_path))
    try:
        yield project
    finally:
        project.down()


def cinspect(pyc: Pyc, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(pyc("container", "inspect", name).stdout)[0]  # type: ignore[no-any-return]


def test_e1_full_lifecycle(book: Project, pyc: Pyc) -> None:
    out, _ = book("config")
    assert 'PORT: "3000"' in out and 'MONGODB_PORT_NUMBER: "27017"' in out
    assert f"source: {book.directory.parent / 'rocketchat/data/uploads'}" in out
    assert "HUBOT_ALIAS: '. '" in out

    out, err = book("build")
    assert "naming to docker.io/spkane/mongo:4.4" in out + err
    assert "Service mongo  Built" in out + err
    assert pyc("image", "inspect", "-f", "{{.Id}}", "spkane/mongo:4.4").stdout.startswith(
        "sha256:")

    began = time.monotonic()
    out, err = book("up", "-d")
    assert time.monotonic() - began < 20  # mongo's `interval: 1s` applies to the image's test
    text = out + err
    for line in ("Network compose_botnet  Created", "Container compose-mongo-1  Healthy",
                 "Container compose-rocketchat-1  Started",
                 "Container compose-zmachine-1  Started", "Container compose-hubot-1  Started"):
        assert line in text, text
    assert text.index("compose-mongo-1  Healthy") < text.index("compose-rocketchat-1  Started")

    started = {s: cinspect(pyc, f"compose-{s}-1")["State"]["StartedAt"]
               for s in ("mongo", "rocketchat", "zmachine", "hubot")}
    assert started["mongo"] < started["rocketchat"] <= started["zmachine"] <= started["hubot"]
    mongo_health = cinspect(pyc, "compose-mongo-1")["State"]["Health"]
    first_ok = min(e["End"] for e in mongo_health["Log"] if e["ExitCode"] == 0)
    assert started["rocketchat"] >= first_ok[:26]

    rocket_port = int(book.ports["ROCKETCHAT_HOST_PORT"])
    assert http_get(rocket_port, "/mongo.txt") == ""
    uploads = book.directory.parent / "rocketchat/data/uploads"
    assert (uploads / "mongo.txt").exists()
    assert "80/tcp" in pyc("container", "ls", "--format", "{{.Names}} {{.Ports}}").stdout
    assert "->80/tcp" not in pyc("container", "ls", "--format", "{{.Ports}}").stdout

    env_txt = book.directory.parent / "hubot/scripts/env.txt"
    assert wait_for(env_txt.exists, 10)
    lines = env_txt.read_text().splitlines()
    assert "HUBOT_ALIAS=. " in lines and "ROCKETCHAT_ROOM=" in lines
    assert "ROCKETCHAT_PASSWORD=bot-pw!" in lines
    assert wait_for(lambda: "zmachine-ok" in book("logs", "hubot")[0], 10)

    rocket = cinspect(pyc, "compose-rocketchat-1")
    assert rocket["Config"]["Labels"]["traefik.http.routers.rocketchat.rule"] == \
        "Host(`127.0.0.1`)"
    assert rocket["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

    logs, _ = book("logs")
    assert re.search(r"^rocketchat-1\s+\| SERVER RUNNING$", logs, re.M), logs
    assert "SERVER RUNNING" in book("logs", "rocketchat")[0]
    top, _ = book("top")
    assert [b.splitlines()[0] for b in top.strip().split("\n\n")] == [
        "compose-hubot-1", "compose-mongo-1", "compose-rocketchat-1", "compose-zmachine-1"]
    assert book("exec", "-T", "mongo", "sh", "-c", "echo $MONGODB_REPLICA_SET_NAME")[0] \
        == "rs0\n"

    text = "".join(book("stop", "-t", "1", "zmachine"))
    assert "Container compose-zmachine-1  Stopped" in text
    text = "".join(book("start", "zmachine"))
    assert "Container compose-zmachine-1  Started" in text
    text = "".join(book("pause"))
    assert text.count("  Paused") == 4
    text = "".join(book("unpause"))
    assert text.count("  Unpaused") == 4
    before = cinspect(pyc, "compose-hubot-1")["State"]["StartedAt"]
    text = "".join(book("restart", "-t", "1", "hubot"))
    assert "Container compose-hubot-1  Started" in text
    assert cinspect(pyc, "compose-hubot-1")["State"]["StartedAt"] > before

    book("exec", "-T", "mongo", "touch", "/written-inside")
    text = "".join(book("down", "-t", "1"))
    removed = [m.group(1) for m in re.finditer(r"Container compose-(\w+)-1  Removed", text)]
    assert removed == ["hubot", "zmachine", "rocketchat", "mongo"], text
    assert text.index("Network compose_botnet  Removed") > text.index("compose-mongo-1  Removed")
    assert (uploads / "mongo.txt").exists()
    assert pyc("container", "ls", "-a", "-q").stdout == ""

    book("up", "-d", "mongo")
    probe = book("exec", "-T", "mongo", "ls", "/written-inside", code=None)
    assert "No such file" in probe[1]


def test_e2_config_validation(book: Project) -> None:
    compose = book.directory / "docker-compose.yaml"
    good = compose.read_text()
    compose.write_text(good.replace("    build:\n      context", "    builder:\n      context"))
    err = book.fails("config")
    assert "services.mongo" in err and "builder" in err and "Traceback" not in err
    compose.write_text(good.replace("  zmachine:\n", "  zmachine: [\n", 1))
    err = book.fails("config")
    assert re.search(r"docker-compose\.yaml:\d+:\d+", err), err
    compose.write_text(good + "bogus_top_level: 1\n")
    assert "bogus_top_level" in book.fails("config")
    compose.write_text(good.replace("      - zmachine\n", "      - nosuchservice\n"))
    assert "nosuchservice" in book.fails("config")
    compose.write_text(good.replace("    command: [\"httpd\"",
                                    "    depends_on: [hubot]\n    command: [\"httpd\"", 1)
                       .replace("    depends_on:\n      - rocketchat\n", ""))
    err = book.fails("config")
    assert "cycle" in err.lower() and "hubot" in err and "zmachine" in err, err
    compose.write_text(good)


DEFAULTS = """\
services:
  hubot:
    image: busybox:local
    environment:
      ROCKETCHAT_PASSWORD: ${HUBOT_ROCKETCHAT_PASSWORD:-bot-pw!}
      DASH_ONLY: ${HUBOT_ROCKETCHAT_PASSWORD-bot-pw!}
      ROCKETCHAT_ROOM: ${HUBOT_ROCKETCHAT_ROOM:-}
      ROOT_URL: ${ROCKETCHAT_ROOT_URL:-http://127.0.0.1:${HOST_PORT:-3000}}
      MONGO_URL: "mongodb://mongo:27017/rocketchat\\
        ?replicaSet=rs0"
      LITERAL: $$HOME
      UNSET: ${NOT_SET_ANYWHERE}
"""


def environment_of(config: str) -> dict[str, str]:
    import yaml

    doc = yaml.safe_load(config)
    return {k: "" if v is None else str(v)
            for k, v in doc["services"]["hubot"]["environment"].items()}


def test_e3_interpolation_defaults(book: Project) -> None:
    write_files(book.directory, {"docker-compose-defaults.yaml": DEFAULTS})
    f = ("-f", "docker-compose-defaults.yaml", "config")
    out, err = book(*f)
    env = environment_of(out)
    assert env["ROCKETCHAT_PASSWORD"] == "bot-pw!" and env["DASH_ONLY"] == "bot-pw!"
    assert env["ROCKETCHAT_ROOM"] == "" and env["ROOT_URL"] == "http://127.0.0.1:3000"
    assert env["MONGO_URL"] == "mongodb://mongo:27017/rocketchat?replicaSet=rs0"
    # `config` re-escapes a literal `$` as Compose v2 does (the reference prints `$$HOME`)
    assert env["LITERAL"] == "$$HOME" and env["UNSET"] == ""
    assert "NOT_SET_ANYWHERE" in err and "not set" in err
    env = environment_of(book(*f, env={"HUBOT_ROCKETCHAT_PASSWORD": "my-unique-pw",
                                       "HOST_PORT": "4000"})[0])
    assert env["ROCKETCHAT_PASSWORD"] == "my-unique-pw" and env["DASH_ONLY"] == "my-unique-pw"
    assert env["ROOT_URL"] == "http://127.0.0.1:4000"
    env = environment_of(book(*f, env={"HUBOT_ROCKETCHAT_PASSWORD": ""})[0])
    assert env["ROCKETCHAT_PASSWORD"] == "bot-pw!" and env["DASH_ONLY"] == ""


def test_e4_mandatory_values(book: Project, pyc: Pyc) -> None:
    compose = book.directory / "docker-compose-env.yaml"
    compose.write_text(COMPOSE.replace(
        "${HUBOT_ROCKETCHAT_PASSWORD:-bot-pw!}",
        "${HUBOT_ROCKETCHAT_PASSWORD:?HUBOT_ROCKETCHAT_PASSWORD must be set!}"))
    err = book.fails("-f", "docker-compose-env.yaml", "up", "-d")
    assert "required variable HUBOT_ROCKETCHAT_PASSWORD is missing" in err
    assert "HUBOT_ROCKETCHAT_PASSWORD must be set!" in err
    assert len(err.strip().splitlines()) == 1
    assert pyc("container", "ls", "-a", "-q").stdout == ""
    assert "compose_botnet" not in pyc("network", "ls").stdout
    out, _ = book("-f", "docker-compose-env.yaml", "config",
                  env={"HUBOT_ROCKETCHAT_PASSWORD": "set-now"})
    assert environment_of(out)["ROCKETCHAT_PASSWORD"] == "set-now"


def test_e5_dotenv_and_precedence(book: Project, tmp_path: Path) -> None:
    dotenv = book.directory / ".env"
    dotenv.write_text("# the bot's password\n\nHUBOT_ROCKETCHAT_PASSWORD=th2l@stPW!\n"
                      "QUOTED=\"in quotes\"\n")
    compose = book.directory / "docker-compose.yaml"
    compose.write_text(compose.read_text().replace(
        '      HUBOT_ALIAS: ". "\n', '      HUBOT_ALIAS: ". "\n      QUOTED: ${QUOTED}\n'))
    env = environment_of(book("config")[0])
    assert env["ROCKETCHAT_PASSWORD"] == "th2l@stPW!"
    # Compose v2 strips the quotes around a .env value; pycompose does the same
    assert env["QUOTED"] == "in quotes"
    env = environment_of(book("config", env={"HUBOT_ROCKETCHAT_PASSWORD": "shell-pw"})[0])
    assert env["ROCKETCHAT_PASSWORD"] == "shell-pw"

    # with -f from elsewhere, the .env of the project directory (the file's) is used,
    # not the one of the current directory
    elsewhere = write_files(tmp_path / "elsewhere",
                            {".env": "HUBOT_ROCKETCHAT_PASSWORD=from-cwd\n"})
    out = book.pyc("-f", str(compose), "config", cwd=elsewhere, env=book.ports).stdout
    assert environment_of(out)["ROCKETCHAT_PASSWORD"] == "th2l@stPW!"
    dotenv.unlink()
    assert environment_of(book("config")[0])["ROCKETCHAT_PASSWORD"] == "bot-pw!"


def test_e6_project_naming(pyc: Pyc, tmp_path: Path) -> None:
    first = Project(pyc, make_book_tree(tmp_path, "compose"))
    stage_dir = tmp_path / "stage"
    stage_dir.mkdir()
    shutil.copy(first.directory / "docker-compose.yaml", stage_dir)
    second = Project(pyc, stage_dir)
    try:
        for p in (first, second):
            p("up", "-d", "zmachine", "--no-deps")
        names = set(pyc("container", "ls", "--format", "{{.Names}}").stdout.split())
        assert {"compose-zmachine-1", "stage-zmachine-1"} <= names
        nets = pyc("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert {"compose_botnet", "stage_botnet"} <= set(nets)
        first("down", "-t", "1")
        names = set(pyc("container", "ls", "--format", "{{.Names}}").stdout.split())
        assert "stage-zmachine-1" in names and "compose-zmachine-1" not in names
        assert "stage_botnet" in pyc("network", "ls", "--format", "{{.Name}}").stdout
    finally:
        first.down()
        second.down()


def test_e7_depends_on_semantics(book: Project, pyc: Pyc) -> None:
    compose = book.directory / "docker-compose.yaml"
    compose.write_text("""\
services:
  sick:
    image: busybox:local
    command: ["sleep", "600"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      retries: 1
  slow:
    image: busybox:local
    command: ["sleep", "600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 30s
  waits:
    image: busybox:local
    command: ["sleep", "600"]
    depends_on:
      sick:
        condition: service_healthy
  quick:
    image: busybox:local
    command: ["sleep", "600"]
    depends_on:
      - slow
  flaky:
    image: busybox:local
    restart: unless-stopped
    command: ["sh", "-c", "sleep 1; exit 3"]
""")
    started = time.monotonic()
    out, err = book("up", "-d", "quick", "flaky")
    assert time.monotonic() - started < 20
    assert cinspect(pyc, "compose-slow-1")["State"]["Health"]["Status"] == "starting"
    assert cinspect(pyc, "compose-quick-1")["State"]["Running"] is True

    err = book.fails("up", "-d", "waits")
    assert "sick" in err and "unhealthy" in err, err
    running = pyc("container", "ls", "--format", "{{.Names}}").stdout.split()
    assert "compose-waits-1" not in running and "compose-sick-1" in running
    assert cinspect(pyc, "compose-sick-1")["RestartCount"] == 0

    assert wait_for(lambda: cinspect(pyc, "compose-flaky-1")["RestartCount"] >= 1, 15, 0.3)


def test_e8_compose_imperative_equivalence(book: Project, pyc: Pyc) -> None:
    book("up", "-d")
    parent = book.directory.parent
    expected_ports = {"compose-rocketchat-1": ("3000/tcp", book.ports["ROCKETCHAT_HOST_PORT"]),
                      "compose-hubot-1": ("8080/tcp", book.ports["HUBOT_HOST_PORT"])}
    for service in ("mongo", "rocketchat", "zmachine", "hubot"):
        doc = cinspect(pyc, f"compose-{service}-1")
        assert doc["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert list(doc["NetworkSettings"]["Networks"]) == ["compose_botnet"]
        labels = doc["Config"]["Labels"]
        assert labels["com.docker.compose.project"] == "compose"
        assert labels["com.docker.compose.service"] == service
        for m in doc["Mounts"]:
            assert m["Type"] == "bind" and Path(m["Source"]).is_absolute()
            assert Path(m["Source"]).is_relative_to(parent)
        if doc["Name"].lstrip("/") in expected_ports:
            port, host = expected_ports[doc["Name"].lstrip("/")]
            assert doc["HostConfig"]["PortBindings"][port][0]["HostPort"] == host
    env = cinspect(pyc, "compose-rocketchat-1")["Config"]["Env"]
    assert "PORT=3000" in env and "ROOT_URL=http://127.0.0.1:3000" in env
    rows = [line.split() for line in pyc("network", "ls").stdout.splitlines()]
    assert any(r[1:] == ["compose_botnet", "bridge", "local"] for r in rows)


def test_e9_build_and_image_interplay(book: Project, pyc: Pyc) -> None:
    book("build")
    out, err = book("build")
    assert "CACHED" in out + err
    compose = book.directory / "docker-compose.yaml"
    good = compose.read_text()
    # a registry on a closed loopback port: offline, and no traffic leaves the machine
    missing = f"127.0.0.1:{free_port()}/example/not-here:1.0"
    compose.write_text(good.replace("  zmachine:\n    image: busybox:local",
                                    f"  zmachine:\n    image: {missing}"))
    err = book.fails("up", "-d", "zmachine", "--no-deps")
    last = err.strip().splitlines()[-1]
    assert missing in last and "Connection refused" in last, err
    assert "zmachine" not in pyc("container", "ls", "-a", "--format", "{{.Names}}").stdout
    compose.write_text(good)

    book("up", "-d", "mongo")
    first = cinspect(pyc, "compose-mongo-1")["Id"]
    book("up", "-d", "mongo")
    assert cinspect(pyc, "compose-mongo-1")["Id"] == first
    dockerfile = book.directory.parent / "mongodb/docker/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "ENV EDITED=1\n")
    book("build", "mongo")
    out, err = book("up", "-d", "-t", "1", "mongo")
    assert "Recreated" in out + err
    doc = cinspect(pyc, "compose-mongo-1")
    assert doc["Id"] != first and "EDITED=1" in pyc(
        "container", "exec", "compose-mongo-1", "env").stdout
