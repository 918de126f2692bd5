"""Per-container limits: ulimits and sysctls seen inside, cgroup memory/pids/cpu limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.api import InvalidArgument, Resources, Ulimit
from engine.local import LocalEngine
from engine.runtime import bundle
from tests.root import runtime_fixtures
from tests.root.runtime_fixtures import run, spec, wait_for

pytestmark = pytest.mark.root
engine = runtime_fixtures.engine  # the fixture
MiB = 1024 * 1024


def test_ulimits_and_sysctls_show_inside(engine: LocalEngine) -> None:
    code, out, err = run(engine, "ulimit -n; ulimit -Hn; cat /proc/sys/net/core/somaxconn; "
                                 "cat /proc/sys/kernel/shmmni; "
                                 "echo 5 > /proc/sys/kernel/shmmni || echo ro",
                         ulimits=(Ulimit("nofile", 1000, 2000),),
                         sysctls=(("net.core.somaxconn", "1234"), ("kernel.shmmni", "333")))
    assert code == 0, err
    assert out.split() == ["1000", "2000", "1234", "333", "ro"]


def test_bad_limits_fail_at_create(engine: LocalEngine) -> None:
    with pytest.raises(InvalidArgument, match="above this host's limit"):
        engine.container_create(spec("true", ulimits=(Ulimit("nofile", 1, 2**40),)))
    with pytest.raises(InvalidArgument, match="invalid ulimit type"):
        engine.container_create(spec("true", ulimits=(Ulimit("bogus", 1, 2),)))
    with pytest.raises(InvalidArgument, match="not namespaced"):
        engine.container_create(spec("true", sysctls=(("vm.swappiness", "1"),)))
    with pytest.raises(InvalidArgument, match="network mode is host"):
        engine.container_create(spec("true", network_mode="host",
                                     sysctls=(("net.core.somaxconn", "1"),)))


def test_memory_limit_oom_kills(engine: LocalEngine) -> None:
    c = engine.container_create(spec("dd if=/dev/zero of=/dev/null bs=64M count=1",
                                     resources=Resources(memory=32 * MiB,
                                                         memory_swap=32 * MiB)))
    engine.container_start(c.id)
    assert engine.container_wait(c.id, timeout=15) == 137
    st = engine.container_inspect(c.id).state
    assert st.oom_killed
    actions = [e["action"] for e in engine.store.read_events() if e["id"] == c.id]
    assert actions[-2:] == ["oom", "die"]


def test_pids_and_cpu_limits(engine: LocalEngine) -> None:
    from engine.runtime.cgroups import CgroupDriver

    c = engine.container_create(spec(
        "cat /sys/fs/cgroup/pids/pids.max; mkdir /sys/fs/cgroup/pids/x 2>/dev/null || "
        "echo cg-ro; sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done' 2>&1; "
        "echo forked; "
        "while true; do sleep 0.05; done",
        resources=Resources(pids_limit=6, cpus=0.2)))
    engine.container_start(c.id)
    wait_for(lambda: any("forked" in ln.text for ln in engine.container_logs(c.id)))
    text = "".join(ln.text for ln in engine.container_logs(c.id))
    assert "can't fork" in text
    assert text.startswith("6\ncg-ro\n")  # its own groups at /sys/fs/cgroup, read-only
    cg = CgroupDriver.detect().open(c.id)
    assert len(cg.pids()) <= 6
    state = bundle.read_state(engine.store, c.id)
    quotas = [Path(p, "cpu.cfs_quota_us").read_text().strip() for p in cg.paths()
              if os.path.exists(f"{p}/cpu.cfs_quota_us")]
    quotas += [Path(p, "cpu.max").read_text().split()[0] for p in cg.paths()
               if os.path.exists(f"{p}/cpu.max")]
    assert quotas and set(quotas) == {"20000"}
    assert state["status"] == "running"
    engine.container_stop(c.id, timeout=0)
