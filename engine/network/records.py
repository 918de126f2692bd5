"""Network state files: where they live, how they are found, and their `Network` records.

`<root>/networks/<id>.json` holds one network (written atomically under the store lock
`networks`):

    {"id", "name", "driver": "bridge", "created", "bridge" (interface name),
     "subnet", "gateway", "ip_range", "aux": {name: ip}, "mtu", "internal",
     "attachable", "labels": {}, "options": {},
     "endpoints": {container id: {"name", "ip", "prefix", "mac", "ifname", "veth",
                                  "aliases": [], "dns_names": [], "dns": [],
                                  "active": bool (set up and running)}}}

`<root>/network-endpoints/<container id>.json` is a container's network plan, written by
`_net_prepare` and read by `_net_setup`: {"mode": bridge|none|host|container,
"networks": [ids in attach order], "ports": [PortBinding as JSON], "connected": [networks
added by network_connect], and after setup "published": [...], "port_driver": proxy|nft}.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from engine.api import Network, NotFound
from engine.network.ipam import Pool
from engine.store import Store

LOCK = "networks"


def network_dir(store: Store) -> Path:
    return store.path("networks")


def network_path(store: Store, network_id: str) -> Path:
    return store.path("networks", f"{network_id}.json")


def plan_path(store: Store, container_id: str) -> Path:
    return store.path("network-endpoints", f"{container_id}.json")


def load_all(store: Store) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    directory = network_dir(store)
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "id" in data:
            found.append(data)
    return found


def find(store: Store, ref: str) -> dict[str, Any]:
    """A network by full id, exact name, or unique id prefix (Docker's order)."""
    nets = load_all(store)
    for pick in (lambda n: n["id"] == ref, lambda n: n["name"] == ref):
        for net in nets:
            if pick(net):
                return net
    if ref:
        matches = [n for n in nets if n["id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
    raise NotFound(f"network {ref} not found")


def save(store: Store, net: dict[str, Any], durable: bool = True) -> None:
    """Write the network record; endpoint bookkeeping (durable=False) needs no fsync:
    after a crash no endpoint is live and stale ones are dropped on the next prepare."""
    store.write_json(network_path(store, net["id"]), net, durable=durable)


def pool_of(net: dict[str, Any]) -> Pool:
    pool = Pool.build(ipaddress.IPv4Network(net["subnet"]), net["gateway"],
                      net.get("ip_range") or None, tuple(net.get("aux", {}).items()))
    for ep in net.get("endpoints", {}).values():
        pool.allocated.add(ipaddress.IPv4Address(ep["ip"]))
    return pool


def to_record(net: dict[str, Any]) -> Network:
    return Network(
        id=net["id"], name=net["name"], driver=net.get("driver", "bridge"),
        created=net["created"], subnet=net["subnet"], gateway=net["gateway"],
        internal=bool(net.get("internal")), attachable=bool(net.get("attachable")),
        labels=tuple(sorted(net.get("labels", {}).items())),
        options=tuple(sorted(net.get("options", {}).items())),
        containers=tuple(sorted(net.get("endpoints", {}))),
    )


def labels_match(labels: dict[str, str], wanted: dict[str, str | None] | None) -> bool:
    if not wanted:
        return True
    for key, value in wanted.items():
        if key not in labels or (value is not None and labels[key] != value):
            return False
    return True
