"""`docker stats`: one sample of a container's counters, and CPU % between two samples.

CPU % is Docker's formula reduced: cpu time used / wall time elapsed * 100 (100% = one
CPU busy). Memory usage excludes inactive page cache, as the Docker CLI shows it. Network
bytes come from /proc/<init pid>/net/dev (all interfaces but lo), and only when the
container has its own network namespace.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from engine.api import Stats
from engine.runtime.cgroups import Cgroup


@dataclass(frozen=True)
class Sample:
    wall_ns: int
    cpu_ns: int
    stats: Stats


def net_bytes(pid: int) -> tuple[int, int]:
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
            return 0, 0
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    rx = tx = 0
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def sample(cg: Cgroup, pid: int) -> Sample:
    raw = cg.stats()
    rx, tx = net_bytes(pid)
    st = Stats(cpu_percent=0.0, memory_usage=raw.mem_usage, memory_limit=raw.mem_limit,
               pids=raw.pids, block_read=raw.blkio_read, block_write=raw.blkio_write,
               net_rx=rx, net_tx=tx)
    return Sample(time.monotonic_ns(), raw.cpu_ns, st)


def with_cpu(prev: Sample, cur: Sample) -> Stats:
    wall = cur.wall_ns - prev.wall_ns
    pct = 100.0 * (cur.cpu_ns - prev.cpu_ns) / wall if wall > 0 else 0.0
    s = cur.stats
    return Stats(cpu_percent=round(max(pct, 0.0), 2), memory_usage=s.memory_usage,
                 memory_limit=s.memory_limit, pids=s.pids, block_read=s.block_read,
                 block_write=s.block_write, net_rx=s.net_rx, net_tx=s.net_tx)
