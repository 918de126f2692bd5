#!/usr/bin/env python3
"""`up -d --wait` and `down` of three generated projects, pycompose side by side with
`docker compose` against a private dockerd.

    .venv/bin/python bench/lifecycle_bench.py                 # median of 5 runs
    .venv/bin/python bench/lifecycle_bench.py -n 3 --project chain10 --json
    .venv/bin/python bench/lifecycle_bench.py --no-docker     # pycompose only

Run as root. Projects (generated into a temp dir; the busybox image from Debian's
busybox-static, imported into both engines under the same tag):
- health3:  db <- api <- web, each gated on the previous one's `service_healthy`, on the
            default network, web publishing 127.0.0.1::80;
- indep10:  10 independent services without health checks;
- chain10:  a 10-deep `service_healthy` chain.
Health checks are `CMD true` every `--interval` (default 1s; start_interval is not used
because dockerd 20.10 rejects it). Every service traps SIGTERM and exits at once, so
`down` measures the engine, not a grace period. Each run times one whole `up -d --wait`
process and one whole `down` process; between them the bench checks (untimed) that
every service runs. One untimed round of the first project warms both tools up (bytecode,
page cache). pycompose uses a temporary PYCOMPOSE_ROOT and its own cgroup parent;
docker compose is the reference binary /opt/ref/docker-compose with DOCKER_HOST set to the
private dockerd of bench/docker_env.py. Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from docker_env import DockerEnv, mounts_under, private_dockerd  # noqa: E402

IMAGE = "pycompose-busybox:latest"
REFERENCE = "/opt/ref/docker-compose"
SERVICE_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
PROJECTS = ("health3", "indep10", "chain10")


def healthcheck(interval: str) -> dict[str, object]:
    return {"test": ["CMD", "true"], "interval": interval, "timeout": "5s", "retries": 30}


def service(interval: str | None, after: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"image": IMAGE, "command": SERVICE_COMMAND}
    if interval:
        spec["healthcheck"] = healthcheck(interval)
    if after:
        spec["depends_on"] = {after: {"condition": "service_healthy"}}
    return spec


def project_file(kind: str, interval: str) -> dict[str, object]:
    services: dict[str, dict[str, object]] = {}
    if kind == "health3":
        services["db"] = service(interval)
        services["api"] = service(interval, "db")
        services["web"] = {**service(interval, "api"), "ports": ["127.0.0.1::80"]}
    elif kind == "indep10":
        services = {f"svc{i}": service(None) for i in range(10)}
    elif kind == "chain10":
        for i in range(10):
            services[f"s{i}"] = service(interval, f"s{i - 1}" if i else None)
    else:
        raise ValueError(kind)
    return {"services": services}


@dataclass
class Tool:
    """One side of the comparison: how to call its compose CLI."""

    name: str
    argv: list[str]
    env: dict[str, str]
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def compose(self, workdir: Path, project: str, *args: str,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, "-p", project, *args], cwd=workdir, env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


def timed(fn: Callable[[], subprocess.CompletedProcess[str]]) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = fn()
    return time.perf_counter() - start, done.returncode, (done.stderr or done.stdout).strip()


def one_round(tool: Tool, kind: str, workdir: Path, expected: int, wait_timeout: int) -> None:
    project = f"lc{kind}{uuid.uuid4().hex[:6]}"
    samples = tool.samples.setdefault(kind, {"up": [], "down": []})
    try:
        up_s, code, out = timed(lambda: tool.compose(
            workdir, project, "up", "-d", "--wait", "--wait-timeout", str(wait_timeout)))
        if code != 0:
            tool.errors.append(f"{kind}: up exit {code}: {out.splitlines()[-1:]}")
            return
        running = tool.compose(workdir, project, "ps", "-q", "--status", "running")
        count = len(running.stdout.split())
        if count != expected:
            tool.errors.append(f"{kind}: {count} of {expected} containers running after up")
            return
        down_s, code, out = timed(lambda: tool.compose(workdir, project, "down"))
        if code != 0:
            tool.errors.append(f"{kind}: down exit {code}: {out.splitlines()[-1:]}")
            return
        left = tool.compose(workdir, project, "ps", "-aq").stdout.split()
        if left:
            tool.errors.append(f"{kind}: {len(left)} containers left after down")
            return
        samples["up"].append(up_s)
        samples["down"].append(down_s)
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            tool.compose(workdir, project, "down", "-v", "--remove-orphans", "-t", "1")


def pycompose_tool(work: Path, tar_builder: Path) -> Tool:
    root = work / "pycompose-root"
    root.mkdir()
    env = {**os.environ, "PYCOMPOSE_ROOT": str(root),
           "PYCOMPOSE_CGROUP_PARENT": f"pycompose-bench-lc-{uuid.uuid4().hex[:8]}",
           "PYTHONPYCACHEPREFIX": str(work / "pycache")}  # bytecode cached, as installed
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    made = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_base_image.py"), IMAGE],
                          env=env, capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(f"lifecycle_bench: importing the base image failed: {made.stderr}")
    script = ROOT / ".venv" / "bin" / "pycompose"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "compose.cli.main"]
    return Tool("pycompose", argv, env)


def docker_tool(docker: DockerEnv, tar: Path) -> Tool:
    docker.import_image(tar, IMAGE)
    env = docker.env()
    env.pop("COMPOSE_PROJECT_NAME", None)
    return Tool("docker compose", [REFERENCE], env)


def remove_pycompose_leftovers(tool: Tool) -> None:
    """Whatever an interrupted run left in the temporary data root, then the cgroup parent."""
    from engine.local import LocalEngine
    from engine.runtime.cgroups import CgroupDriver, remove_parent

    engine = LocalEngine(Path(tool.env["PYCOMPOSE_ROOT"]))
    for container in engine.container_list(all=True):
        with contextlib.suppress(Exception):
            engine.container_remove(container.id, force=True)
    for network in engine.network_list():
        with contextlib.suppress(Exception):
            engine.network_remove(network.id)
    driver = CgroupDriver.detect(tool.env["PYCOMPOSE_CGROUP_PARENT"])
    for _ in range(50):  # monitors remove their groups as they exit
        if not driver.list_ids():
            break
        time.sleep(0.1)
    remove_parent(driver)


def summary(tools: list[Tool], kinds: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for kind in kinds:
        for phase in ("up", "down"):
            row: dict[str, object] = {"project": kind, "phase": phase}
            medians: dict[str, float] = {}
            for tool in tools:
                values = tool.samples.get(kind, {}).get(phase, [])
                key = tool.name.replace(" ", "_")
                row[f"{key}_s"] = round(statistics.median(values), 3) if values else None
                row[f"{key}_samples"] = [round(v, 3) for v in values]
                if values:
                    medians[tool.name] = statistics.median(values)
            if len(medians) == 2 and medians["docker compose"] > 0:
                row["ratio"] = round(medians["pycompose"] / medians["docker compose"], 2)
            else:
                row["ratio"] = None
            rows.append(row)
    return rows


def print_table(rows: list[dict[str, object]], runs: int, interval: str,
                docker_version: str) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"lifecycle: median of {runs} runs (s); health interval {interval}; "
          f"docker: {docker_version or 'not available'}; load {load} on {os.cpu_count()} CPUs")
    print(f"{'project':<10}{'phase':<7}{'pycompose':>11}{'docker':>11}{'ratio':>8}")
    for row in rows:
        ours, theirs = row.get("pycompose_s"), row.get("docker_compose_s")
        cells = [f"{v:.2f}" if isinstance(v, float) else "-" for v in (ours, theirs)]
        ratio = f"{row['ratio']}x" if row["ratio"] is not None else "-"
        print(f"{row['project']!s:<10}{row['phase']!s:<7}{cells[0]:>11}{cells[1]:>11}{ratio:>8}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=5, help="runs per project and tool")
    ap.add_argument("--project", action="append", choices=PROJECTS,
                    help="only this project (repeatable)")
    ap.add_argument("--interval", default="1s", help="health check interval")
    ap.add_argument("--wait-timeout", type=int, default=120)
    ap.add_argument("--no-docker", action="store_true", help="pycompose only")
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("lifecycle_bench: run as root", file=sys.stderr)
        return 1
    from tests.conftest import make_busybox_rootfs_tar

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupted)  # so that the cleanup below runs
    kinds = args.project or list(PROJECTS)
    work = Path(tempfile.mkdtemp(prefix="pyc-lifecycle-"))
    tools: list[Tool] = []
    docker_version = ""
    try:
        tar = make_busybox_rootfs_tar(work / "busybox.tar")
        ours = pycompose_tool(work, tar)
        tools.append(ours)
        dockerd = contextlib.nullcontext(None) if args.no_docker else private_dockerd()
        with dockerd as docker:
            if docker is not None:
                tools.append(docker_tool(docker, tar))
                docker_version = docker.version
            for kind in kinds:
                workdir = work / kind
                workdir.mkdir()
                (workdir / "compose.yaml").write_text(
                    json.dumps(project_file(kind, args.interval), indent=1))
                expected = len(project_file(kind, args.interval)["services"])  # type: ignore[arg-type]
                if kind == kinds[0]:  # one untimed round: bytecode, page cache, first network
                    for tool in tools:
                        one_round(tool, kind, workdir, expected, args.wait_timeout)
                        tool.samples.pop(kind, None)
                for _ in range(args.runs):  # interleaved, so load drifts hit both alike
                    for tool in tools:
                        one_round(tool, kind, workdir, expected, args.wait_timeout)
    finally:
        if tools:
            remove_pycompose_leftovers(tools[0])
        if mounts_under(work):
            print(f"lifecycle_bench: mounts remain under {work}; left in place", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    rows = summary(tools, kinds)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print_table(rows, args.runs, args.interval, docker_version)
    for tool in tools:
        for error in tool.errors:
            print(f"{tool.name}: {error}", file=sys.stderr)
    return 1 if any(tool.errors for tool in tools) else 0


if __name__ == "__main__":
    sys.exit(main())
