#!/usr/bin/env python3
"""A private, throw-away Docker engine for benchmarks: start dockerd, give its address, stop it.

    with private_dockerd() as docker:       # None when dockerd cannot start here
        docker.run("version")
        docker.import_image(tar, "pycompose-busybox:latest")
        subprocess.run([...], env=docker.env())   # DOCKER_HOST points at it

dockerd (Debian's `docker.io`: `apt-get install -y docker.io`) runs as a child process
with its own --data-root, --exec-root, socket, pidfile, config file and cgroup parent, all
under one temporary directory. Before it starts, the host state it may change is
recorded (links, iptables chains and FORWARD policy, bridge sysctls); when the block ends
(also on an exception, Ctrl-C or SIGTERM) its containers and networks are removed,
dockerd and its containerd are stopped by PID, and whatever it created is removed again:
docker0, its iptables chains and rules, its cgroups, mounts under the temporary dir and
the dir itself. Nothing that existed before is touched.

    python3 bench/docker_env.py          # smoke check: start, import busybox, run, stop
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

DOCKER_CHAIN = re.compile(r"^DOCKER(-[A-Z0-9-]+)?$")
SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables",
           "/proc/sys/net/bridge/bridge-nf-call-ip6tables")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SHIM_DIRS = (Path("/run/containerd/s"), Path("/run/containerd"))  # innermost first


def dockerd_path() -> str | None:
    return shutil.which("dockerd")


def docker_cli() -> str | None:
    """The Docker CLI: Debian's (matches dockerd 20.10) first, else any on PATH."""
    return "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")


# --------------------------------------------------------------------------- host state


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def iptables_rules(table: str) -> list[str]:
    done = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


def iptables_chains(table: str) -> set[str]:
    return {line.split()[1] for line in iptables_rules(table) if line.startswith("-N ")}


def forward_policy() -> str | None:
    for line in iptables_rules("filter"):
        if line.startswith("-P FORWARD "):
            return line.split()[2]
    return None


def read_sysctls() -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for path in SYSCTLS:
        try:
            values[path] = Path(path).read_text().strip()
        except OSError:
            values[path] = None
    return values


def cgroup_dirs(name: str) -> list[Path]:
    """Every directory called `name` directly under a cgroup hierarchy (v1, v2, hybrid)."""
    found = []
    for hierarchy in [CGROUP_ROOT, *CGROUP_ROOT.iterdir()] if CGROUP_ROOT.is_dir() else []:
        candidate = hierarchy / name
        if candidate.is_dir():
            found.append(candidate)
    return found


def remove_cgroup_tree(top: Path) -> None:
    for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            path.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()


def mounts_under(prefix: Path) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == str(prefix) or point.startswith(f"{prefix}/"):
                found.append(point)
    return sorted(found, key=lambda p: -p.count("/"))


def process_args(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def pids_mentioning(marker: str) -> list[int]:
    """Processes whose command line names our private directory (containerd, its shims)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and any(
                marker in arg for arg in process_args(int(entry))):
            found.append(int(entry))
    return found


def stop_pid(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@dataclass
class HostSnapshot:
    """What dockerd may change on the host, recorded before it starts."""

    links: set[str]
    chains: dict[str, set[str]]
    rules: dict[str, list[str]]
    forward_policy: str | None
    sysctls: dict[str, str | None]
    shim_dirs: set[Path]  # of those that containerd's shims use whatever its --state

    @classmethod
    def take(cls) -> HostSnapshot:
        tables = ("filter", "nat")
        return cls(links(), {t: iptables_chains(t) for t in tables},
                   {t: iptables_rules(t) for t in tables}, forward_policy(), read_sysctls(),
                   {d for d in SHIM_DIRS if d.exists()})


# --------------------------------------------------------------------------- the engine


@dataclass
class DockerEnv:
    """A running private dockerd: its socket, its directory, how to call it."""

    workdir: Path
    process: subprocess.Popen[bytes]
    cli: str
    version: str = ""
    network_ids: set[str] = field(default_factory=set)

    @property
    def host(self) -> str:
        return f"unix://{self.workdir / 'docker.sock'}"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for docker / docker compose processes aimed at this engine."""
        env = dict(os.environ if base is None else base)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.workdir / "client-config")
        env.pop("DOCKER_CONTEXT", None)
        return env

    def run(self, *args: str, check: bool = True, stdin: int | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.cli, *args], env=self.env(), capture_output=True, text=True,
                              check=check, stdin=stdin, timeout=timeout)

    def import_image(self, tar: Path, ref: str, cmd: str = '["sh"]') -> str:
        """`docker import` the rootfs tarball under `ref`; returns the image id."""
        with open(tar, "rb") as f:
            done = self.run("import", "--change", f"CMD {cmd}", "-", ref, stdin=f.fileno())
        return done.stdout.strip()

    def remove_everything(self) -> None:
        """Containers, networks and volumes of this private engine (dockerd still up)."""
        ids = self.run("ps", "-aq", check=False).stdout.split()
        if ids:
            self.run("rm", "-f", "-v", *ids, check=False)
        nets = self.run("network", "ls", "-q", "--no-trunc", check=False).stdout.split()
        self.network_ids.update(nets)
        self.run("network", "prune", "-f", check=False)
        self.run("volume", "prune", "-f", check=False)


