"""Canonical services (the reference's `config --format json` output) -> engine specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compose import labels as L
from compose.convert import (
    ProjectInfo,
    build_spec,
    container_spec,
    duration,
    network_spec,
    size,
    volume_spec,
)
from compose.errors import ConfigError
from engine.api import (
    EndpointSpec,
    Healthcheck,
    IPAMConfig,
    LogConfig,
    Mount,
    PortBinding,
    RestartPolicy,
    Ulimit,
)

# `docker compose config --format json` of a project using most service keys (v2.40.3).
RICH = json.loads((Path(__file__).parent / "data" / "lifecycle-rich.json").read_text())
INFO = ProjectInfo("ref1", "/src", ("/src/compose.yaml",), ("/src/.env",), "0.1.0")


def test_rich_service_maps_every_key() -> None:
    spec = container_spec(INFO, RICH, "web", 1)
    assert spec.name == "webc"
    assert spec.image == "busybox"
    assert spec.command == ("httpd", "-f", "-p", "80")
    assert spec.entrypoint == ("/bin/sh", "-c")
    assert spec.env == (("A", "1"), ("C", "3"))  # B: null is unset, not empty
    assert spec.cap_add == ("NET_ADMIN",) and spec.cap_drop == ("ALL",)
    assert spec.resources.cpus == 1.5 and spec.resources.cpu_shares == 512
    assert spec.resources.memory == 512 * 1024**2
    assert spec.resources.memory_swap == 1024**3 and spec.resources.pids_limit == 100
    assert spec.devices == ("/dev/null:/dev/xnull:rwm",)
    assert spec.dns == ("8.8.8.8",) and spec.extra_hosts == ("somehost=1.2.3.4",)
    assert spec.healthcheck == Healthcheck(("CMD-SHELL", "wget -q -O- localhost"),
                                           interval=1.0, start_period=0.5)
    assert spec.log_config == LogConfig("json-file", (("max-size", "1m"),))
    assert spec.networks == (EndpointSpec("ref1_front", ("web", "www"), "10.5.0.5"),)
    assert spec.ports == (PortBinding(80, "tcp", "", "8080"),
                          PortBinding(90, "udp", "127.0.0.1", "9000"),
                          PortBinding(3000, "tcp", "", ""))
    assert spec.mounts == (Mount("volume", "/data", "ref1_data"),
                           Mount("bind", "/x", "/src/x", read_only=True),
                           Mount("bind", "/t", "/tmp"),
                           Mount("tmpfs", "/run", tmpfs_size=64 * 1024))
    assert spec.restart == RestartPolicy("unless-stopped")
    assert spec.shm_size == 64 * 1024**2 and spec.stop_grace_period == 3.0
    assert spec.stop_signal == "SIGINT" and spec.user == "1000:1000"
    assert spec.sysctls == (("net.core.somaxconn", "1024"),)
    assert spec.ulimits == (Ulimit("nofile", 10, 20), Ulimit("nproc", 5, 5))
    assert (spec.tty, spec.stdin_open, spec.read_only, spec.init) == (True, True, True, True)
    assert spec.working_dir == "/srv" and spec.hostname == "h" and spec.expose == ("80",)


def test_compose_labels() -> None:
    labels = dict(container_spec(INFO, RICH, "web", 1).labels)
    assert labels["x"] == "y"
    assert labels[L.PROJECT] == "ref1" and labels[L.SERVICE] == "web"
    assert labels[L.CONTAINER_NUMBER] == "1" and labels[L.ONEOFF] == "False"
    assert labels[L.CONFIG_HASH] == L.service_hash(RICH["services"]["web"])
    assert labels[L.DEPENDS_ON] == "api:service_healthy:true"
    assert labels[L.WORKING_DIR] == "/src"
    assert labels[L.CONFIG_FILES] == "/src/compose.yaml"
    assert labels[L.ENVIRONMENT_FILE] == "/src/.env"


def test_deploy_section_and_host_network() -> None:
    spec = container_spec(INFO, RICH, "api", 2)
    assert spec.name == "ref1-api-2"
    assert spec.network_mode == "host" and spec.networks == ()
    assert spec.resources.memory == 100 * 1024**2 and spec.resources.cpus == 0.5
    assert spec.resources.pids_limit == 10
    assert spec.restart == RestartPolicy("on-failure", 3)
    assert spec.healthcheck == Healthcheck(("NONE",))


def test_service_references_become_container_names() -> None:
    data = {"name": "p", "services": {
        "db": {"image": "x"},
        "app": {"image": "x", "network_mode": "service:db", "volumes_from": ["db:ro"],
                "ipc": "service:db", "restart": "on-failure:2"}}}
    spec = container_spec(ProjectInfo("p"), data, "app", 1)
    assert spec.network_mode == "container:p-db-1"
    assert spec.volumes_from == ("p-db-1:ro",)
    assert spec.ipc_mode == "container:p-db-1"
    assert spec.restart == RestartPolicy("on-failure", 2)


def test_port_ranges_spread_over_replicas_and_oneoff_runs() -> None:
    data = {"name": "p", "services": {"a": {"image": "x", "scale": 2, "ports": [
        {"target": 80, "published": "6005-6006", "protocol": "tcp"}]}}}
    assert container_spec(ProjectInfo("p"), data, "a", 2).ports[0].host_port == "6006"
    run = container_spec(ProjectInfo("p"), data, "a", 1, name="p-a-run-1", oneoff=True)
    assert dict(run.labels)[L.ONEOFF] == "True" and run.name == "p-a-run-1"


def test_networks_volumes_builds() -> None:
    net = network_spec(INFO, "front", RICH["networks"]["front"])
    assert net.name == "ref1_front" and net.ipam == (IPAMConfig("10.5.0.0/16"),)
    assert dict(net.labels)[L.NETWORK] == "front"
    vol = volume_spec(INFO, "data", RICH["volumes"]["data"])
    assert vol.name == "ref1_data" and dict(vol.labels)[L.VOLUME] == "data"
    data = {"name": "p", "services": {"b": {"build": {"context": "/ctx", "args": {"V": "1"},
                                                      "tags": ["me/b:1"]}}}}
    spec = build_spec(ProjectInfo("p"), data, "b")
    assert spec.context == "/ctx" and spec.tags == ("p-b", "me/b:1")
    assert spec.args == (("V", "1"),)


def test_durations_and_sizes() -> None:
    assert duration("1m30s") == 90 and duration("500ms") == 0.5 and duration(2) == 2
    assert duration("2m0s") == 120 and duration("1h") == 3600
    assert size("64k") == 65536 and size("1g") == 1024**3 and size("123") == 123
    with pytest.raises(ConfigError):
        duration("soon")
    with pytest.raises(ConfigError):
        size("lots")


def test_seccomp_profile_file_is_read_at_create_like_compose(tmp_path, monkeypatch) -> None:
    from compose.convert import _security_opts
    from compose.errors import ConfigError

    (tmp_path / "profile.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": []}')
    monkeypatch.chdir(tmp_path)
    assert _security_opts(["seccomp=./profile.json", "no-new-privileges:true"]) == (
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}', "no-new-privileges:true")
    assert _security_opts(["seccomp=unconfined"]) == ("seccomp=unconfined",)
    with pytest.raises(ConfigError, match=r"opening seccomp profile \(missing.json\) failed"):
        _security_opts(["seccomp=missing.json"])


def test_secrets_and_configs_are_read_only_binds_of_their_files() -> None:
    data = {
        "name": "ref1",
        "services": {"app": {"image": "busybox", "secrets": [
            {"source": "db_pw"}, {"source": "api", "target": "api_key"},
            {"source": "abs", "target": "/etc/abs.txt"}],
            "configs": [{"source": "nginx"}, {"source": "app", "target": "/etc/app.conf"}]}},
        "secrets": {"db_pw": {"name": "ref1_db_pw", "file": "/src/pw.txt"},
                    "api": {"name": "ref1_api", "file": "/src/api.txt"},
                    "abs": {"name": "ref1_abs", "file": "/src/abs.txt"}},
        "configs": {"nginx": {"name": "ref1_nginx", "file": "/src/nginx.conf"},
                    "app": {"name": "ref1_app", "file": "/src/app.conf"}},
    }
    mounts = container_spec(INFO, data, "app", 1).mounts
    ro = dict(read_only=True, create_host_path=False)
    assert mounts == (Mount("bind", "/run/secrets/db_pw", "/src/pw.txt", **ro),
                      Mount("bind", "/run/secrets/api_key", "/src/api.txt", **ro),
                      Mount("bind", "/etc/abs.txt", "/src/abs.txt", **ro),
                      Mount("bind", "/nginx", "/src/nginx.conf", **ro),
                      Mount("bind", "/etc/app.conf", "/src/app.conf", **ro))


def test_secrets_without_a_file_are_refused_clearly() -> None:
    data = {"name": "ref1", "services": {"app": {"image": "busybox",
                                                 "secrets": [{"source": "tok"}]}},
            "secrets": {"tok": {"name": "ref1_tok", "environment": "TOKEN"}}}
    with pytest.raises(ConfigError, match="secrets.tok: environment secrets are not supported"):
        container_spec(INFO, data, "app", 1)
