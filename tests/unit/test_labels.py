"""The config hash equals `docker compose config --hash` (values recorded from v2.40.3)."""

from __future__ import annotations

from pathlib import Path

from compose import labels as L

PLAIN = {"command": None, "entrypoint": None, "image": "busybox", "networks": {"default": None}}
# `config --hash '*'` of `services: {a: {image: busybox}}` with the reference binary.
PLAIN_HASH = "2afd7866203dca40993313263173003833e9de9c3ad83f2f59484e32a5605234"
DEPLOYED = {"command": None, "deploy": {"replicas": 2, "resources": {"limits": {
    "cpus": 0.5, "memory": "104857600", "pids": 10}}, "restart_policy": {
    "condition": "on-failure", "max_attempts": 3}, "placement": {}}, "entrypoint": None,
    "healthcheck": {"disable": True}, "image": "busybox", "network_mode": "host"}
DEPLOYED_HASH = "ab3a5b8490eb0f78eec657b1fb45472ca7223f66fb9a625231dcd0fdfa7a5923"


def test_hash_matches_the_reference() -> None:
    assert L.service_hash(PLAIN) == PLAIN_HASH
    assert L.service_hash(DEPLOYED) == DEPLOYED_HASH


def test_blanked_fields_do_not_change_the_hash() -> None:
    noisy = {**PLAIN, "build": {"context": "/x"}, "pull_policy": "always", "scale": 3,
             "depends_on": {"db": {"condition": "service_started"}}, "profiles": ["p"]}
    assert L.service_hash(noisy) == PLAIN_HASH
    assert L.service_hash({**DEPLOYED, "deploy": {**DEPLOYED["deploy"], "replicas": 9}}) \
        == DEPLOYED_HASH


def test_any_other_change_does() -> None:
    assert L.service_hash({**PLAIN, "image": "busybox:1"}) != PLAIN_HASH
    assert L.service_hash({**PLAIN, "environment": {"A": "1"}}) != PLAIN_HASH


def test_go_json_escapes_like_encoding_json() -> None:
    assert L.go_json({"a": "<&>", "b": 1.0, "c": [0.5]}) == \
        '{"a":"\\u003c\\u0026\\u003e","b":1,"c":[0.5]}'


def test_depends_on_label_and_filter() -> None:
    svc = {"depends_on": {"db": {"condition": "service_healthy", "restart": True},
                          "cache": {"condition": "service_started"}}}
    assert L.depends_on_label(svc) == "db:service_healthy:true,cache:service_started:false"
    assert L.project_filter("demo", service="web") == {
        "com.docker.compose.project": "demo", "com.docker.compose.service": "web"}


# A project with ports, a health check and depends_on; hashes from `config --hash '*'`.
HASHED_PROJECT = """\
services:
  api:
    image: pycompose-busybox
    command: ["sh", "-c", "mkdir -p /www && echo api-ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    healthcheck: {test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"], interval: 1s, start_period: 5s, start_interval: 1s}
  web:
    image: pycompose-busybox
    command: ["sh", "-c", "exec httpd -f -p 8080 -h /tmp"]
    ports: ["18080:8080"]
    depends_on:
      api: {condition: service_healthy}
"""
REFERENCE_HASHES = {"api": "18a0eac55fa67c0f1bc37cf664dc22955656a091b3797472642b301839ed0258",
                    "web": "beaad1f28fa65abd61582819d3ac20a66e1fa963720b9f7d665114d6ae327653"}


def test_loaded_project_hashes_match_the_reference(tmp_path: Path) -> None:
    from compose.loader import LoadOptions, load

    project = tmp_path / "s2"
    project.mkdir()
    (project / "compose.yaml").write_text(HASHED_PROJECT)
    loaded = load(LoadOptions(workdir=str(project), environ={}))
    assert {name: L.service_hash(svc) for name, svc in loaded.data["services"].items()} == \
        REFERENCE_HASHES
