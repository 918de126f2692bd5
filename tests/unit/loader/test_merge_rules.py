"""Multi-file merge: (base, override, expected) per attribute, checked against the
reference (`docker compose` v2.40.3) on the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compose.errors import SchemaError
from compose.loader.merge import enforce_unicity, merge
from tests.unit.loader.loadhelp import service

BASE = """\
services:
  web:
    image: base
    command: ["a", "b"]
    environment: {A: "1", B: "2"}
    labels: [l1=a]
    ports: ["8080:80", "9090:90"]
    volumes: ["./data:/data", "logs:/logs"]
    depends_on: [db]
    networks: [front]
    extra_hosts: ["a:1.1.1.1"]
    dns: [1.1.1.1]
    logging: {driver: json-file, options: {max-size: 1m}}
    healthcheck: {test: ["CMD", "a"], interval: 5s}
    ulimits: {nofile: {soft: 1, hard: 2}}
    build: .
    secrets: [s]
  db:
    image: postgres
    ports: ["5432:5432"]
networks:
  front: {}
volumes:
  logs: {}
secrets:
  s: {file: ./s.txt}
"""

OVERRIDE = """\
services:
  web:
    image: over
    command: ["c"]
    environment: [B=3, C=4]
    labels: {l2: b}
    ports: !reset ["8080:81"]
    volumes: ["./other:/data"]
    depends_on: {db: {condition: service_healthy}}
    networks: {front: {aliases: [w]}, back: {}}
    extra_hosts: ["b:2.2.2.2", "a:1.1.1.1"]
    dns: 8.8.8.8
    logging: {options: {max-file: "3"}}
    healthcheck: {test: ["CMD", "b"]}
    ulimits: {nofile: {soft: 5, hard: 6}}
    build: {dockerfile: Other}
    secrets: !override [s]
  db:
    ports: !override ["6543:5432"]
networks:
  back: {}
"""


@pytest.fixture
def merged(tmp_path: Path) -> dict[str, Any]:
    from tests.unit.loader.loadhelp import load_project

    loaded = load_project(tmp_path, {"compose.yaml": BASE, "compose.override.yaml": OVERRIDE})
    return loaded.data["services"]


@pytest.mark.parametrize("key, expected", [
    ("image", "over"),
    ("command", ["c"]),  # replaced, not appended
    ("environment", {"A": "1", "B": "3", "C": "4"}),  # list and map forms merge by key
    ("labels", {"l1": "a", "l2": "b"}),
    ("depends_on", {"db": {"condition": "service_healthy", "required": True}}),
    ("networks", {"back": {}, "front": {"aliases": ["w"]}}),
    ("extra_hosts", ["a=1.1.1.1", "b=2.2.2.2"]),  # duplicates dropped
    ("dns", ["1.1.1.1", "8.8.8.8"]),  # string form appended to the list
    ("logging", {"driver": "json-file", "options": {"max-file": "3", "max-size": "1m"}}),
    ("healthcheck", {"test": ["CMD", "b"], "interval": "5s"}),  # test replaced
    ("ulimits", {"nofile": {"soft": 5, "hard": 6}}),
    ("secrets", [{"source": "s", "target": "/run/secrets/s"}]),  # !override: no duplicate
])
def test_merge_per_attribute(merged: dict[str, Any], key: str, expected: Any,
                             tmp_path: Path) -> None:
    assert merged["web"][key] == expected


def test_reset_removes_the_attribute(merged: dict[str, Any]) -> None:
    assert "ports" not in merged["web"]


def test_volumes_unique_by_target(merged: dict[str, Any], tmp_path: Path) -> None:
    assert merged["web"]["volumes"] == [
        {"type": "bind", "source": str(tmp_path / "other"), "target": "/data",
         "bind": {"create_host_path": True}},
        {"type": "volume", "source": "logs", "target": "/logs", "volume": {}},
    ]


def test_build_string_merges_with_mapping(merged: dict[str, Any], tmp_path: Path) -> None:
    assert merged["web"]["build"] == {"context": str(tmp_path), "dockerfile": "Other"}


def test_override_replaces_ports(merged: dict[str, Any]) -> None:
    assert merged["db"]["ports"] == [
        {"mode": "ingress", "target": 5432, "published": "6543", "protocol": "tcp"}]


def test_ports_unique_by_published_port(tmp_path: Path) -> None:
    files = {"a.yaml": "services: {s: {image: x, ports: ['80:80', '81:81']}}\n",
             "b.yaml": "services: {s: {ports: ['80:80', '82:82']}}\n"}
    ports = service(tmp_path, files, "s", "a.yaml", "b.yaml")["ports"]
    assert [p["published"] for p in ports] == ["80", "81", "82"]


def test_logging_options_replaced_when_driver_changes(tmp_path: Path) -> None:
    files = {"a.yaml": "services: {s: {image: x, logging: {driver: a, options: {x: '1'}}}}\n",
             "b.yaml": "services: {s: {logging: {driver: b, options: {y: '2'}}}}\n"}
    logging = service(tmp_path, files, "s", "a.yaml", "b.yaml")["logging"]
    assert logging == {"driver": "b", "options": {"y": "2"}}


def test_partial_ulimit_override_is_validated(tmp_path: Path) -> None:
    # the later ulimit replaces the earlier one whole, so {soft} alone is invalid
    files = {"a.yaml": "services: {s: {image: x, ulimits: {nofile: {soft: 1, hard: 2}}}}\n",
             "b.yaml": "services: {s: {ulimits: {nofile: {soft: 5}}}}\n"}
    with pytest.raises(SchemaError, match="hard"):
        service(tmp_path, files, "s", "a.yaml", "b.yaml")


def test_merge_and_unicity_on_plain_trees() -> None:
    base = {"services": {"s": {"environment": {"A": "1"}, "cap_add": ["NET_ADMIN"],
                               "x-a": {"k": 1}}}}
    other = {"services": {"s": {"environment": ["A=2", "B=3"], "cap_add": ["NET_ADMIN"],
                                "x-a": {"j": 2}}}}
    result = enforce_unicity(merge(base, other))
    service_ = result["services"]["s"]
    assert service_["environment"] == ["A=2", "B=3"]
    assert service_["cap_add"] == ["NET_ADMIN"]
    assert service_["x-a"] == {"j": 2}  # extensions are replaced, not merged
