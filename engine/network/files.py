"""The texts of a container's /etc/hosts and /etc/resolv.conf, as Docker writes them."""

from __future__ import annotations

from collections.abc import Iterable

from engine.api import InvalidArgument

HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def parse_extra_host(entry: str, host_gateway: str | None) -> tuple[str, str]:
    """`host:ip`, `host=ip` (or `host:host-gateway`) -> (host, ip)."""
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    name, ip = name.strip(), ip.strip().strip("[]")
    if not name or not ip:
        raise InvalidArgument(f"invalid extra_hosts entry {entry!r}: expected HOST:IP")
    if ip == "host-gateway":
        if not host_gateway:
            raise InvalidArgument(f"extra_hosts {entry!r}: no host gateway on this network")
        ip = host_gateway
    return name, ip


def hosts_text(hostname: str, domainname: str | None, addresses: Iterable[str],
               extra_hosts: Iterable[str] = (), host_gateway: str | None = None) -> str:
    """Localhost entries, the extra hosts, then the container's own addresses."""
    text = HOSTS_HEADER
    for entry in extra_hosts:
        name, ip = parse_extra_host(entry, host_gateway)
        text += f"{ip}\t{name}\n"
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for ip in addresses:
        text += f"{ip}\t{names}\n"
    return text


def read_host_resolv(path: str = "/etc/resolv.conf") -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) of the host's resolv.conf."""
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return servers, search, options
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options += fields[1:]
    return servers, search, options


def resolv_text(nameservers: Iterable[str], search: Iterable[str] = (),
                options: Iterable[str] = ()) -> str:
    text = "".join(f"nameserver {ns}\n" for ns in nameservers)
    search = list(search)
    if search:
        text += "search " + " ".join(search) + "\n"
    options = list(options)
    if options:
        text += "options " + " ".join(options) + "\n"
    return text


def container_resolv(gateway: str | None, dns: Iterable[str], dns_search: Iterable[str],
                     dns_opt: Iterable[str], host_path: str = "/etc/resolv.conf") -> str:
    """With a DNS responder on `gateway`, it is the only nameserver (it forwards what it
    does not know, to `dns` if given); without one, `dns` or the host's non-local
    servers are used."""
    host_servers, host_search, host_options = read_host_resolv(host_path)
    search = list(dns_search) or host_search
    if gateway:
        options = list(dns_opt) or ["ndots:0"]
        return resolv_text([gateway], search, options)
    servers = list(dns) or [s for s in host_servers if not s.startswith("127.")] \
        or ["8.8.8.8", "8.8.4.4"]
    return resolv_text(servers, search, list(dns_opt) or host_options)
