"""The book's networking and volume scenarios (seed-inventory sections 8.3 and 8.4, C1-C5
and D1-D3), driven through the real `pycompose` command on `busybox:local`."""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.book_fixtures import BASE, Pyc, free_port, http_get, pyc, wait_for, write_files

pytestmark = [pytest.mark.root, pytest.mark.e2e]
__all__ = ["pyc"]


def inspect(pyc: Pyc, kind: str, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(pyc(kind, "inspect", ref).stdout)[0]  # type: ignore[no-any-return]


def eth0_address(pyc: Pyc, ref: str) -> ipaddress.IPv4Interface:
    out = pyc("container", "exec", ref, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    m = re.search(r"inet (\S+)", out)
    assert m, out
    return ipaddress.IPv4Interface(m.group(1))


def test_c1_default_bridge(pyc: Pyc, tmp_path: Path) -> None:
    www = write_files(tmp_path / "www", {"index.html": "from b\n"})
    pyc("container", "run", "-d", "--name", "c1a", BASE, "sleep", "600")
    pyc("container", "run", "-d", "--name", "c1b", "-v", f"{www}:/www:ro", BASE,
        "httpd", "-f", "-p", "8080", "-h", "/www")
    try:
        a, b = eth0_address(pyc, "c1a"), eth0_address(pyc, "c1b")
        assert a.network == b.network and a.ip != b.ip
        net = inspect(pyc, "network", "bridge")
        config = net["IPAM"]["Config"][0]
        assert ipaddress.IPv4Network(config["Subnet"]) == a.network
        assert ipaddress.IPv4Address(config["Gateway"]) in a.network
        members = {c["Name"]: c["IPv4Address"] for c in net["Containers"].values()}
        assert members == {"c1a": str(a), "c1b": str(b)}
        assert pyc("container", "exec", "c1a", "wget", "-qO-", f"http://{b.ip}:8080/"
                   ).stdout == "from b\n"
        ping = pyc("container", "exec", "c1a", "ping", "-c1", "-W2", str(b.ip)).stdout
        assert "1 packets received" in ping
    finally:
        pyc("container", "rm", "-f", "c1a", "c1b")


def test_c2_user_defined_bridge_and_dns(pyc: Pyc, tmp_path: Path) -> None:
    www = write_files(tmp_path / "www", {"index.html": "botnet page\n"})
    pyc("network", "create", "-d", "bridge", "botnet")
    try:
        row = [line.split() for line in pyc("network", "ls").stdout.splitlines()
               if " botnet " in line]
        assert row and row[0][1:] == ["botnet", "bridge", "local"]
        pyc("container", "run", "-d", "--network", "botnet", "--name", "web", "-v",
            f"{www}:/var/www:ro", BASE, "httpd", "-f", "-p", "8080", "-h", "/var/www")
        assert pyc("container", "run", "--rm", "--network", "botnet", BASE, "wget", "-qO-",
                   "http://web:8080/").stdout == "botnet page\n"
        lookup = pyc("container", "run", "--rm", "--network", "botnet", BASE,
                     "nslookup", "web").stdout
        web_ip = str(eth0_address(pyc, "web").ip)
        assert re.search(r"Name:\s+web\s+Address:\s+" + re.escape(web_ip), lookup), lookup
        outside = pyc("container", "run", "--rm", BASE, "wget", "-T", "2", "-qO-",
                      "http://web:8080/", code=None)
        assert outside.returncode != 0 and "botnet page" not in outside.stdout
        busy = pyc.fails("network", "rm", "botnet")
        assert "has active endpoints" in busy.stderr
        pyc("container", "rm", "-f", "web")
        assert pyc("network", "rm", "botnet").stdout == "botnet\n"
    finally:
        pyc("container", "rm", "-f", "web", code=None)
        pyc("network", "rm", "botnet", code=None)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, as servers
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def test_c3_port_publishing(pyc: Pyc, tmp_path: Path) -> None:
    www = write_files(tmp_path / "www", {"index.html": "published\n"})
    port, ingress = free_port(), free_port()
    pyc("container", "run", "-d", "--name", "pub", "-p", f"{port}:8080", "-v",
        f"{www}:/www:ro", "--health-cmd", "false", "--health-interval", "30s", BASE,
        "httpd", "-f", "-p", "8080", "-h", "/www")
    pyc("container", "run", "-d", "--name", "ingress", "--publish",
        f"mode=ingress,published={ingress},target=8080", "-v", f"{www}:/www:ro", BASE,
        "httpd", "-f", "-p", "8080", "-h", "/www")
    try:
        assert http_get(port) == "published\n"
        # reachable while the health check is still starting
        assert inspect(pyc, "container", "pub")["State"]["Health"]["Status"] == "starting"
        assert http_get(ingress) == "published\n"
        ports = pyc("container", "ls", "--format", "{{.Names}} {{.Ports}}").stdout
        assert f"pub 0.0.0.0:{port}->8080/tcp" in ports, ports

        taken = pyc.fails("container", "run", "-d", "--name", "clash", "-p", f"{port}:8080",
                          BASE, "httpd", "-f", "-p", "8080")
        assert str(port) in taken.stderr and "already allocated" in taken.stderr
        assert len(taken.stderr.strip().splitlines()) == 1
        assert inspect(pyc, "container", "clash")["State"]["Running"] is False

        pyc("container", "stop", "-t", "1", "pub")
        assert wait_for(lambda: port_is_free(port), 5)
    finally:
        pyc("container", "rm", "-f", "pub", "ingress", "clash", code=None)


def test_c4_host_none_container_modes(pyc: Pyc, tmp_path: Path) -> None:
    assert pyc("container", "run", "--rm", "--net=host", BASE, "hostname"
               ).stdout == socket.gethostname() + "\n"
    links = pyc("container", "run", "--rm", "--network", "none", BASE, "ip", "-o",
                "link").stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]

    port = free_port()
    www = write_files(tmp_path / "www", {"index.html": "on the host\n"})
    pyc("container", "run", "-d", "--net=host", "--name", "hostweb", "-v", f"{www}:/www:ro",
        BASE, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www")
    pyc("container", "run", "-d", "--name", "webc", "-v", f"{www}:/www:ro", BASE,
        "httpd", "-f", "-p", "8080", "-h", "/www")
    try:
        assert http_get(port) == "on the host\n"
        assert pyc("container", "run", "--rm", "--net=container:webc", BASE, "wget", "-qO-",
                   "http://localhost:8080/").stdout == "on the host\n"
    finally:
        pyc("container", "rm", "-f", "hostweb", "webc")


def unused_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    taken = [ipaddress.IPv4Network(w, strict=False) for w in re.findall(
        r"^(\d+\.\d+\.\d+\.\d+/\d+)", routes, re.M)]
    # the book's 172.30.0.0/24 when free (other bridges may hold it), else one in 10/8
    candidates = ["172.30.0.0/24"] + [f"10.{random.randrange(100, 250)}."
                                      f"{random.randrange(256)}.0/24" for _ in range(50)]
    for text in candidates:
        net = ipaddress.IPv4Network(text)
        if not any(net.overlaps(t) for t in taken):
            return net
    raise AssertionError("no free /24 for the test network")


def test_c5_network_ls_inspect_subnet(pyc: Pyc) -> None:
    pyc("container", "run", "--rm", BASE, "true")  # the default bridge exists once used
    lines = pyc("network", "ls").stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
    assert any(line.split()[1:] == ["bridge", "bridge", "local"] for line in lines[1:])
    subnet = unused_subnet()
    gateway = str(subnet.network_address + 1)
    pyc("network", "create", "--subnet", str(subnet), "--gateway", gateway, "fixednet")
    try:
        doc = inspect(pyc, "network", "fixednet")
        assert {"Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                "Internal", "Containers", "Options", "Labels"} <= set(doc)
        assert doc["IPAM"]["Config"] == [{"Subnet": str(subnet), "Gateway": gateway}]
        pyc("container", "run", "-d", "--network", "fixednet", "--name", "fixed", BASE,
            "sleep", "600")
        assert eth0_address(pyc, "fixed").ip in subnet
    finally:
        pyc("container", "rm", "-f", "fixed", code=None)
        pyc("network", "rm", "fixednet", code=None)


def test_d1_volume_lifecycle(pyc: Pyc) -> None:
    assert pyc("volume", "ls", "-q").stdout == ""
    pyc("container", "run", "--rm", "--network", "none", "-v", "/tmp:/tmp", BASE, "true")
    assert pyc("volume", "ls", "-q").stdout == ""
    assert pyc("volume", "create", "my-data").stdout == "my-data\n"
    doc = inspect(pyc, "volume", "my-data")
    assert set(doc) >= {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                        "Scope"}
    assert doc["Driver"] == "local" and doc["Scope"] == "local" and doc["Name"] == "my-data"
    mount = ("--mount", "source=my-data,target=/app")
    pyc("container", "run", "--rm", "--network", "none", *mount, BASE, "touch",
        "/app/my-persistent-data")
    listing = pyc("container", "run", "--rm", "--network", "none", *mount, BASE, "ls", "-ln",
                  "/app/my-persistent-data").stdout.split()
    assert listing[2:4] == ["0", "0"] and listing[-1] == "/app/my-persistent-data"
    holder = pyc("container", "run", "--network", "none", "--name", "holder", "-d", "-v",
                 "my-data:/app", BASE, "true").stdout.strip()
    assert wait_for(lambda: not inspect(pyc, "container", "holder")["State"]["Running"], 5)
    try:
        busy = pyc.fails("volume", "rm", "my-data")
        assert "volume is in use" in busy.stderr and holder[:12] in busy.stderr
        pyc("container", "rm", "holder")
        assert pyc("volume", "rm", "my-data").stdout == "my-data\n"
        assert pyc("volume", "ls", "-q").stdout == ""
    finally:
        pyc("container", "rm", "-f", "holder", code=None)
        pyc("volume", "rm", "-f", "my-data", code=None)


def test_d2_bind_mount_semantics(pyc: Pyc, tmp_path: Path) -> None:
    data = write_files(tmp_path / "shared", {"note.txt": "first\n"})
    pyc("container", "run", "-d", "--network", "none", "--name", "binder", "-v",
        f"{data}:/data", BASE, "sleep", "600")
    try:
        assert pyc("container", "exec", "binder", "cat", "/data/note.txt").stdout == "first\n"
        (data / "note.txt").write_text("edited on the host\n")
        assert pyc("container", "exec", "binder", "cat", "/data/note.txt"
                   ).stdout == "edited on the host\n"
        pyc("container", "exec", "binder", "sh", "-c", "echo from inside > /data/out.txt")
        assert (data / "out.txt").read_text() == "from inside\n"
    finally:
        pyc("container", "rm", "-f", "binder")
    assert (data / "note.txt").exists() and (data / "out.txt").exists()


def test_d3_volume_ownership(pyc: Pyc) -> None:
    vol = ("-v", "owned:/v")
    run = ("container", "run", "--rm", "--network", "none")
    try:
        pyc(*run, *vol, BASE, "sh", "-c", "mkdir -p /v/dir && chmod 0755 /v/dir && "
            "touch /v/dir/by-root")
        assert pyc(*run, *vol, BASE, "stat", "-c", "%u", "/v/dir/by-root").stdout == "0\n"
        denied = pyc(*run, *vol, "-u", "500", BASE, "touch", "/v/dir/by-500", code=None)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        pyc(*run, *vol, BASE, "chown", "500", "/v/dir")
        pyc(*run, *vol, "-u", "500", BASE, "touch", "/v/dir/by-500")
        assert pyc(*run, *vol, BASE, "stat", "-c", "%u", "/v/dir/by-500").stdout == "500\n"
    finally:
        pyc("volume", "rm", "-f", "owned", code=None)
