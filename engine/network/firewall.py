"""iptables rules for our bridges: forwarding, isolation, masquerade; all tagged.

dockerd may set `FORWARD DROP`, and with br_netfilter even bridged frames between two
containers of one bridge traverse FORWARD; an accept in a separate nft table does not
override that drop (engine-feasibility.md §4), so the rules live in iptables (nft
backend) in chains of our own, jumped to from the top of FORWARD and POSTROUTING:

    filter PYCOMPOSE-FORWARD    per bridge: intra-bridge accept, jump to isolation,
                                outbound accept + replies (or drops for internal networks)
    filter PYCOMPOSE-ISOLATION  per bridge: drop traffic coming from another of our bridges
    nat PYCOMPOSE-POSTROUTING   per non-internal bridge: masquerade its subnet going out

Every rule carries `-m comment --comment pycompose:<bridge>` so it can be found and
removed; the chains and jumps go away with the last rule. Batches are applied with one
`iptables-restore --noflush` under a host-wide lock (other data roots share the host).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import threading
from collections.abc import Iterator

from engine.api import EngineRuntimeError

FORWARD_CHAIN = "PYCOMPOSE-FORWARD"
ISOLATION_CHAIN = "PYCOMPOSE-ISOLATION"
NAT_CHAIN = "PYCOMPOSE-POSTROUTING"
HOST_LOCK = "/run/pycompose-net.lock"


_held = threading.local()


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """Serialises host-wide network changes (subnet choice, bridges, rules) across roots.

    Re-entrant within a thread, so a caller holding it can call install/remove."""
    depth = getattr(_held, "depth", 0)
    if depth:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held.depth = 1
        yield
    finally:
        _held.depth = 0
        os.close(fd)


def tag(bridge: str) -> str:
    return f"pycompose:{bridge}"


def _run(args: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise EngineRuntimeError(f"{args[0]} is not installed; it is needed for networks")
    if done.returncode != 0:
        raise EngineRuntimeError(f"{' '.join(args[:3])}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def _chain_rules(table: str, chain: str) -> list[str]:
    try:
        out = _run(["iptables", "-w", "-t", table, "-S", chain])
    except EngineRuntimeError:
        return []
    return [line for line in out.splitlines() if line.startswith("-A ")]


def _has_chain(table: str, chain: str) -> bool:
    done = subprocess.run(["iptables", "-w", "-t", table, "-n", "-L", chain],
                          capture_output=True, text=True)
    return done.returncode == 0


def _has_rule(table: str, rule: list[str]) -> bool:
    done = subprocess.run(["iptables", "-w", "-t", table, "-C", *rule], capture_output=True)
    return done.returncode == 0


def _restore(batches: dict[str, list[str]]) -> None:
    text = ""
    for table, lines in batches.items():
        if lines:
            text += f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n"
    if text:
        _run(["iptables-restore", "-w", "--noflush"], text)


def _ensure_chains() -> None:
    batches: dict[str, list[str]] = {"filter": [], "nat": []}
    for table, chain in (("filter", FORWARD_CHAIN), ("filter", ISOLATION_CHAIN),
                         ("nat", NAT_CHAIN)):
        if not _has_chain(table, chain):
            batches[table].append(f":{chain} - [0:0]")
    _restore(batches)
    jumps = [("filter", ["FORWARD", "-j", FORWARD_CHAIN]),
             ("nat", ["POSTROUTING", "-j", NAT_CHAIN])]
    for table, rule in jumps:
        if not _has_rule(table, rule):
            _run(["iptables", "-w", "-t", table, "-I", rule[0], "1", *rule[1:]])


def bridge_rules(bridge: str, subnet: str, internal: bool) -> dict[str, list[str]]:
    """The `-A` lines (iptables-restore syntax) for one bridge."""
    c = f'-m comment --comment "{tag(bridge)}"'
    fwd = [f"-A {FORWARD_CHAIN} -i {bridge} -o {bridge} {c} -j ACCEPT",
           f"-A {FORWARD_CHAIN} -i {bridge} ! -o {bridge} {c} -j {ISOLATION_CHAIN}"]
    nat = []
    if internal:
        fwd += [f"-A {FORWARD_CHAIN} -i {bridge} ! -o {bridge} {c} -j DROP",
                f"-A {FORWARD_CHAIN} -o {bridge} ! -i {bridge} {c} -j DROP"]
    else:
        fwd += [f"-A {FORWARD_CHAIN} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED "
                f"{c} -j ACCEPT",
                f"-A {FORWARD_CHAIN} -i {bridge} ! -o {bridge} {c} -j ACCEPT"]
        nat = [f"-A {NAT_CHAIN} -s {subnet} ! -o {bridge} {c} -j MASQUERADE"]
    iso = [f"-A {ISOLATION_CHAIN} -o {bridge} {c} -j DROP"]
    return {"filter": fwd + iso, "nat": nat}


def install(bridge: str, subnet: str, internal: bool) -> None:
    """Add the bridge's rules (idempotent: existing rules of the bridge are replaced)."""
    with host_lock():
        _remove_tagged(bridge)
        _ensure_chains()
        _restore(bridge_rules(bridge, subnet, internal))
        if not internal:
            _enable_forwarding()


