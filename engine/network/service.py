"""The engine service for networks: create, remove, list, inspect, connect, prune.

Bridge networks only (Docker's `bridge` driver); IPv6 is refused with a clear error.
The per-container hooks the runtime calls live in `engine.network.attach`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import signal
from datetime import UTC, datetime
from typing import Any

from engine.api import (
    Conflict,
    EndpointSpec,
    InvalidArgument,
    Network,
    NetworkSpec,
)
from engine.network import bridge, dnsd, firewall, ipam, records
from engine.network.attach import NetworkHooks
from engine.network.netlink import Netlink

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"
MTU_OPT = "com.docker.network.driver.mtu"
SUPPORTED_DRIVERS = ("bridge", "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NetworkService(NetworkHooks):
    """Mixin of engine.local.LocalEngine."""

    # ------------------------------------------------------------------ create

    def network_create(self, spec: NetworkSpec) -> Network:
        if not NAME_RE.match(spec.name):
            raise InvalidArgument(f"invalid network name {spec.name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                                  "are allowed")
        if spec.driver not in SUPPORTED_DRIVERS:
            raise InvalidArgument(f"network driver {spec.driver!r} is not supported "
                                  "(the built-in engine offers 'bridge')")
        if spec.enable_ipv6:
            raise InvalidArgument(f"network {spec.name}: enable_ipv6 is not supported yet "
                                  "by the built-in engine")
        if len(spec.ipam) > 1:
            raise InvalidArgument(f"network {spec.name}: only one IPAM config (IPv4) "
                                  "is supported")
        options = dict(spec.driver_opts)
        network_id = secrets.token_hex(32)
        bridge_name = options.get(BRIDGE_NAME_OPT) or bridge.bridge_name_for(network_id)
        if len(bridge_name) > 15 or not re.match(r"^[a-zA-Z0-9_.-]+$", bridge_name):
            raise InvalidArgument(f"invalid bridge name {bridge_name!r}: at most 15 characters")
        mtu = None
        if MTU_OPT in options:
            try:
                mtu = int(options[MTU_OPT])
            except ValueError:
                raise InvalidArgument(f"invalid {MTU_OPT} {options[MTU_OPT]!r}")
        cfg = spec.ipam[0] if spec.ipam else None
        requested = ipam.parse_network(cfg.subnet) if cfg and cfg.subnet else None
        if cfg and not cfg.subnet and (cfg.gateway or cfg.ip_range or cfg.aux_addresses):
            raise InvalidArgument(f"network {spec.name}: gateway, ip_range and aux_addresses "
                                  "need a subnet")

        with self.store.lock(records.LOCK), firewall.host_lock():
            bridge.collect_orphans()
            if any(n["name"] == spec.name for n in records.load_all(self.store)):
                raise Conflict(f"network with name {spec.name} already exists")
            with Netlink() as nl:
                if nl.link_index(bridge_name) is not None:
                    raise Conflict(f"bridge {bridge_name} already exists on this host")
                used = nl.ipv4_networks() + [ipaddress.IPv4Network(n["subnet"])
                                             for n in records.load_all(self.store)]
                if requested is not None:
                    if ipam.overlaps(requested, [u for u in used if not u.is_loopback]):
                        raise Conflict(f"Pool overlaps with other one on this address space: "
                                       f"{requested} is already in use on this host")
                    subnet = requested
                else:
                    subnet = ipam.choose_subnet(used)
                pool = ipam.Pool.build(subnet, cfg.gateway if cfg else None,
                                       cfg.ip_range if cfg else None,
                                       cfg.aux_addresses if cfg else ())
                net: dict[str, Any] = {
                    "id": network_id, "name": spec.name, "driver": "bridge",
                    "created": _now(), "bridge": bridge_name, "subnet": str(subnet),
                    "gateway": str(pool.gateway),
                    "ip_range": str(pool.ip_range) if pool.ip_range else "",
                    "aux": {k: str(v) for k, v in pool.aux.items()}, "mtu": mtu,
                    "internal": spec.internal, "attachable": spec.attachable,
                    "labels": dict(spec.labels), "options": options, "endpoints": {},
                }
                bridge.ensure(net, self.store.root, nl)
            try:
                records.save(self.store, net)
            except BaseException:
                bridge.destroy(net)
                raise
        self.store.emit("network", "create", network_id, name=spec.name, driver="bridge")
        return records.to_record(net)

    # ------------------------------------------------------------------ read

    def network_inspect(self, ref: str) -> Network:
        return records.to_record(records.find(self.store, ref))

    def network_list(self, labels: dict[str, str | None] | None = None) -> list[Network]:
        return [records.to_record(n) for n in records.load_all(self.store)
                if records.labels_match(n.get("labels", {}), labels)]

    # ------------------------------------------------------------------ remove

    def _network_users(self, net: dict[str, Any]) -> list[str]:
        """Containers still attached (endpoints of containers that still exist)."""
        users = [cid for cid in net.get("endpoints", {})
                 if self.store.path("containers", cid).is_dir()]
        listing = getattr(self, "container_list", None)
        if listing is not None:  # created but never started containers that name it
            for c in listing(all=True):
                if c.id not in users and any(ep.network in (net["name"], net["id"])
                                             for ep in c.spec.networks):
                    users.append(c.id)
        return users

    def network_remove(self, ref: str) -> None:
        with self.store.lock(records.LOCK):
            net = records.find(self.store, ref)
            users = self._network_users(net)
            if users:
                raise Conflict(f"error while removing network: network {net['name']} id "
                               f"{net['id']} has active endpoints ({len(users)} container(s))")
            self._destroy_network(net)
        self.store.emit("network", "destroy", net["id"], name=net["name"], driver="bridge")

    def _destroy_network(self, net: dict[str, Any]) -> None:
        bridge.destroy(net)
        with contextlib.suppress(FileNotFoundError):
            records.network_path(self.store, net["id"]).unlink()
        self._stop_dns(net["id"])

    def _stop_dns(self, network_id: str) -> None:
        path = dnsd.pid_path(self.store, network_id)
        with self.store.lock(dnsd.lock_name(network_id)):
            pid = dnsd.running_pid(self.store, network_id)
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            # the network is gone for good: without this, one lock file per network
            # ever created piles up in the data root
            with contextlib.suppress(FileNotFoundError):
                self.store.path("locks", f"{dnsd.lock_name(network_id)}.lock").unlink()

    def network_prune(self) -> list[str]:
        removed = []
        bridge.collect_orphans()
        with self.store.lock(records.LOCK):
            for net in records.load_all(self.store):
                if not self._network_users(net):
                    self._destroy_network(net)
                    removed.append(net["name"])
                    self.store.emit("network", "destroy", net["id"], name=net["name"],
                                    driver="bridge")
        return removed

    # ------------------------------------------------------------------ connect

    def network_connect(self, ref: str, container: str, endpoint: EndpointSpec) -> None:
        cid = self._net_container_id(container)
        net = records.find(self.store, ref)
        if cid in net.get("endpoints", {}):
            raise Conflict(f"container {container} is already connected to network "
                           f"{net['name']}")
        self._net_connect(cid, net["id"], endpoint)
        self.store.emit("network", "connect", net["id"], container=cid, name=net["name"],
                        driver="bridge")

    def network_disconnect(self, ref: str, container: str, force: bool = False) -> None:
        cid = self._net_container_id(container)
        net = records.find(self.store, ref)
        if cid not in net.get("endpoints", {}) and not force:
            raise Conflict(f"container {container} is not connected to network {net['name']}")
        self._net_disconnect(cid, net["id"])
        self.store.emit("network", "disconnect", net["id"], container=cid, name=net["name"],
                        driver="bridge")
