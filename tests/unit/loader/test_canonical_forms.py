"""Short -> long syntax and the reference's value forms (ports, volumes, commands,
durations, sizes) and its YAML quoting; every expectation was produced by the
reference (`docker compose` v2.40.3) on the same input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from compose.loader.canonical_ports import parse_port_spec
from compose.loader.canonical_values import format_duration, parse_bytes, parse_duration_ns
from compose.loader.canonical_volumes import parse_volume
from compose.loader.render import render_json, render_yaml
from compose.loader.shellsplit import split_command
from tests.unit.loader.loadhelp import service


@pytest.mark.parametrize("spec, expected", [
    ("9000", [{"mode": "ingress", "target": 9000, "protocol": "tcp"}]),
    ("127.0.0.1:8000-8001:80-81/udp", [
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8000",
         "protocol": "udp"},
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 81, "published": "8001",
         "protocol": "udp"}]),
    ("80-81:8080", [{"mode": "ingress", "target": 8080, "published": "80-81",
                     "protocol": "tcp"}]),
    ("[::1]:53:53/udp", [{"mode": "ingress", "host_ip": "::1", "target": 53,
                          "published": "53", "protocol": "udp"}]),
])
def test_ports(spec: str, expected: list[dict[str, Any]]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize("spec", ["80-82:80-81", "a:80", "80/xyz", "1.2.3:80:80"])
def test_bad_ports(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_port_spec(spec)


@pytest.mark.parametrize("spec, expected", [
    ("./a:/a:ro", {"type": "bind", "source": "./a", "target": "/a", "read_only": True,
                   "bind": {"create_host_path": True}}),
    ("/anon", {"type": "volume", "target": "/anon", "volume": {}}),
    ("named:/n:ro,z", {"type": "volume", "source": "named", "target": "/n",
                       "read_only": True, "bind": {"selinux": "z"}, "volume": {}}),
    # a one-letter source reads as a Windows drive, as in the reference
    ("v:/v:nocopy", {"type": "bind", "source": "v:/v", "target": "nocopy",
                     "bind": {"create_host_path": True}}),
])
def test_volumes(spec: str, expected: dict[str, Any]) -> None:
    assert parse_volume(spec) == expected


def test_volume_empty_section() -> None:
    with pytest.raises(ValueError, match="empty section between colons"):
        parse_volume(":/text_file.txt")


@pytest.mark.parametrize("text, expected", [
    ('echo "a b" && echo c', ["echo", "a b"]),  # stops at the operator, as the reference
    ("sh -c 'echo $$X'", ["sh", "-c", "echo $$X"]),
    (r"a\ b 'c d' \"e", ["a b", "c d", '"e']),
    ("", []),
])
def test_split_command(text: str, expected: list[str]) -> None:
    assert split_command(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("90s", "1m30s"), ("1h", "1h0m0s"), ("500ms", "500ms"), ("1m", "1m0s"),
    ("1.5s", "1.5s"), ("0", "0s"), ("2h45m", "2h45m0s"), ("10us", "10µs"),
])
def test_durations(text: str, expected: str) -> None:
    assert format_duration(parse_duration_ns(text)) == expected


@pytest.mark.parametrize("text, expected", [
    ("512M", 536870912), ("64m", 67108864), ("1g", 1073741824), ("1024", 1024), (2048, 2048),
])
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


SERVICE = """\
services:
  web:
    image: busybox
    command: ""
    environment: {A: 1.5, B: true, C: null, D: 010}
    labels: [x=1, y]
    extra_hosts: {h: [1.1.1.1, 2.2.2.2], g: "3.3.3.3"}
    healthcheck: {test: curl x, interval: 90s, timeout: 1h}
    memswap_limit: 512M
    cpu_shares: "512"
    read_only: "true"
    init: false
    privileged: false
    gpus: all
    expose: [80, "90-91"]
    ulimits: {nofile: {soft: 1, hard: 2}, nproc: 65535}
    secrets: [{source: s, mode: 0440}]
secrets:
  s: {file: ./s.txt}
"""


def test_service_values_in_reference_form(tmp_path: Path) -> None:
    got = service(tmp_path, {"compose.yaml": SERVICE}, "web")
    assert got == {
        "command": [], "cpu_shares": 512, "entrypoint": None,
        "environment": {"A": "1.5", "B": "true", "C": None, "D": "8"},
        "expose": ["80", "90-91"],
        "extra_hosts": ["g=3.3.3.3", "h=1.1.1.1", "h=2.2.2.2"],
        "gpus": [{"count": -1}],
        "healthcheck": {"test": ["CMD-SHELL", "curl x"], "timeout": "1h0m0s",
                        "interval": "1m30s"},
        "image": "busybox", "init": False, "labels": {"x": "1", "y": ""},
        "memswap_limit": "536870912", "networks": {"default": None}, "read_only": True,
        "secrets": [{"source": "s", "target": "/run/secrets/s", "mode": "0440"}],
        "ulimits": {"nofile": {"soft": 1, "hard": 2}, "nproc": 65535},
    }


def test_json_rendering_is_gos() -> None:
    text = render_json({"services": {"a": {"image": "x$y", "labels": {"k": "<&>"}}},
                        "name": "t"})
    assert text == ('{\n  "name": "t",\n  "services": {\n    "a": {\n      "image": "x$$y",\n'
                    '      "labels": {\n        "k": "\\u003c\\u0026\\u003e"\n      }\n'
                    '    }\n  }\n}')


@pytest.mark.parametrize("value, rendered", [
    ("0440", '"0440"'), ("1e3", '"1e3"'), ("~", '"~"'), ("", '""'), ("on", '"on"'),
    (" lead", "' lead'"), ("a: b", "'a: b'"), ("#x", "'#x'"), ("tab\tx", '"tab\\tx"'),
    ("yes:no", "yes:no"), ("é", "é"), ("2021-01-01", '"2021-01-01"'), ("1_000", '"1_000"'),
    ("multi\nline\n", "|\n        multi\n        line"), ("\n lead", "|2-\n\n         lead"), ("x\n\n", "|+\n        x\n"),
])
def test_yaml_quoting_as_yaml_v3(value: str, rendered: str) -> None:
    text = render_yaml({"name": "t", "services": {"a": {"environment": {"K": value}}}})
    assert f"      K: {rendered}\n" in text
    assert yaml.safe_load(text)["services"]["a"]["environment"]["K"] == value


def test_watch_paths_resolve_symbolic_links(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    files = {"compose.yaml": "services:\n  a:\n    image: x\n    develop:\n      watch:\n"
                             "        - {path: ./link, action: sync, target: /a}\n"
                             "        - {path: ./missing, action: sync, target: /b}\n"}
    watch = service(tmp_path, files, "a")["develop"]["watch"]
    assert [w["path"] for w in watch] == [str(tmp_path / "real"), str(tmp_path / "missing")]


def test_yaml_sorts_map_keys_as_yaml_v3() -> None:
    from compose.loader.render import yaml_key_order

    assert yaml_key_order(["s10", "s2", "s1", "b", "a10b", "a9b", "A"]) == \
        ["A", "a9b", "a10b", "b", "s1", "s2", "s10"]


def test_yaml_keeps_struct_field_order(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  s10: {image: x, ports: ['1:1']}\n  s2: {image: y}\n"}
    from tests.unit.loader.loadhelp import load_project

    text = render_yaml(load_project(tmp_path, files).data)
    assert text.index("  s2:") < text.index("  s10:")  # a map: natural order
    assert "      - mode: ingress\n        target: 1\n        published: \"1\"\n" in text
