"""A network's host side: its bridge with the gateway address, plus its firewall rules.

`ensure` (re)creates whatever is missing, so a bridge deleted behind our back or lost in
a reboot comes back on the next container start; `destroy` removes both parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import time
from pathlib import Path
from typing import Any

from engine.api import EngineRuntimeError
from engine.network import firewall
from engine.network.netlink import Netlink
from engine.store.store import write_atomic

REGISTRY = Path("/run/pycompose-net/bridges")
# When containers start together on an idle network, each would re-check its rules (two
# iptables runs under the host lock): one check, noted as `verified_at` in the bridge's
# registry entry, stands for all of them until the network is idle again
# (`forget_verified`), or for at most VERIFY_TTL seconds.
VERIFY_TTL = 10.0


def bridge_name_for(network_id: str) -> str:
    return f"pc-{network_id[:12]}"


def veth_name_for(container_id: str, network_id: str) -> str:
    return "veth" + hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()[:7]


def ensure(net: dict[str, Any], root: Path, nl: Netlink | None = None,
           verify_rules: bool = False) -> int:
    """The bridge's interface index; creates the bridge and its rules when missing (and,
    with `verify_rules`, reinstalls rules that were flushed behind our back)."""
    own = nl is None
    nl = nl or Netlink()
    try:
        with firewall.host_lock():
            index = nl.link_index(net["bridge"])
            if index is None:
                # Registered before it exists: a process killed half-way leaves an entry
                # that collect_orphans() finds, never an unowned bridge.
                _register(net, root)
                try:
                    index = nl.create_bridge(net["bridge"], net.get("mtu") or None)
                    iface = ipaddress.IPv4Interface(
                        f"{net['gateway']}/{ipaddress.IPv4Network(net['subnet']).prefixlen}")
                    nl.add_address(index, iface)
                    nl.set_link(index, up=True)
                    firewall.install(net["bridge"], net["subnet"], bool(net.get("internal")))
                except BaseException as exc:
                    with contextlib.suppress(OSError):
                        destroy(net)
                    if isinstance(exc, OSError):
                        raise EngineRuntimeError(
                            f"cannot create bridge {net['bridge']}: {exc.strerror}") from None
                    raise
            elif verify_rules and not _verified_recently(net["bridge"]):
                if not firewall.intact(net["bridge"]):
                    firewall.install(net["bridge"], net["subnet"], bool(net.get("internal")))
                _mark_verified(net["bridge"], time.time())
            return index
    finally:
        if own:
            nl.close()


def _registry_entry(bridge: str) -> dict[str, Any] | None:
    try:
        entry = json.loads((REGISTRY / bridge).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def _verified_recently(bridge: str) -> bool:
    entry = _registry_entry(bridge) or {}
    verified_at = entry.get("verified_at")
    return isinstance(verified_at, int | float) and time.time() - verified_at < VERIFY_TTL


def _mark_verified(bridge: str, verified_at: float | None = None) -> None:
    """Note (or, with None, drop) the time of the last rules check; under the host lock."""
    entry = _registry_entry(bridge)
    if entry is None:  # not registered by us: always check
        return
    entry.pop("verified_at", None)
    if verified_at is not None:
        entry["verified_at"] = verified_at
    with contextlib.suppress(OSError):
        write_atomic(REGISTRY / bridge, json.dumps(entry).encode(), durable=False)


def forget_verified(bridge: str) -> None:
    """The network went idle: its next first start checks the rules again."""
    with firewall.host_lock():
        _mark_verified(bridge, None)


def destroy(net: dict[str, Any]) -> None:
    with firewall.host_lock(), Netlink() as nl:
        firewall.remove(net["bridge"])
        nl.delete_link(net["bridge"])
        with contextlib.suppress(FileNotFoundError):
            (REGISTRY / net["bridge"]).unlink()


def _register(net: dict[str, Any], root: Path) -> None:
    """Remember which data root owns the bridge, for `collect_orphans`."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / net["bridge"]).write_text(json.dumps({"root": str(root),
                                                      "network_id": net["id"]}))


def collect_orphans() -> list[str]:
    """Remove bridges (and their rules) whose network no longer exists in its data root,
    e.g. a temporary root deleted without removing its networks. Returns their names."""
    removed: list[str] = []
    if not REGISTRY.is_dir():
        return removed
    with firewall.host_lock():
        for entry in REGISTRY.iterdir():
            try:
                owner = json.loads(entry.read_text())
            except (OSError, ValueError):
                continue
            network_file = Path(owner["root"]) / "networks" / f"{owner['network_id']}.json"
            if os.path.exists(network_file):
                continue
            destroy({"bridge": entry.name})
            removed.append(entry.name)
    return removed


def release_root(root: Path) -> list[str]:
    """Remove the bridges and rules of every network under data root `root` (for a
    temporary root about to be deleted). Returns the bridge names removed."""
    removed = []
    for path in (Path(root) / "networks").glob("*.json"):
        try:
            net = json.loads(path.read_text())
            name = net["bridge"]
        except (OSError, ValueError, KeyError):
            continue
        destroy({"bridge": name})
        path.unlink()
        removed.append(name)
    return removed