def remove(bridge: str) -> None:
    """Remove every rule tagged for `bridge`; drop our chains when they are empty."""
    with host_lock():
        _remove_tagged(bridge)
        _drop_empty_chains()


def intact(bridge: str) -> bool:
    """The bridge's intra-bridge accept and the jump to our chain are both in place."""
    return _has_rule("filter", ["FORWARD", "-j", FORWARD_CHAIN]) and _has_rule(
        "filter", [FORWARD_CHAIN, "-i", bridge, "-o", bridge, "-m", "comment", "--comment",
                   tag(bridge), "-j", "ACCEPT"])


def _is_tagged(rule: str, bridge: str | None) -> bool:
    marker = f'--comment "{tag(bridge)}"' if bridge else '--comment "pycompose:'
    return marker in rule


def tagged_rules(bridge: str | None = None) -> list[str]:
    """Our rules still present (all of them, or those of one bridge)."""
    found = []
    for table, chain in (("filter", FORWARD_CHAIN), ("filter", ISOLATION_CHAIN),
                         ("nat", NAT_CHAIN)):
        found += [f"{table} {r}" for r in _chain_rules(table, chain) if _is_tagged(r, bridge)]
    return found


def _remove_tagged(bridge: str) -> None:
    batches: dict[str, list[str]] = {"filter": [], "nat": []}
    for table, chain in (("filter", FORWARD_CHAIN), ("filter", ISOLATION_CHAIN),
                         ("nat", NAT_CHAIN)):
        batches[table] += ["-D" + r[2:] for r in _chain_rules(table, chain)
                           if _is_tagged(r, bridge)]
    _restore(batches)


def _drop_empty_chains() -> None:
    if _chain_rules("filter", FORWARD_CHAIN) or _chain_rules("filter", ISOLATION_CHAIN) \
            or _chain_rules("nat", NAT_CHAIN):
        return
    for table, parent, chain in (("filter", "FORWARD", FORWARD_CHAIN),
                                 ("nat", "POSTROUTING", NAT_CHAIN)):
        while _has_rule(table, [parent, "-j", chain]):
            _run(["iptables", "-w", "-t", table, "-D", parent, "-j", chain])
    for table, chain in (("filter", FORWARD_CHAIN), ("filter", ISOLATION_CHAIN),
                         ("nat", NAT_CHAIN)):
        if _has_chain(table, chain):
            _run(["iptables", "-w", "-t", table, "-X", chain])


def _enable_forwarding() -> None:
    """Outbound traffic from a bridge needs IP forwarding, as with dockerd."""
    path = "/proc/sys/net/ipv4/ip_forward"
    with open(path) as f:
        if f.read().strip() == "1":
            return
    with open(path, "w") as f:
        f.write("1\n")