def _wait_ready(env: DockerEnv, log: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if env.process.poll() is not None:
            return False
        done = env.run("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
        if done.returncode == 0:
            env.version = done.stdout.strip()
            return True
        time.sleep(0.2)
    return False


def _start(workdir: Path, cgroup_parent: str) -> subprocess.Popen[bytes]:
    dockerd = dockerd_path()
    assert dockerd is not None
    config = workdir / "daemon.json"  # its identity key too, not in /etc/docker
    config.write_text(json.dumps({"deprecated-key-path": str(workdir / "key.json")}) + "\n")
    (workdir / "client-config").mkdir()
    (workdir / "client-config" / "config.json").write_text("{}\n")
    with open(workdir / "dockerd.log", "wb") as log:
        return subprocess.Popen(
            [dockerd, "--config-file", str(config), "--data-root", str(workdir / "data"),
             "--exec-root", str(workdir / "exec"), "-H", f"unix://{workdir / 'docker.sock'}",
             "--pidfile", str(workdir / "docker.pid"), "--cgroup-parent", f"/{cgroup_parent}",
             "--storage-driver", "overlay2", "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)


def _restore_host(before: HostSnapshot, network_ids: set[str], workdir: Path,
                  cgroup_parent: str, notes: list[str]) -> None:
    ours = {"docker0"} | {f"br-{n[:12]}" for n in network_ids}
    created_links = (links() - before.links) & ours
    for name in created_links:  # a leftover bridge (dockerd leaves docker0 behind)
        subprocess.run(["ip", "link", "delete", name], capture_output=True)
        notes.append(f"removed link {name}")
    for table in ("filter", "nat"):
        new_chains = {c for c in iptables_chains(table) - before.chains[table]
                      if DOCKER_CHAIN.match(c)}
        interfaces = ours & (created_links | (ours - before.links))
        for rule in iptables_rules(table):
            if not rule.startswith("-A ") or rule in before.rules[table]:
                continue
            words = rule.split()
            if words[1] in new_chains:
                continue  # goes with its chain
            target = words[words.index("-j") + 1] if "-j" in words else ""
            names_ours = any(w in interfaces for w in words)
            if target in new_chains or names_ours:
                subprocess.run(["iptables", "-w", "-t", table, "-D", *words[1:]],
                               capture_output=True)
                notes.append(f"iptables -t {table}: deleted {rule}")
        for chain in new_chains:
            subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True)
        for chain in new_chains:
            subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
            notes.append(f"iptables -t {table}: removed chain {chain}")
    now_policy = forward_policy()
    if before.forward_policy and now_policy != before.forward_policy:
        subprocess.run(["iptables", "-w", "-P", "FORWARD", before.forward_policy],
                       capture_output=True)
        notes.append(f"FORWARD policy {now_policy} -> {before.forward_policy}")
    for path, value in before.sysctls.items():
        current = read_sysctls()[path]
        if value is not None and current is not None and current != value:
            Path(path).write_text(value)
            notes.append(f"{path} {current} -> {value}")
        elif value is None and current is not None:
            notes.append(f"{path} appeared (module loaded by dockerd), left at {current}")
    for top in cgroup_dirs(cgroup_parent):
        remove_cgroup_tree(top)
    for directory in SHIM_DIRS:
        if directory not in before.shim_dirs and directory.exists():
            try:
                directory.rmdir()  # only when empty: a shim of someone else keeps it
                notes.append(f"removed {directory}")
            except OSError:
                notes.append(f"{directory} not empty; kept")
    for point in mounts_under(workdir):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if mounts_under(workdir):
        notes.append(f"mounts remain under {workdir}; directory kept")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def private_dockerd(timeout: float = 60, verbose: bool = True) -> Iterator[DockerEnv | None]:
    """Start a private dockerd for the block; yields None (with a note) if it cannot run."""
    cli = docker_cli()
    if os.geteuid() != 0 or dockerd_path() is None or cli is None:
        if verbose:
            print("docker_env: no dockerd here (needs root and `apt-get install docker.io`); "
                  "Docker columns stay empty", file=sys.stderr)
        yield None
        return
    before = HostSnapshot.take()
    workdir = Path(tempfile.mkdtemp(prefix="pyc-dockerd-", dir="/tmp"))
    cgroup_parent = f"pycompose-bench-docker-{uuid.uuid4().hex[:8]}"
    notes: list[str] = []
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    env = DockerEnv(workdir, _start(workdir, cgroup_parent), cli)
    try:
        if not _wait_ready(env, workdir / "dockerd.log", timeout):
            tail = (workdir / "dockerd.log").read_text(errors="replace").strip().splitlines()
            if verbose:
                print("docker_env: dockerd did not start; Docker columns stay empty. "
                      f"Last log line: {tail[-1] if tail else '(none)'}", file=sys.stderr)
            yield None
        else:
            yield env
    finally:
        try:
            if env.process.poll() is None:
                with contextlib.suppress(Exception):
                    env.remove_everything()
            stop_pid(env.process.pid, grace=20)
            with contextlib.suppress(subprocess.TimeoutExpired):
                env.process.wait(timeout=5)
            for pid in pids_mentioning(str(workdir)):  # its containerd / shims, if left
                stop_pid(pid, grace=5)
            _restore_host(before, env.network_ids, workdir, cgroup_parent, notes)
        finally:
            signal.signal(signal.SIGTERM, previous)
        if verbose:
            print(f"docker_env: dockerd {env.process.pid} stopped; cleanup: "
                  f"{'; '.join(notes) if notes else 'nothing left to remove'}",
                  file=sys.stderr)


def leftovers(workdir: Path) -> list[str]:
    """What of a private dockerd would still be on the host (empty when clean)."""
    found = [f"process {pid}" for pid in pids_mentioning(str(workdir))]
    found += [f"mount {m}" for m in mounts_under(workdir)]
    if workdir.exists():
        found.append(f"directory {workdir}")
    return found


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import make_busybox_rootfs_tar

    before = HostSnapshot.take()
    with tempfile.TemporaryDirectory() as tmp, private_dockerd() as docker:
        if docker is None:
            return 1
        tar = make_busybox_rootfs_tar(Path(tmp) / "busybox.tar")
        image = docker.import_image(tar, "pycompose-busybox:latest")
        out = docker.run("run", "--rm", "pycompose-busybox:latest", "echo", "hello").stdout
        print(json.dumps({"dockerd": docker.version, "host": docker.host, "image": image,
                          "run": out.strip()}))
        workdir = docker.workdir
    after = HostSnapshot.take()
    problems = leftovers(workdir)
    problems += [f"link {n}" for n in after.links - before.links
                 if n == "docker0" or n.startswith(("br-", "veth"))]
    for table in ("filter", "nat"):
        problems += [f"{table} rule {r}" for r in set(after.rules[table]) - set(before.rules[table])
                     if "DOCKER" in r or "docker0" in r]
    print("leftovers:", ", ".join(problems) if problems else "none")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
