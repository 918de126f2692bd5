"""Resolving a ContainerSpec against its image: env, volumes, sysctls, checks, names."""

from __future__ import annotations

import pytest

from engine.api import ContainerSpec, InvalidArgument, Mount, RestartPolicy
from engine.runtime import specs


def test_env_merge_spec_wins_and_defaults_fill_in() -> None:
    env = specs.merge_env(["PATH=/x", "A=image", "B=keep"], (("A", "spec"),), "h1", "/home/u")
    assert env == ["PATH=/x", "A=spec", "B=keep", "HOSTNAME=h1", "HOME=/home/u"]
    assert specs.merge_env([], (), "h", "/")[0].startswith("PATH=/usr/local/sbin")


def test_image_volumes_not_covered_by_a_mount() -> None:
    spec = ContainerSpec(image="x", mounts=(Mount("bind", "/data/", "/src"),))
    got = specs.with_image_volumes(spec, {"image_volumes": ["/data", "/cache"]})
    assert [(m.type, m.target, m.source) for m in got] == [
        ("bind", "/data/", "/src"), ("volume", "/cache", "")]


def test_default_sysctls_only_with_an_own_network() -> None:
    own = dict(specs.sysctls(ContainerSpec(image="x", sysctls=(("net.core.somaxconn", "9"),))))
    assert own["net.ipv4.ip_unprivileged_port_start"] == "0"
    assert own["net.core.somaxconn"] == "9"
    assert specs.sysctls(ContainerSpec(image="x", network_mode="host")) == ()


def test_resolv_conf_and_extra_hosts() -> None:
    spec = ContainerSpec(image="x", dns=("10.0.0.2",), dns_search=("corp",),
                         dns_opt=("ndots:1",), extra_hosts=("db:10.0.0.9", "v6=[::1]"))
    assert specs.resolv_conf(spec, host=False) == (
        "nameserver 10.0.0.2\nsearch corp\noptions ndots:1\n")
    assert specs.extra_hosts(spec) == "10.0.0.9\tdb\n::1\tv6\n"


def test_validation_messages() -> None:
    with pytest.raises(InvalidArgument, match="only be used with 'on-failure'"):
        specs.validate_restart(ContainerSpec(image="x", restart=RestartPolicy("always", 2)))
    with pytest.raises(InvalidArgument, match="--restart and --rm"):
        specs.validate_restart(ContainerSpec(image="x", auto_remove=True,
                                             restart=RestartPolicy("always")))
    with pytest.raises(InvalidArgument, match="invalid signal"):
        specs.check_signal("SIGWHAT")
    assert specs.check_signal("TERM") == 15 and specs.check_signal("9") == 9


def test_generated_names_are_stable_and_valid() -> None:
    name = specs.generated_name("ab" * 32)
    assert name == specs.generated_name("ab" * 32) and name.endswith("_ababab")
