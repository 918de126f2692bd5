"""Nothing of ours outlives its owner: bridges, veths, iptables rules, DNS responders,
port proxies and mounts are gone after removal, after a failed start, and after a data
root was deleted without removing its networks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.api import EndpointSpec, Mount, NetworkSpec, PortBinding, VolumeSpec
from engine.local import LocalEngine
from engine.network import bridge, firewall
from tests.conftest import unique
from tests.root import nethelpers
from tests.root.nethelpers import free_port, our_links, port_free, sleeper

pytestmark = pytest.mark.root
net_engine = nethelpers.net_engine


def responders(root: Path) -> list[int]:
    """Pids of live DNS responders of data root `root` (from their pid files)."""
    from engine.network import dnsd
    from engine.store import Store

    store = Store(root)
    found = []
    for pid_file in (store.run_dir / "dns").glob("*.pid"):
        pid = dnsd.running_pid(store, pid_file.stem)
        if pid:
            found.append(pid)
    return found


def responder_processes() -> dict[int, str]:
    """Every DNS responder on the host (any data root): pid -> its working directory."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/comm").read_text().startswith("pyc-dns-"):
                found[int(entry)] = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
    return found


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(root))]


def wait_until(check: Any, timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_everything_goes_away_after_removal(net_engine: Any) -> None:
    root = net_engine.store.root
    links_before = our_links()
    nets = [net_engine.network_create(NetworkSpec(name=unique("c"), internal=internal))
            for internal in (False, True)]
    bridges = {f"pc-{n.id[:12]}" for n in nets}
    port = free_port()
    vol = net_engine.volume_create(VolumeSpec(name=unique("tv"), driver_opts=(
        ("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m"))))
    a = sleeper(net_engine, unique("a"), tuple(EndpointSpec(n.name) for n in nets),
                ports=(PortBinding(80, host_ip="127.0.0.1", host_port=str(port)),),
                mounts=(Mount("volume", "/v", vol.name), Mount("tmpfs", "/t")))
    b = sleeper(net_engine, unique("b"), (EndpointSpec(nets[0].name),))
    veths = {bridge.veth_name_for(c.id, n.id) for c in (a, b) for n in nets}
    made = our_links() - links_before
    assert bridges <= made and len(made & veths) == 3
    assert all(firewall.tagged_rules(name) for name in bridges)
    assert len(responders(root)) == 2 and not port_free(port)
    assert mounts_under(root)  # the tmpfs volume

    for c in (a, b):
        net_engine.container_remove(c.id, force=True)
    for n in nets:
        net_engine.network_remove(n.id)
    net_engine.volume_remove(vol.name)

    assert not (our_links() & (bridges | veths))
    assert not any(firewall.tagged_rules(name) for name in bridges)
    assert wait_until(lambda: not responders(root))
    assert port_free(port) and mounts_under(root) == []
    assert not (root / "network-endpoints").exists() or \
        list((root / "network-endpoints").iterdir()) == []


def test_orphans_of_a_deleted_root_are_collected(tmp_path: Path) -> None:
    root = tmp_path / "gone"
    engine = LocalEngine(root)
    net = engine.network_create(NetworkSpec(name=unique("o")))
    name = f"pc-{net.id[:12]}"
    try:
        assert name in our_links() and firewall.tagged_rules(name)
        subprocess.run(["rm", "-rf", str(root)], check=True)  # as a careless test would
        assert name in bridge.collect_orphans()
        assert name not in our_links() and not firewall.tagged_rules(name)
    finally:
        bridge.destroy({"bridge": name})


def test_release_root_removes_every_bridge_of_a_root(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "r")
    names = {f"pc-{engine.network_create(NetworkSpec(name=unique('r'))).id[:12]}"
             for _ in range(2)}
    try:
        assert names <= our_links()
        assert set(bridge.release_root(tmp_path / "r")) == names
        assert not (names & our_links())
        assert not any(firewall.tagged_rules(n) for n in names)
    finally:
        for n in names:
            bridge.destroy({"bridge": n})


def test_no_dangling_rules_or_responders_on_the_host() -> None:
    """Every rule we tagged belongs to a bridge that exists; a responder whose data root
    is gone exits by itself."""
    with firewall.host_lock():
        links = our_links(("pc-",)) | {line.split(":")[1].strip().split("@")[0]
                                        for line in subprocess.run(
                                            ["ip", "-o", "link"], capture_output=True,
                                            text=True).stdout.splitlines()}
        for rule in firewall.tagged_rules():
            assert rule.split('--comment "pycompose:')[1].split('"')[0] in links, rule
    for pid, cwd in responder_processes().items():
        if cwd.endswith("(deleted)"):  # its data root was deleted: it must leave by itself
            assert wait_until(lambda p=pid: not os.path.exists(f"/proc/{p}"), 3), cwd
