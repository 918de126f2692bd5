"""Capabilities: Docker's rules for the set, and applying it in a forked child before exec."""

from __future__ import annotations

import os

import pytest

from engine.api import InvalidArgument
from engine.runtime.caps import (
    DEFAULT_CAPS,
    apply_caps,
    effective_caps,
    from_mask,
    normalize,
    to_mask,
    unavailable,
)
from tests.conftest import BUSYBOX

DOCKER_DEFAULT_MASK = 0xA80425FB


def test_default_set_is_dockers() -> None:
    assert to_mask(DEFAULT_CAPS) == DOCKER_DEFAULT_MASK
    assert to_mask(effective_caps()) == DOCKER_DEFAULT_MASK
    assert from_mask(DOCKER_DEFAULT_MASK) == set(DEFAULT_CAPS)


def test_add_drop_all_privileged() -> None:
    assert to_mask(effective_caps(cap_add=["SYS_ADMIN"])) == 0xA82425FB
    assert effective_caps(cap_drop=["ALL"]) == set()
    assert effective_caps(cap_drop=["all"], cap_add=["net_admin"]) == {"CAP_NET_ADMIN"}
    assert "CAP_NET_RAW" not in effective_caps(cap_drop=["NET_RAW"])
    every = effective_caps(cap_add=["ALL"], cap_drop=["CAP_SYS_ADMIN"])
    assert "CAP_SYS_ADMIN" not in every and "CAP_SYS_PTRACE" in every
    assert "CAP_SYS_ADMIN" in effective_caps(privileged=True)


def test_unknown_capability_is_rejected() -> None:
    assert normalize("chown") == "CAP_CHOWN"
    with pytest.raises(InvalidArgument, match="unknown capability"):
        effective_caps(cap_add=["NOT_A_CAP"])


def run_child_with_caps(caps: set[str], **user: object) -> dict[str, str]:
    """Fork; apply caps in the child; exec busybox to print its /proc/self/status caps."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            apply_caps(caps, **user)  # type: ignore[arg-type]
            os.execv(BUSYBOX, [BUSYBOX, "grep", "-E", "^(Cap|Uid|Gid|Groups)", "/proc/self/status"])
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


@pytest.mark.root
def test_apply_default_set_after_exec() -> None:
    st = run_child_with_caps(set(DEFAULT_CAPS))
    for key in ("CapPrm", "CapEff", "CapBnd"):
        assert int(st[key], 16) == DOCKER_DEFAULT_MASK, st
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0


@pytest.mark.root
def test_apply_modified_and_empty_sets() -> None:
    st = run_child_with_caps(effective_caps(cap_add=["SYS_ADMIN"], cap_drop=["NET_RAW"]))
    assert int(st["CapEff"], 16) == (DOCKER_DEFAULT_MASK | 1 << 21) & ~(1 << 13)
    st = run_child_with_caps(set())
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0


@pytest.mark.root
def test_non_root_user_gets_empty_effective_set_and_keeps_bounding() -> None:
    st = run_child_with_caps(set(DEFAULT_CAPS), uid=1000, gid=1000, groups=[1000, 5])
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == DOCKER_DEFAULT_MASK
    assert st["Uid"].split()[0] == "1000" and st["Gid"].split()[0] == "1000"
    assert st["Groups"].split() == ["5", "1000"]


@pytest.mark.root
def test_privileged_is_clamped_to_what_the_host_allows() -> None:
    missing = unavailable(effective_caps(privileged=True))
    st = run_child_with_caps(effective_caps(privileged=True))
    assert from_mask(int(st["CapEff"], 16)) == effective_caps(privileged=True) - missing
