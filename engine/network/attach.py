"""The per-container network hooks the runtime calls, and connect/disconnect.

    _net_prepare(cid, spec)  CLI process, before launch: allocate addresses (persisted),
                             return attachments + /etc/hosts + /etc/resolv.conf texts
    _net_setup(cid, pid)     monitor, after the init unshared its netns, before exec:
                             veth per network, addresses, routes, DNS registration,
                             port proxies (threads of the calling process)
    _net_teardown(cid)       monitor, when the container stopped
    _net_release(cid)        when the container is removed: addresses are freed

network_mode `none` gets only loopback, `host` and `container:<ref>` get no interfaces of
their own (the runtime shares the namespace) and the hosts/resolv.conf of the host or of
the other container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import typing
from pathlib import Path
from typing import Any

from engine.api import (
    ContainerSpec,
    EndpointSpec,
    EngineRuntimeError,
    InvalidArgument,
    NetworkAttachment,
    NetworkSpec,
    NotFound,
    PortBinding,
    PublishedPort,
)
from engine.network import bridge, dnsd, files, ipam, nft, records
from engine.network.netlink import Netlink, children_in_own_pid_namespace
from engine.network.proxy import Proxy, bind_all
from engine.store import Store

DEFAULT_NETWORK = "bridge"
DNS_UPSTREAM_ENV = "PYCOMPOSE_DNS_UPSTREAM"
PORT_DRIVER_ENV = "PYCOMPOSE_PORT_DRIVER"  # proxy (default) or nft

# Port proxies of the containers whose network this process set up.
_PROXIES: dict[str, list[Proxy]] = {}
_PROXIES_LOCK = threading.Lock()


def _compose_names(spec: ContainerSpec) -> list[str]:
    labels = dict(spec.labels)
    service = labels.get("com.docker.compose.service")
    project = labels.get("com.docker.compose.project")
    names = [service] if service else []
    if service and project:
        names.append(f"{service}.{project}")
    return names


def _dedupe(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)


class NetworkHooks:
    """Hooks of NetworkService; see the module docstring."""

    store: Store

    # ------------------------------------------------------------------ helpers

    def _net_container_id(self, ref: str) -> str:
        record = getattr(self, "_container_record", None)
        if record is not None:
            return str(record(ref).id)
        if self.store.path("containers", ref).is_dir():
            return ref
        raise NotFound(f"No such container: {ref}")

    def _net_container_name(self, cid: str, spec: ContainerSpec) -> str:
        record = getattr(self, "_container_record", None)
        if record is not None:
            with contextlib.suppress(Exception):
                return str(record(cid).name).lstrip("/")
        return (spec.name or cid[:12]).lstrip("/")

    def _net_plan(self, cid: str) -> dict[str, Any]:
        data = self.store.read_json(records.plan_path(self.store, cid), {})
        return data if isinstance(data, dict) else {}

    def _net_default_network(self) -> dict[str, Any]:
        try:
            return records.find(self.store, DEFAULT_NETWORK)
        except NotFound:
            typing.cast(Any, self).network_create(NetworkSpec(name=DEFAULT_NETWORK))
            return records.find(self.store, DEFAULT_NETWORK)

    def _net_upstreams(self) -> list[str]:
        env = os.environ.get(DNS_UPSTREAM_ENV)
        if env is not None:
            return [] if env.strip() in ("", "none") else \
                [s.strip() for s in env.split(",") if s.strip()]
        servers, _search, _opts = files.read_host_resolv()
        return servers

    # ------------------------------------------------------------------ prepare

    def _net_prepare(self, container_id: str, spec: ContainerSpec
                     ) -> tuple[tuple[NetworkAttachment, ...], str, str]:
        mode = spec.network_mode or ""
        hostname = spec.hostname or container_id[:12]
        if mode == "host":
            self._net_write_plan(container_id, {"mode": "host"})
            return (), _read_text("/etc/hosts") or files.hosts_text(hostname, None, []), \
                _read_text("/etc/resolv.conf")
        if mode == "none":
            self._net_write_plan(container_id, {"mode": "none"})
            return (), files.hosts_text(hostname, spec.domainname, [], spec.extra_hosts), \
                files.container_resolv(None, spec.dns, spec.dns_search, spec.dns_opt)
        if mode.startswith("container:"):
            return self._net_prepare_shared(container_id, mode.split(":", 1)[1], spec)

        endpoints = list(spec.networks)
        if not endpoints:
            name = mode if mode not in ("", "bridge", "default") else DEFAULT_NETWORK
            endpoints = [EndpointSpec(network=name)]
        old_plan = self._net_plan(container_id)
        nets = []
        for ep in endpoints:
            net = self._net_default_network() if ep.network == DEFAULT_NETWORK else \
                self._net_find_for(ep.network)
            nets.append((net["id"], ep))
        for extra in old_plan.get("connected", []):
            if extra["network"] not in [n for n, _ in nets]:
                nets.append((extra["network"], EndpointSpec(network=extra["network"],
                                                            aliases=tuple(extra["aliases"]))))
        nets.sort(key=lambda item: -item[1].priority)

        name = self._net_container_name(container_id, spec)
        dns_names = _dedupe([name, hostname, container_id[:12], *_compose_names(spec)])
        attachments = []
        with self.store.lock(records.LOCK):
            for index, (network_id, ep) in enumerate(nets):
                net = records.find(self.store, network_id)
                for stale in [c for c in net["endpoints"] if c != container_id and
                              not self.store.path("containers", c).is_dir()]:
                    del net["endpoints"][stale]  # its container vanished unreleased
                existing = net["endpoints"].get(container_id)
                if existing and (not ep.ipv4_address or existing["ip"] == ep.ipv4_address):
                    addr = ipaddress.IPv4Address(existing["ip"])
                else:
                    pool = records.pool_of(net)
                    if existing:
                        pool.release(existing["ip"])
                    addr = pool.allocate(ep.ipv4_address)
                prefix = ipaddress.IPv4Network(net["subnet"]).prefixlen
                mac = ep.mac_address or ipam.mac_for(addr)
                net["endpoints"][container_id] = {
                    "name": name, "ip": str(addr), "prefix": prefix, "mac": mac,
                    "ifname": f"eth{index}", "veth": bridge.veth_name_for(container_id, net["id"]),
                    "aliases": list(ep.aliases),
                    "dns_names": _dedupe([*dns_names, *ep.aliases, f"{name}.{net['name']}"]),
                    "dns": list(spec.dns), "active": False,
                }
                records.save(self.store, net, durable=False)
                attachments.append(NetworkAttachment(
                    network=net["name"], network_id=net["id"], ip_address=str(addr),
                    prefix_len=prefix, gateway=net["gateway"], mac_address=mac,
                    aliases=tuple(ep.aliases)))
        self._net_write_plan(container_id, {
            "mode": "bridge", "networks": [a.network_id for a in attachments],
            "ports": [_port_json(p) for p in spec.ports],
            "connected": old_plan.get("connected", []),
        })
        first = attachments[0]
        hosts = files.hosts_text(hostname, spec.domainname, [first.ip_address],
                                 spec.extra_hosts, host_gateway=first.gateway)
        resolv = files.container_resolv(first.gateway, spec.dns, spec.dns_search, spec.dns_opt)
        return tuple(attachments), hosts, resolv

    def _net_find_for(self, ref: str) -> dict[str, Any]:
        try:
            return records.find(self.store, ref)
        except NotFound:
            raise NotFound(f"network {ref} not found") from None

    def _net_prepare_shared(self, container_id: str, ref: str, spec: ContainerSpec
                            ) -> tuple[tuple[NetworkAttachment, ...], str, str]:
        target = self._net_container_id(ref)
        if target == container_id:
            raise InvalidArgument("network_mode container: cannot join its own namespace")
        self._net_write_plan(container_id, {"mode": "container", "target": target})
        bundle = self.store.path("containers", target)
        hosts = _read_text(bundle / "hosts") or files.hosts_text(
            spec.hostname or target[:12], None, [])
        resolv = _read_text(bundle / "resolv.conf") or files.container_resolv(
            None, spec.dns, spec.dns_search, spec.dns_opt)
        return (), hosts, resolv

    def _net_write_plan(self, cid: str, plan: dict[str, Any]) -> None:
        self.store.write_json(records.plan_path(self.store, cid), plan, durable=False)

    # ------------------------------------------------------------------ setup

    def _net_setup(self, container_id: str, pid: int) -> tuple[PublishedPort, ...]:
        plan = self._net_plan(container_id)
        mode = plan.get("mode", "none")
        if mode in ("host", "container"):
            return ()
        children_in_own_pid_namespace()
        with Netlink.inside(pid) as inner:
            inner.set_link(1, up=True)
        if mode != "bridge":
            return ()
        network_ids = list(plan.get("networks", []))
        done: list[str] = []
        try:
            for network_id in network_ids:
                self._net_attach(container_id, network_id, pid,
                                 default_route=not done)
                done.append(network_id)
            ports = [_port_from_json(p) for p in plan.get("ports", [])]
            published: tuple[PublishedPort, ...] = ()
            if ports:
                published = self._net_publish(container_id, network_ids[0], ports, plan)
            plan["published"] = [p.__dict__ for p in published]
            self._net_write_plan(container_id, plan)
            return published
        except BaseException:
            with _PROXIES_LOCK:
                for proxy in _PROXIES.pop(container_id, []):
                    proxy.stop()
            if plan.get("port_driver") == "nft":
                with contextlib.suppress(Exception):
                    nft.unpublish(container_id[:12])
            for network_id in done:
                with contextlib.suppress(Exception):
                    self._net_detach(container_id, network_id)
            raise

    def _net_publish(self, cid: str, network_id: str, ports: list[PortBinding],
                     plan: dict[str, Any]) -> tuple[PublishedPort, ...]:
        """Bind (reserve) every host port, then relay by proxy threads or nft DNAT."""
        net = records.find(self.store, network_id)
        ip = net["endpoints"][cid]["ip"]
        proxies = bind_all([(p, ip) for p in ports])
        driver = os.environ.get(PORT_DRIVER_ENV, "proxy")
        try:
            if driver == "nft":
                nft.publish(cid[:12], net["bridge"], [
                    nft.Dnat(p.binding.protocol, p.binding.host_ip or "0.0.0.0",
                             p.published.host_port, ip, p.binding.container_port)
                    for p in proxies])
            else:
                for proxy in proxies:
                    proxy.start()
        except BaseException:
            for proxy in proxies:
                proxy.stop()
            raise
        plan["port_driver"] = driver
        with _PROXIES_LOCK:
            _PROXIES[cid] = proxies
        return tuple(p.published for p in proxies)

    def _net_attach(self, cid: str, network_id: str, pid: int, default_route: bool) -> None:
        """Wire one endpoint: veth into the container, address, route; then register it."""
        with self.store.lock(records.LOCK):
            net = records.find(self.store, network_id)
        ep = net["endpoints"].get(cid)
        if ep is None:
            raise EngineRuntimeError(f"container {cid[:12]} has no address on network "
                                     f"{net['name']}; it was not prepared")
        first_here = not dnsd.running_pid(self.store, network_id)
        with Netlink() as nl:
            bridge_index = bridge.ensure(net, self.store.root, nl, verify_rules=first_here)
            nl.delete_link(ep["veth"])
            try:
                veth = nl.create_veth(ep["veth"], ep["ifname"], pid, ep["mac"], net.get("mtu"))
                nl.set_link(veth, up=True, master=bridge_index)
                with Netlink.inside(pid) as inner:
                    index = inner.link_index(ep["ifname"])
                    if index is None:
                        raise EngineRuntimeError(f"{ep['ifname']} vanished in container")
                    inner.add_address(index, ipaddress.IPv4Interface(
                        f"{ep['ip']}/{ep['prefix']}"))
                    inner.set_link(index, up=True)
                    if default_route and not net.get("internal"):
                        inner.add_default_route(net["gateway"], index)
            except OSError as exc:
                nl.delete_link(ep["veth"])
                raise EngineRuntimeError(f"cannot attach to network {net['name']}: "
                                         f"{exc.strerror or exc}")
        self._net_set_active(cid, network_id, True)
        try:
            self._ensure_dns(network_id)
        except BaseException:
            self._net_set_active(cid, network_id, False)
            with Netlink() as nl:
                nl.delete_link(ep["veth"])
            raise

    def _net_set_active(self, cid: str, network_id: str, active: bool) -> dict[str, Any] | None:
        with self.store.lock(records.LOCK):
            try:
                net = records.find(self.store, network_id)
            except NotFound:
                return None
            ep = net["endpoints"].get(cid)
            if ep is not None and ep.get("active") != active:
                ep["active"] = active
                records.save(self.store, net, durable=False)
            if not active and not any(e.get("active") for e in net["endpoints"].values()):
                bridge.forget_verified(net["bridge"])
            return ep

    def _ensure_dns(self, network_id: str) -> None:
        """Start the network's DNS responder unless it already runs."""
        with self.store.lock(dnsd.lock_name(network_id)):
            if dnsd.running_pid(self.store, network_id):
                return
            net = records.find(self.store, network_id)
            dnsd.start(self.store, network_id, net["gateway"], self._net_upstreams())

    # ------------------------------------------------------------------ teardown / release

    def _net_detach(self, cid: str, network_id: str) -> None:
        ep = self._net_set_active(cid, network_id, False)
        if ep is not None:
            with Netlink() as nl:
                nl.delete_link(ep["veth"])

    def _net_teardown(self, container_id: str) -> None:
        with _PROXIES_LOCK:
            proxies = _PROXIES.pop(container_id, [])
        for proxy in proxies:
            proxy.stop()
        plan = self._net_plan(container_id)
        if plan.get("port_driver") == "nft":
            nft.unpublish(container_id[:12])
        for network_id in plan.get("networks", []):
            with contextlib.suppress(NotFound):
                self._net_detach(container_id, network_id)

    def _net_release(self, container_id: str) -> None:
        self._net_teardown(container_id)
        with self.store.lock(records.LOCK):
            for net in records.load_all(self.store):
                if container_id in net.get("endpoints", {}):
                    del net["endpoints"][container_id]
                    records.save(self.store, net, durable=False)
        with contextlib.suppress(FileNotFoundError):
            records.plan_path(self.store, container_id).unlink()

    # ------------------------------------------------------------------ connect / disconnect

    def _net_connect(self, cid: str, network_id: str, endpoint: EndpointSpec) -> None:
        plan = self._net_plan(cid)
        if plan.get("mode") not in (None, "bridge"):
            raise InvalidArgument(f"container {cid[:12]} uses network_mode {plan['mode']}: "
                                  "it cannot be connected to a network")
        connected = [c for c in plan.get("connected", []) if c["network"] != network_id]
        connected.append({"network": network_id, "aliases": list(endpoint.aliases)})
        plan["connected"] = connected
        networks = [n for n in plan.get("networks", []) if n != network_id]
        with self.store.lock(records.LOCK):
            net = records.find(self.store, network_id)
            pool = records.pool_of(net)
            addr = pool.allocate(endpoint.ipv4_address)
            name = cid[:12]
            dns_names = [name]
            other = next((records.find(self.store, n)["endpoints"].get(cid) for n in networks),
                         None)
            if other:
                name, dns_names = other["name"], [n for n in other["dns_names"]
                                                  if n not in other["aliases"]]
            net["endpoints"][cid] = {
                "name": name, "ip": str(addr),
                "prefix": ipaddress.IPv4Network(net["subnet"]).prefixlen,
                "mac": endpoint.mac_address or ipam.mac_for(addr),
                "ifname": f"eth{len(networks)}", "veth": bridge.veth_name_for(cid, network_id),
                "aliases": list(endpoint.aliases),
                "dns_names": _dedupe([*dns_names, *endpoint.aliases]),
                "dns": other.get("dns", []) if other else [], "active": False,
            }
            records.save(self.store, net, durable=False)
        plan["networks"] = [*networks, network_id]
        plan.setdefault("mode", "bridge")
        self._net_write_plan(cid, plan)
        pid_of = getattr(self, "_container_pid", None)
        pid = 0
        if pid_of is not None:
            with contextlib.suppress(Exception):
                pid = int(pid_of(cid))
        if pid:
            self._net_attach(cid, network_id, pid, default_route=not networks)
        self._net_record_attachments(cid)

    def _net_disconnect(self, cid: str, network_id: str) -> None:
        self._net_detach(cid, network_id)
        with self.store.lock(records.LOCK):
            net = records.find(self.store, network_id)
            net["endpoints"].pop(cid, None)
            records.save(self.store, net, durable=False)
        plan = self._net_plan(cid)
        if plan:
            plan["networks"] = [n for n in plan.get("networks", []) if n != network_id]
            plan["connected"] = [c for c in plan.get("connected", [])
                                 if c["network"] != network_id]
            self._net_write_plan(cid, plan)
        self._net_record_attachments(cid)

    def _net_record_attachments(self, cid: str) -> None:
        """Tell the container's state (runtime/bundle.py's `networks`) what it is attached to
        now, so inspect shows a connect or disconnect at once."""
        if getattr(self, "_container_record", None) is None:
            return
        from engine.runtime import bundle as runtime_bundle

        attachments = []
        for network_id in self._net_plan(cid).get("networks", []):
            with contextlib.suppress(NotFound):
                net = records.find(self.store, network_id)
                ep = net["endpoints"][cid]
                attachments.append({
                    "network": net["name"], "network_id": net["id"], "ip_address": ep["ip"],
                    "prefix_len": ep["prefix"], "gateway": net["gateway"],
                    "mac_address": ep["mac"], "aliases": list(ep["aliases"])})
        runtime_bundle.update_state(self.store, cid, networks=attachments)


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _port_json(p: PortBinding) -> dict[str, Any]:
    return {"container_port": p.container_port, "protocol": p.protocol,
            "host_ip": p.host_ip, "host_port": p.host_port}


def _port_from_json(data: dict[str, Any]) -> PortBinding:
    return PortBinding(container_port=int(data["container_port"]),
                       protocol=data.get("protocol", "tcp"), host_ip=data.get("host_ip", ""),
                       host_port=str(data.get("host_port", "")))
