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

REGISTRY = Path("/run/pycompose-net/bridges")
# When containers start together on an idle network, each would re-check its rules (two
# iptables runs under the host lock): one check stands for all of them until the network
# is idle again (`forget_verified`), or for at most VERIFY_TTL seconds.
VERIFIED = Path("/run/pycompose-net/verified")
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
                _mark_verified(net["bridge"])
            return index
    finally:
        if own:
            nl.close()


def _verified_recently(bridge: str) -> bool:
    try:
        return time.time() - (VERIFIED / bridge).stat().st_mtime < VERIFY_TTL
    except OSError:
        return False


def _mark_verified(bridge: str) -> None:
    with contextlib.suppress(OSError):
        VERIFIED.mkdir(parents=True, exist_ok=True)
        (VERIFIED / bridge).touch()


def forget_verified(bridge: str) -> None:
    """The network went idle: its next first start checks the rules again."""
    with contextlib.suppress(OSError):
        (VERIFIED / bridge).unlink()


def destroy(net: dict[str, Any]) -> None:
    with firewall.host_lock(), Netlink() as nl:
        firewall.remove(net["bridge"])
        nl.delete_link(net["bridge"])
        for registry in (REGISTRY, VERIFIED):
            with contextlib.suppress(FileNotFoundError):
                (registry / net["bridge"]).unlink()


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
