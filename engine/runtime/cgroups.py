"""One cgroup driver for v1, v2 and hybrid hosts: create a container's groups, limit, measure, freeze, kill.

Detection reads /proc/self/mountinfo: every v1 hierarchy is a `cgroup` mount whose super
options name its controllers (`cpu` and `cpuacct` may be co-mounted), and the `cgroup2`
mount is either the whole tree (v2) or a side mount such as /sys/fs/cgroup/unified (hybrid).
On a hybrid host v1 holds the controllers (limits, stats) and the unified group is used
for `cgroup.kill`, `cgroup.freeze` and `cgroup.events`.

A container's groups are `<hierarchy>/<parent>/<container id>` where the parent defaults to
`pycompose` at the root of each hierarchy ($PYCOMPOSE_CGROUP_PARENT or the `parent`
argument overrides it; tests use their own). `Cgroup.add(pid)` moves a process into every
group; the first `cgroup.procs` write of a burst costs one RCU grace period (~11 ms), so
callers overlap it with other work.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.api import EngineRuntimeError, InvalidArgument, NotFound, Resources

Mode = Literal["v1", "v2", "hybrid"]

# v1 controllers the driver manages, in the order groups are created.
V1_CONTROLLERS = ("cpuset", "memory", "cpu", "cpuacct", "pids", "blkio", "freezer", "devices")
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")
DEFAULT_PARENT = "pycompose"
CFS_PERIOD_US = 100_000

# Docker's default device rules (moby oci/devices_linux.go DefaultSpec AllowedDevices).
DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)


@dataclass(frozen=True)
class CgroupStats:
    """One sample of a container's counters."""

    cpu_ns: int
    mem_usage: int  # usage minus inactive file cache, as `docker stats` shows it
    mem_limit: int  # the limit, or the host's memory when unlimited
    pids: int
    blkio_read: int
    blkio_write: int
    oom_kills: int
    mem_cache: int = 0


MIN_MEMORY = 6 * 1024 * 1024


def _cpu_list(text: str) -> set[int]:
    """`0-2,4` -> {0, 1, 2, 4}; InvalidArgument if malformed."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InvalidArgument(f"invalid value {text!r} for cpuset cpus") from None
    return out


def validate_resources(r: Resources) -> None:
    """Refuse limits Docker refuses, with Docker's messages (call at create time)."""
    if r.memory is not None and 0 < r.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if r.memory_reservation is not None and 0 < r.memory_reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if r.memory_swap is not None and r.memory_swap > 0:
        if not r.memory or r.memory <= 0:
            raise InvalidArgument("You should always set the Memory limit when using "
                                  "Memoryswap limit, see usage")
        if r.memory_swap < r.memory:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory "
                                  "limit, see usage")
    ncpu = os.cpu_count() or 1
    if r.cpus is not None and r.cpus != 0 and not 0.01 <= r.cpus <= ncpu:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu:.2f}, as there are only "
                              f"{ncpu} CPUs available")
    if r.cpus and (r.cpu_period or r.cpu_quota):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be "
                              "set")
    if r.cpu_period is not None and r.cpu_period != 0 and not 1000 <= r.cpu_period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if r.cpu_quota is not None and 0 < r.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.cpuset_cpus:
        wanted = _cpu_list(r.cpuset_cpus)
        online = _cpu_list(_read(Path("/sys/devices/system/cpu/online"), "0").strip() or "0")
        if not wanted <= online:
            raise InvalidArgument(f"Requested CPUs are not available - requested "
                                  f"{r.cpuset_cpus}, available: "
                                  f"{_read(Path('/sys/devices/system/cpu/online')).strip()}")
    if r.blkio_weight and not 10 <= r.blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")


def _mountinfo() -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, super options) of every mount in our namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            out.append((fields[4].replace("\\040", " "), rfields[0], rfields[2].split(",")))
    return out


@functools.lru_cache(maxsize=1)
def _hierarchies_cached(mountinfo_key: tuple[str, ...]) -> tuple[dict[str, Path], Path | None]:
    v1: dict[str, Path] = {}
    unified: Path | None = None
    for point, fstype, opts in _mountinfo():
        if fstype == "cgroup2":
            if unified is None or point == "/sys/fs/cgroup":
                unified = Path(point)
        elif fstype == "cgroup":
            for ctrl in V1_CONTROLLERS:
                if ctrl in opts and ctrl not in v1:
                    v1[ctrl] = Path(point)
    return v1, unified


