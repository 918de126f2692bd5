#!/usr/bin/env python3
"""Throughput and 1-byte latency through a published port vs direct to the container IP.

    .venv/bin/python bench/network_bench.py            # 5 runs of 200 MB, 2000 round trips
    .venv/bin/python bench/network_bench.py -n 9 --mb 100 --json

Run as root. Paths: direct, the userland proxy and nft DNAT. A busybox container on its own bridge runs a sink (port 9000: reads until
EOF, answers the byte count) and an echo server (9001), in the host's python3 bound in
read-only; both are published on 127.0.0.1 through the userland proxy. Each path is
measured as the median of N runs: throughput of one connection sending `--mb` MB,
connect + first round trip, and the median 1-byte round trip. Also timed: container
start with a network and published ports vs `network_mode: none`. Traffic stays on
loopback and the bench's own bridge; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = """
import socket, threading
def sink(conn):
    total = 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        total += len(data)
    conn.sendall(str(total).encode())
    conn.close()
def echo(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()
def serve(port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()
threading.Thread(target=serve, args=(9000, sink), daemon=True).start()
serve(9001, echo)
"""


def connect(addr: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(addr, timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def throughput(addr: tuple[str, int], megabytes: int) -> float:
    """Bytes per second of one connection sending `megabytes` MB to the sink."""
    chunk = b"\0" * (1 << 20)
    start = time.perf_counter()
    with connect(addr) as s:
        for _ in range(megabytes):
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        answer = s.recv(64)
    elapsed = time.perf_counter() - start
    if int(answer) != megabytes << 20:
        raise RuntimeError(f"sink got {answer!r} bytes, sent {megabytes << 20}")
    return (megabytes << 20) / elapsed


def latency(addr: tuple[str, int], rounds: int) -> tuple[float, float]:
    """(connect + first round trip, median 1-byte round trip), in seconds."""
    start = time.perf_counter()
    s = connect(addr)
    s.sendall(b"x")
    s.recv(1)
    first = time.perf_counter() - start
    samples = []
    with s:
        for _ in range(rounds):
            t = time.perf_counter()
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise RuntimeError("echo answered something else")
            samples.append(time.perf_counter() - t)
    return first, statistics.median(samples)


def start_time(engine: Any, spec: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        c = engine.container_create(spec)
        t = time.perf_counter()
        engine.container_start(c.id)
        times.append(time.perf_counter() - t)
        engine.container_remove(c.id, force=True)
    return statistics.median(times)


def bench_docker(workdir: Path, runs: int, megabytes: int, rounds: int) -> dict[str, Any]:
    """The same server in a private dockerd (bench/docker_env.py) on its own bridge network:
    direct to the container IP and through a port published on 127.0.0.1 (docker-proxy)."""
    import uuid

    sys.path.insert(0, str(ROOT / "bench"))
    from docker_env import private_dockerd

    from tests.conftest import make_busybox_rootfs_tar

    results: dict[str, Any] = {}
    with private_dockerd() as docker:
        if docker is None:
            return results
        docker.import_image(make_busybox_rootfs_tar(workdir / "docker-bb.tar"), "bench:bb")
        net = f"netbench-{uuid.uuid4().hex[:8]}"
        docker.run("network", "create", net)
        host_python = [f"--mount=type=bind,src={p},dst={p},readonly"
                       for p in ("/usr", "/lib", "/lib64")]
        cid = docker.run("run", "-d", "--network", net, "-p", "127.0.0.1::9000",
                         "-p", "127.0.0.1::9001", *host_python, "bench:bb",
                         "/usr/bin/python3", "-c", SERVER).stdout.strip()
        info = json.loads(docker.run("inspect", cid).stdout)[0]["NetworkSettings"]
        ip = info["Networks"][net]["IPAddress"]
        published = {int(k.split("/")[0]): int(v[0]["HostPort"])
                     for k, v in info["Ports"].items() if v}
        paths = {"docker: direct to container": ((ip, 9000), (ip, 9001)),
                 "docker: published (docker-proxy)": (("127.0.0.1", published[9000]),
                                                      ("127.0.0.1", published[9001]))}
        for label, (sink, echo) in paths.items():
            throughput(sink, 8)  # warm-up
            rates = [throughput(sink, megabytes) for _ in range(runs)]
            lat = [latency(echo, rounds) for _ in range(runs)]
            results[label] = {
                "throughput_GBps": statistics.median(rates) / 1e9,
                "connect_first_rtt_ms": statistics.median(f for f, _ in lat) * 1e3,
                "rtt_us": statistics.median(r for _, r in lat) * 1e6,
            }
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=5)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-docker", action="store_true",
                    help="do not compare with a private dockerd (bench/docker_env.py)")
    args = ap.parse_args()

    from engine.api import ContainerSpec, EndpointSpec, Mount, NetworkSpec, PortBinding
    from engine.local import LocalEngine
    from tests.conftest import make_busybox_rootfs_tar, unique

    workdir = Path(tempfile.mkdtemp(prefix="pycompose-netbench-"))
    engine = LocalEngine(workdir / "root")
    results: dict[str, Any] = {}
    try:
        engine.image_import(str(make_busybox_rootfs_tar(workdir / "busybox.tar")), "bench:bb")
        net = engine.network_create(NetworkSpec(name=unique("bench")))
        host_python = (Mount("bind", "/usr", "/usr", read_only=True),
                       Mount("bind", "/lib", "/usr/lib", read_only=True),
                       Mount("bind", "/lib64", "/usr/lib64", read_only=True))
        spec = ContainerSpec(
            image="bench:bb", name=unique("srv"), networks=(EndpointSpec(net.name),),
            command=("/usr/bin/python3", "-c", SERVER), mounts=host_python,
            ports=(PortBinding(9000, host_ip="127.0.0.1"), PortBinding(9001, host_ip="127.0.0.1")),
            stop_grace_period=0.5)
        c = engine.container_create(spec)
        engine.container_start(c.id)
        c = engine.container_inspect(c.id)
        ip = c.networks[0].ip_address
        ports = {p.container_port: p.host_port for p in c.ports}
        os.environ["PYCOMPOSE_PORT_DRIVER"] = "nft"
        try:
            n = engine.container_create(ContainerSpec(**{**spec.__dict__, "name": unique("nft")}))
            engine.container_start(n.id)
        finally:
            del os.environ["PYCOMPOSE_PORT_DRIVER"]
        nft_ports = {p.container_port: p.host_port for p in engine.container_inspect(n.id).ports}
        paths = {"direct to container": ((ip, 9000), (ip, 9001)),
                 "published (userland proxy)": (("127.0.0.1", ports[9000]),
                                                ("127.0.0.1", ports[9001])),
                 "published (nft DNAT)": (("127.0.0.1", nft_ports[9000]),
                                          ("127.0.0.1", nft_ports[9001]))}
        for label, (sink, echo) in paths.items():
            throughput(sink, 8)  # warm-up
            rates = [throughput(sink, args.mb) for _ in range(args.runs)]
            lat = [latency(echo, args.rounds) for _ in range(args.runs)]
            results[label] = {
                "throughput_GBps": statistics.median(rates) / 1e9,
                "connect_first_rtt_ms": statistics.median(f for f, _ in lat) * 1e3,
                "rtt_us": statistics.median(r for _, r in lat) * 1e6,
            }
        engine.container_remove(c.id, force=True)
        engine.container_remove(n.id, force=True)
        plain = ContainerSpec(image="bench:bb", command=("sleep", "60"), stop_grace_period=0.1)
        on_net = ContainerSpec(**{**plain.__dict__, "networks": (EndpointSpec(net.name),)})
        timings = {
            "network_mode none": start_time(engine, ContainerSpec(
                **{**plain.__dict__, "network_mode": "none"}), args.runs),
            "first on its network (starts the DNS responder)": start_time(
                engine, on_net, args.runs),
        }
        keeper = engine.container_create(ContainerSpec(**{**on_net.__dict__,
                                                          "name": unique("keep")}))
        engine.container_start(keeper.id)  # keeps the responder up for the next ones
        timings["another on the network"] = start_time(engine, on_net, args.runs)
        timings["another, + 2 published ports"] = start_time(engine, ContainerSpec(
            **{**on_net.__dict__, "ports": (PortBinding(80, host_ip="127.0.0.1"),
                                            PortBinding(81, "udp", host_ip="127.0.0.1"))}),
            args.runs)
        results["container start ms"] = {k: v * 1e3 for k, v in timings.items()}
    finally:
        for ctr in engine.container_list(all=True):
            engine.container_remove(ctr.id, force=True)
        for n in engine.network_list():
            engine.network_remove(n.id)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    labels = list(paths)
    if not args.no_docker:
        workdir.mkdir()
        try:
            docker_results = bench_docker(workdir, args.runs, args.mb, args.rounds)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        results.update(docker_results)
        labels += list(docker_results)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"median of {args.runs} runs; {args.mb} MB per transfer; "
          f"{args.rounds} round trips per latency run")
    print(f"{'path':<34}{'throughput':>14}{'connect+RTT':>14}{'1-byte RTT':>14}")
    for label in labels:
        r = results[label]
        print(f"{label:<34}{r['throughput_GBps']:>10.2f} GB/s{r['connect_first_rtt_ms']:>11.2f} ms"
              f"{r['rtt_us']:>11.0f} µs")
    for key, value in results["container start ms"].items():
        print(f"container start, {key:<50}{value:>8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
