"""Optional port publishing by nftables DNAT (PYCOMPOSE_PORT_DRIVER=nft), as dockerd with
`userland-proxy: false`: faster than the proxy, at the price of kernel state.

Table `ip pycompose`: `output` and `prerouting` nat chains DNAT a host address:port to the
container; `postrouting` masquerades 127.0.0.0/8 leaving through the bridge, which with
`route_localnet=1` on the bridge makes 127.0.0.1 work (engine-feasibility.md §4). Every
rule carries `comment "pycompose:<tag>"`; the table goes away with its last rule. The host
port stays reserved by a bound socket held by the caller, so clashes are still detected.
Traffic from other machines would also need a FORWARD accept; it is not added.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from engine.api import EngineRuntimeError
from engine.network.firewall import host_lock

TABLE = "pycompose"
CHAINS = ("output", "prerouting", "postrouting")


@dataclass(frozen=True)
class Dnat:
    protocol: str  # tcp or udp
    host_ip: str  # "0.0.0.0" means every local address
    host_port: int
    container_ip: str
    container_port: int


def _nft(script: str) -> str:
    try:
        done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                              timeout=30)
    except FileNotFoundError:
        raise EngineRuntimeError("nft is not installed; it is needed for PYCOMPOSE_PORT_DRIVER=nft")
    if done.returncode != 0:
        raise EngineRuntimeError(f"nft: {done.stderr.strip() or 'failed'}")
    return done.stdout


def _list(chain: str) -> str:
    done = subprocess.run(["nft", "-a", "list", "chain", "ip", TABLE, chain],
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def tag(name: str) -> str:
    return f"pycompose:{name}"


def rules_script(name: str, bridge: str, rules: list[Dnat]) -> str:
    c = f'comment "{tag(name)}"'
    lines = [f"table ip {TABLE} {{",
             "  chain output { type nat hook output priority -100; policy accept; }",
             "  chain prerouting { type nat hook prerouting priority -100; policy accept; }",
             "  chain postrouting { type nat hook postrouting priority 100; policy accept; }",
             "}"]
    for r in rules:
        match = "fib daddr type local" if r.host_ip in ("", "0.0.0.0") else f"ip daddr {r.host_ip}"
        target = f"{r.protocol} dport {r.host_port} dnat to {r.container_ip}:{r.container_port}"
        for chain in ("output", "prerouting"):
            lines.append(f"add rule ip {TABLE} {chain} {match} {target} {c}")
    lines.append(f'add rule ip {TABLE} postrouting ip saddr 127.0.0.0/8 oifname "{bridge}" '
                 f"masquerade {c}")
    return "\n".join(lines) + "\n"


def publish(name: str, bridge: str, rules: list[Dnat]) -> None:
    """Install DNAT rules tagged `name` (a container id) towards a container on `bridge`."""
    with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
        f.write("1\n")
    with host_lock():
        _nft(rules_script(name, bridge, rules))


def tagged(name: str | None = None) -> list[tuple[str, int]]:
    """(chain, handle) of our rules (all of them, or those tagged `name`)."""
    marker = f'comment "{tag(name)}"' if name else 'comment "pycompose:'
    found = []
    for chain in CHAINS:
        for line in _list(chain).splitlines():
            m = re.search(r"# handle (\d+)", line)
            if m and marker in line:
                found.append((chain, int(m.group(1))))
    return found


def unpublish(name: str) -> None:
    """Remove the rules tagged `name`; remove the table once it holds no rule."""
    with host_lock():
        doomed = tagged(name)
        if doomed:
            _nft("".join(f"delete rule ip {TABLE} {chain} handle {handle}\n"
                         for chain, handle in doomed))
        if not tagged() and any(_list(chain) for chain in CHAINS):
            _nft(f"delete table ip {TABLE}\n")
