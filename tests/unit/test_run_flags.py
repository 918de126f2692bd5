"""`docker run` flag values with their own syntax: --publish, --mount, --ulimit,
--log-opt, --health-* durations; bad values are one-line usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from compose.cli.commands import _run_flags as flags
from compose.errors import UsageError
from engine.api import Healthcheck, Mount, PortBinding, Ulimit


def test_publish_short_and_long_forms() -> None:
    assert flags.publish("8080:80") == PortBinding(80, "tcp", "", "8080")
    assert flags.publish("127.0.0.1:8081:80/udp") == PortBinding(80, "udp", "127.0.0.1", "8081")
    assert flags.publish("80") == PortBinding(80, "tcp", "", "")
    assert flags.publish("mode=ingress,published=8090,target=8080") == PortBinding(
        8080, "tcp", "", "8090")
    for bad in ("x", "mode=ingress,published=1", "a:b", "80/icmp", "target=80,bogus=1"):
        with pytest.raises(UsageError):
            flags.publish(bad)


def test_mount_kinds(tmp_path: Path) -> None:
    assert flags.mount("type=tmpfs,destination=/tmp,tmpfs-size=256m") == Mount(
        "tmpfs", "/tmp", tmpfs_size=256 * 1024**2)
    assert flags.mount("source=my-data,target=/app") == Mount("volume", "/app", "my-data")
    assert flags.mount(f"type=bind,src={tmp_path},dst=/d,readonly") == Mount(
        "bind", "/d", str(tmp_path), read_only=True, create_host_path=False)
    with pytest.raises(UsageError, match="does not exist"):
        flags.mount("type=bind,source=/nonexistent-pyc-dir,target=/d")
    for bad in ("type=nfs,target=/x", "source=v", "type=volume,target=/x,color=red"):
        with pytest.raises(UsageError):
            flags.mount(bad)


def test_ulimit_log_options_and_health() -> None:
    assert flags.ulimit("nofile=150:300") == Ulimit("nofile", 150, 300)
    assert flags.ulimit("nproc=64") == Ulimit("nproc", 64, 64)
    with pytest.raises(UsageError, match="soft limit"):
        flags.ulimit("nofile=300:150")
    assert flags.log_options(["max-size=1k"]) == (("max-size", "1k"),)
    with pytest.raises(UsageError):
        flags.log_options(["max-size"])
    assert flags.duration("1m30s", "--health-interval") == 90.0
    with pytest.raises(UsageError):
        flags.duration("soon", "--health-interval")
    assert flags.healthcheck(None, "1s", None, 2, None, False) == Healthcheck(
        test=(), interval=1.0, retries=2)
    assert flags.healthcheck(None, None, None, None, None, True) == Healthcheck(("NONE",))
    assert flags.healthcheck(None, None, None, None, None, False) is None