def _hierarchies() -> tuple[dict[str, Path], Path | None]:
    """Mount points of the v1 controllers and of cgroup2, cached per mount namespace."""
    try:
        ns = os.readlink("/proc/self/ns/mnt")
    except OSError:
        ns = ""
    v1, unified = _hierarchies_cached((ns,))
    return dict(v1), unified


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError, OSError):
        return default


def _keyed(path: Path) -> dict[str, int]:
    """A `key value` file (memory.stat, cgroup.events...) as a dict."""
    out: dict[str, int] = {}
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _host_memory() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


class CgroupDriver:
    """Knows where the hierarchies are mounted; makes and opens per-container groups."""

    def __init__(self, mode: Mode, v1: dict[str, Path], unified: Path | None,
                 parent: str | None = None) -> None:
        self.mode: Mode = mode
        self.v1 = v1  # controller -> mount point
        self.unified = unified  # cgroup2 mount point (the whole tree on v2)
        self.parent = (parent or os.environ.get("PYCOMPOSE_CGROUP_PARENT")
                       or DEFAULT_PARENT).strip("/")

    @classmethod
    def detect(cls, parent: str | None = None) -> CgroupDriver:
        v1, unified = _hierarchies()
        if v1:
            mode: Mode = "hybrid" if unified is not None else "v1"
        elif unified is not None:
            mode = "v2"
        else:
            raise EngineRuntimeError("no cgroup filesystem is mounted")
        return cls(mode, v1, unified, parent)

    # ---------------------------------------------------------------- groups

    def _dirs(self, container_id: str) -> tuple[dict[str, Path], Path | None]:
        rel = f"{self.parent}/{container_id}"
        v1 = {ctrl: mnt / rel for ctrl, mnt in self.v1.items()}
        unified = self.unified / rel if self.unified is not None else None
        return v1, unified

    def open(self, container_id: str) -> Cgroup:
        """The groups of a container created earlier (possibly by another process)."""
        v1, unified = self._dirs(container_id)
        cg = Cgroup(self, container_id, v1, unified)
        if not cg.exists():
            raise NotFound(f"no cgroup for container {container_id[:12]}")
        return cg

    def create(self, container_id: str, resources: Resources | None = None, *,
               privileged: bool = False, devices: tuple[str, ...] = ()) -> Cgroup:
        """Make the container's groups and write its limits. Idempotent."""
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidArgument(f"invalid cgroup name {container_id!r}")
        validate_resources(resources or Resources())
        v1, unified = self._dirs(container_id)
        cg = Cgroup(self, container_id, v1, unified)
        existed = cg.exists()
        try:
            for ctrl, path in v1.items():
                self._mkdir(path, ctrl)
            if unified is not None:
                self._mkdir_v2(unified)
            cg.set_limits(resources or Resources())
            cg.set_devices(privileged, devices)
        except OSError as exc:
            if not existed:  # never kill what an earlier call put there
                cg.remove()
            raise EngineRuntimeError(f"cgroup setup for {container_id[:12]}: {exc}") from exc
        return cg

    def _mkdir(self, path: Path, ctrl: str) -> None:
        """mkdir -p; cpuset needs cpus/mems copied down before a task can join."""
        missing: list[Path] = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            with contextlib.suppress(FileExistsError):
                d.mkdir()
            if ctrl == "cpuset":
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(d / name).strip():
                        _write(d / name, _read(d.parent / name).strip())

    def _mkdir_v2(self, path: Path) -> None:
        """mkdir -p on cgroup2, enabling the controllers this tree offers in each ancestor."""
        assert self.unified is not None
        chain: list[Path] = []
        p = path
        while p != self.unified:
            chain.append(p)
            p = p.parent
        parent = self.unified
        for d in reversed(chain):
            if self.mode == "v2":
                offered = _read(parent / "cgroup.controllers").split()
                wanted = [c for c in V2_CONTROLLERS if c in offered]
                enabled = _read(parent / "cgroup.subtree_control").split()
                todo = [c for c in wanted if c not in enabled]
                if todo:
                    with contextlib.suppress(OSError):
                        _write(parent / "cgroup.subtree_control",
                               " ".join(f"+{c}" for c in todo))
            with contextlib.suppress(FileExistsError):
                d.mkdir()
            parent = d

    def list_ids(self) -> list[str]:
        """Container ids that have a group under our parent (for cleanup of strays)."""
        base = (next(iter(self.v1.values())) if self.v1 else self.unified)
        if base is None:
            return []
        try:
            return sorted(p.name for p in (base / self.parent).iterdir() if p.is_dir())
        except FileNotFoundError:
            return []


class Cgroup:
    """The groups of one container across all hierarchies."""

    def __init__(self, driver: CgroupDriver, container_id: str, v1: dict[str, Path],
                 unified: Path | None) -> None:
        self.driver = driver
        self.container_id = container_id
        self.v1 = v1
        self.unified = unified

    @property
    def v2(self) -> bool:
        return self.driver.mode == "v2"

    def _all_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        for path in self.v1.values():
            if path not in dirs:
                dirs.append(path)
        if self.unified is not None:
            dirs.append(self.unified)
        return dirs

    def exists(self) -> bool:
        return any(d.is_dir() for d in self._all_dirs())

    def paths(self) -> list[str]:
        """Every directory of this container's groups (a child joins by writing to each)."""
        return [str(d) for d in self._all_dirs()]

    # ---------------------------------------------------------------- membership

    def add(self, pid: int) -> None:
        """Move `pid` (0: the calling process) into every group of the container."""
        try:
            for d in self._all_dirs():
                _write(d / "cgroup.procs", str(pid))
        except OSError as exc:
            raise EngineRuntimeError(f"cannot add pid {pid} to cgroup: {exc}") from exc

    def pids(self) -> list[int]:
        """Host pids of every process in the container's groups."""
        for d in ([self.unified] if self.unified is not None else []) + [
                self.v1.get("pids"), self.v1.get("memory"), self.v1.get("freezer")]:
            if d is not None and d.is_dir():
                text = _read(d / "cgroup.procs")
                return sorted({int(x) for x in text.split()} | self._descendant_procs(d))
        return []

    @staticmethod
    def _descendant_procs(d: Path) -> set[int]:
        found: set[int] = set()
        for sub in d.iterdir() if d.is_dir() else ():
            if sub.is_dir():
                found |= {int(x) for x in _read(sub / "cgroup.procs").split()}
                found |= Cgroup._descendant_procs(sub)
        return found

    # ---------------------------------------------------------------- limits

    def set_limits(self, r: Resources) -> None:
        if self.v2:
            self._set_limits_v2(r)
        else:
            self._set_limits_v1(r)

    def _set_limits_v1(self, r: Resources) -> None:
        mem = self.v1.get("memory")
        if mem is not None:
            if r.memory is not None and r.memory > 0:
                _write(mem / "memory.limit_in_bytes", str(r.memory))
                swap = r.memory_swap
                if swap is None or swap == 0:
                    swap = r.memory * 2  # Docker's default: as much swap as memory
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    _write(mem / "memory.memsw.limit_in_bytes", "-1" if swap < 0 else str(swap))
            if r.memory_reservation is not None and r.memory_reservation > 0:
                _write(mem / "memory.soft_limit_in_bytes", str(r.memory_reservation))
            if r.oom_kill_disable:
                _write(mem / "memory.oom_control", "1")
        cpu = self.v1.get("cpu")
        if cpu is not None:
            period, quota = self._cfs(r)
            if quota is not None:
                _write(cpu / "cpu.cfs_period_us", str(period))
                _write(cpu / "cpu.cfs_quota_us", str(quota))
            if r.cpu_shares:
                _write(cpu / "cpu.shares", str(r.cpu_shares))
        cpuset = self.v1.get("cpuset")
        if cpuset is not None:
            if r.cpuset_cpus:
                _write(cpuset / "cpuset.cpus", r.cpuset_cpus)
            if r.cpuset_mems:
                _write(cpuset / "cpuset.mems", r.cpuset_mems)
        pids = self.v1.get("pids")
        if pids is not None and r.pids_limit is not None:
            _write(pids / "pids.max", str(r.pids_limit) if r.pids_limit > 0 else "max")
        blkio = self.v1.get("blkio")
        if blkio is not None and r.blkio_weight:
            for name in ("blkio.weight", "blkio.bfq.weight"):
                if (blkio / name).exists():
                    _write(blkio / name, str(r.blkio_weight))
                    break

    def _set_limits_v2(self, r: Resources) -> None:
        d = self.unified
        assert d is not None
        if r.memory is not None and r.memory > 0:
            _write(d / "memory.max", str(r.memory))
            if r.memory_swap is not None and r.memory_swap != 0 and (
                    d / "memory.swap.max").exists():
                swap = "max" if r.memory_swap < 0 else str(max(r.memory_swap - r.memory, 0))
                _write(d / "memory.swap.max", swap)
        if r.memory_reservation:
            _write(d / "memory.low", str(r.memory_reservation))
        if r.oom_kill_disable and (d / "memory.oom.group").exists():
            pass  # v2 has no way to disable the OOM killer; Docker ignores it too
        period, quota = self._cfs(r)
        if quota is not None:
            _write(d / "cpu.max", f"{quota} {period}")
        if r.cpu_shares:
            # Docker's conversion of shares (2..262144) to weight (1..10000).
            weight = 1 + ((r.cpu_shares - 2) * 9999) // 262142
            _write(d / "cpu.weight", str(max(1, min(10000, weight))))
        if r.cpuset_cpus:
            _write(d / "cpuset.cpus", r.cpuset_cpus)
        if r.cpuset_mems:
            _write(d / "cpuset.mems", r.cpuset_mems)
        if r.pids_limit is not None:
            _write(d / "pids.max", str(r.pids_limit) if r.pids_limit > 0 else "max")
        if r.blkio_weight and (d / "io.weight").exists():
            _write(d / "io.weight", f"default {r.blkio_weight}")

    @staticmethod
    def _cfs(r: Resources) -> tuple[int, int | None]:
        if r.cpus is not None and r.cpus > 0:
            return CFS_PERIOD_US, int(r.cpus * CFS_PERIOD_US)
        if r.cpu_quota is not None and r.cpu_quota > 0:
            return r.cpu_period or CFS_PERIOD_US, r.cpu_quota
        return CFS_PERIOD_US, None

    def set_devices(self, privileged: bool, devices: tuple[str, ...] = ()) -> None:
        """v1 device rules: Docker's defaults plus `devices`; everything when privileged.

        `devices` items are rules such as `c 4:64 rwm`. On v2 device control needs eBPF,
        which this driver does not load.
        """
        d = self.v1.get("devices")
        if d is None:
            return
        if privileged:
            _write(d / "devices.allow", "a")
            return
        _write(d / "devices.deny", "a")
        for rule in DEFAULT_DEVICE_RULES + devices:
            _write(d / "devices.allow", rule)

    # ---------------------------------------------------------------- stats

    def cpu_ns(self) -> int:
        acct = self.v1.get("cpuacct")
        if acct is not None and (acct / "cpuacct.usage").exists():
            return int(_read(acct / "cpuacct.usage", "0").strip() or 0)
        if self.unified is not None:
            return _keyed(self.unified / "cpu.stat").get("usage_usec", 0) * 1000
        return 0

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this container."""
        mem = self.v1.get("memory")
        if mem is not None and not self.v2:
            return _keyed(mem / "memory.oom_control").get("oom_kill", 0)
        if self.unified is not None:
            return _keyed(self.unified / "memory.events").get("oom_kill", 0)
        return 0

    def oom_notifier(self) -> int | None:
        """An fd that becomes readable when the OOM killer acts in this container.

        v1: an eventfd registered on memory.oom_control (read 8 bytes to re-arm);
        v2: memory.events opened for POLLPRI (re-read the file after each wake-up).
        None when neither exists. The caller owns (and closes) the fd; compare
        `oom_kills()` before and after a wake-up, as a notification can be spurious.
        """
        mem = self.v1.get("memory")
        if mem is not None and not self.v2 and (mem / "cgroup.event_control").exists():
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            ctl = os.open(mem / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write(mem / "cgroup.event_control", f"{efd} {ctl}")
            except OSError:
                os.close(efd)
                return None
            finally:
                os.close(ctl)
            return efd
        if self.unified is not None and (self.unified / "memory.events").exists():
            return os.open(self.unified / "memory.events", os.O_RDONLY | os.O_CLOEXEC)
        return None

    def stats(self) -> CgroupStats:
        host_mem = _host_memory()
        if self.v2:
            d = self.unified
            assert d is not None
            usage = int(_read(d / "memory.current", "0").strip() or 0)
            mstat = _keyed(d / "memory.stat")
            inactive = mstat.get("inactive_file", 0)
            limit_text = _read(d / "memory.max", "max").strip()
            limit = host_mem if limit_text in ("max", "") else int(limit_text)
            pids = int(_read(d / "pids.current", "0").strip() or 0)
            rd = wr = 0
            for line in _read(d / "io.stat").splitlines():
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    if k == "rbytes":
                        rd += int(v)
                    elif k == "wbytes":
                        wr += int(v)
        else:
            mem = self.v1.get("memory")
            usage = limit = inactive = 0
            if mem is not None:
                usage = int(_read(mem / "memory.usage_in_bytes", "0").strip() or 0)
                mstat = _keyed(mem / "memory.stat")
                inactive = mstat.get("total_inactive_file", 0)
                limit = int(_read(mem / "memory.limit_in_bytes", "0").strip() or 0)
            if not limit or limit > host_mem:
                limit = host_mem
            pdir = self.v1.get("pids")
            pids = int(_read(pdir / "pids.current", "0").strip() or 0) if pdir else 0
            rd = wr = 0
            blkio = self.v1.get("blkio")
            if blkio is not None:
                for line in _read(blkio / "blkio.throttle.io_service_bytes_recursive"
                                  ).splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "Read":
                        rd += int(parts[2])
                    elif len(parts) == 3 and parts[1] == "Write":
                        wr += int(parts[2])
        return CgroupStats(cpu_ns=self.cpu_ns(), mem_usage=max(usage - inactive, 0),
                           mem_limit=limit, pids=pids, blkio_read=rd, blkio_write=wr,
                           oom_kills=self.oom_kills(), mem_cache=inactive)

    # ---------------------------------------------------------------- freeze, kill

    def freeze(self, timeout: float = 5.0) -> None:
        self._freezer(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._freezer(False, timeout)

    def frozen(self) -> bool:
        if self.unified is not None and (self.unified / "cgroup.freeze").exists():
            return _read(self.unified / "cgroup.freeze").strip() == "1"
        fz = self.v1.get("freezer")
        return fz is not None and _read(fz / "freezer.state").strip() in ("FROZEN", "FREEZING")

    def _freezer(self, freeze: bool, timeout: float) -> None:
        """Prefer the cgroup2 freezer: a frozen v2 task still dies on SIGKILL."""
        deadline = time.monotonic() + timeout
        try:
            if self.unified is not None and (self.unified / "cgroup.freeze").exists():
                _write(self.unified / "cgroup.freeze", "1" if freeze else "0")
                while _keyed(self.unified / "cgroup.events").get("frozen", 0) != int(freeze):
                    if time.monotonic() > deadline:
                        raise EngineRuntimeError("timed out waiting for the cgroup freezer")
                    time.sleep(0.002)
                return
            fz = self.v1.get("freezer")
            if fz is None:
                raise EngineRuntimeError("no freezer cgroup on this host")
            want = "FROZEN" if freeze else "THAWED"
            while True:
                _write(fz / "freezer.state", want)
                if _read(fz / "freezer.state").strip() == want:
                    return
                if time.monotonic() > deadline:
                    raise EngineRuntimeError("timed out waiting for the cgroup freezer")
                time.sleep(0.002)
        except OSError as exc:
            raise EngineRuntimeError(f"freezer: {exc}") from exc

    def populated(self) -> bool:
        if self.unified is not None and (self.unified / "cgroup.events").exists():
            return _keyed(self.unified / "cgroup.events").get("populated", 0) == 1
        return bool(self.pids())

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 5.0) -> None:
        """Send `sig` to every process; for SIGKILL, wait until the groups are empty."""
        if (sig == signal.SIGKILL and self.unified is not None
                and (self.unified / "cgroup.kill").exists()):
            with contextlib.suppress(OSError):
                _write(self.unified / "cgroup.kill", "1")
        else:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        if sig != signal.SIGKILL:
            return
        if self.frozen():
            self.thaw()
        deadline = time.monotonic() + timeout
        while self.pids():
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise EngineRuntimeError(f"processes of {self.container_id[:12]} survived kill")
            time.sleep(0.005)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left and remove every group (missing groups are fine)."""
        if self.exists() and self.pids():
            self.kill(signal.SIGKILL, timeout)
        deadline = time.monotonic() + timeout
        for d in self._all_dirs():
            for sub in sorted(_subdirs(d), key=lambda p: -len(p.parts)):
                _rmdir(sub, deadline)
            _rmdir(d, deadline)


def _subdirs(d: Path) -> Iterator[Path]:
    try:
        for sub in d.iterdir():
            if sub.is_dir():
                yield from _subdirs(sub)
                yield sub
    except FileNotFoundError:
        return


def _rmdir(d: Path, deadline: float) -> None:
    while True:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise EngineRuntimeError(f"cannot remove cgroup {d}: {exc}") from exc
            time.sleep(0.005)


def remove_parent(driver: CgroupDriver) -> None:
    """Remove the (empty) parent groups, e.g. a test's private parent."""
    for mnt in list(dict.fromkeys(driver.v1.values())) + (
            [driver.unified] if driver.unified is not None else []):
        d = mnt / driver.parent
        with contextlib.suppress(FileNotFoundError, OSError):
            for sub in sorted(_subdirs(d), key=lambda p: -len(p.parts)):
                os.rmdir(sub)
            os.rmdir(d)
