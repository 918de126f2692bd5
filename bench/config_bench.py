#!/usr/bin/env python3
"""Times `pycompose config` and `pycompose --help` against the reference `docker compose`.

Each measurement is a whole process (start-up included), the median of N runs, on:
the projects under samples/, a few conformance cases, and a generated 200-service file.
Prints one table row per project with both times and their ratio. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "cases"
DEFAULT_CASES = ("cg-loader-combined", "dc-testdata-TestConfig", "dc-fixtures-build-test",
                 "dc-testdata-TestEnvInterpolation", "cg-loader-compose-include")
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


@dataclass(frozen=True)
class Project:
    label: str
    workdir: Path
    args: tuple[str, ...]  # global flags before the command (-p, -f ...)
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Timing:
    median_ms: float  # wall clock
    cpu_ms: float  # user + system CPU of the process: steadier on a busy machine
    exit_code: int


def reference_command() -> list[str] | None:
    if os.access("/opt/ref/docker-compose", os.X_OK):
        return ["/opt/ref/docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def pycompose_command() -> list[str]:
    script = ROOT / ".venv" / "bin" / "pycompose"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "compose.cli.main"]


def time_command(argv: list[str], cwd: Path, env: dict[str, str], runs: int) -> Timing:
    walls: list[float] = []
    cpus: list[float] = []
    code = 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        code = done.returncode
    return Timing(statistics.median(walls), statistics.median(cpus), code)


def generated_project(where: Path, count: int = 200) -> Project:
    """A file with `count` services using most common keys, chained by depends_on."""
    lines = ["services:"]
    for i in range(count):
        lines += [
            f"  svc{i:03d}:",
            f"    image: registry.example/app{i % 7}:${{TAG:-latest}}",
            f"    command: ['run', '--port', '{8000 + i}']",
            "    environment:",
            f"      INDEX: '{i}'",
            "      MODE: ${MODE:-prod}",
            f"    ports: ['{20000 + i}:80']",
            f"    volumes: ['data{i % 10}:/data', './conf:/etc/app:ro']",
            "    networks: [front, back]",
            "    healthcheck: {test: ['CMD', 'true'], interval: 30s, retries: 3}",
            "    deploy: {resources: {limits: {memory: 256m, cpus: '0.5'}}}",
            f"    labels: {{tier: t{i % 3}}}",
        ]
        if i:
            lines.append(f"    depends_on: [svc{i - 1:03d}]")
    lines += ["networks:", "  front: {}", "  back: {}", "volumes:"]
    lines += [f"  data{j}: {{}}" for j in range(10)]
    where.mkdir(parents=True, exist_ok=True)
    (where / "compose.yaml").write_text("\n".join(lines) + "\n")
    return Project(f"generated-{count}", where, ("-p", "gen"))


def sample_projects() -> list[Project]:
    found = []
    for directory in sorted((ROOT / "samples").glob("*/")):
        if any((directory / name).is_file() for name in COMPOSE_NAMES):
            found.append(Project(f"samples/{directory.name}", directory, ("-p", "bench")))
    return found


def conformance_projects(names: tuple[str, ...], scratch: Path) -> list[Project]:
    found = []
    for name in names:
        case = CONFORMANCE / name
        if not (case / "case.json").is_file():
            continue
        meta = json.loads((case / "case.json").read_text())
        copy = scratch / name
        shutil.copytree(case, copy, ignore=shutil.ignore_patterns(*meta.get("meta_files", [])))
        args = tuple(meta["json_args"][: meta["json_args"].index("config")])
        found.append(Project(f"case {name}", copy / meta["workdir"], args,
                             tuple(sorted(meta.get("env", {}).items()))))
    return found


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="runs per measurement")
    parser.add_argument("--case", action="append", default=[],
                        help="conformance case to include (repeatable)")
    parser.add_argument("--services", type=int, default=200,
                        help="services in the generated file")
    parser.add_argument("--json", action="store_true", help="print rows as JSON lines")
    opts = parser.parse_args(argv)

    mine = pycompose_command()
    reference = reference_command()
    with tempfile.TemporaryDirectory(prefix="pycompose-bench-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        home.mkdir()
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
        projects = sample_projects()
        projects += conformance_projects(tuple(opts.case) or DEFAULT_CASES, scratch / "cases")
        projects.append(generated_project(scratch / "generated", opts.services))

        rows: list[dict[str, object]] = []
        measurements: list[tuple[str, list[str], Path, dict[str, str]]] = [
            ("--help", ["--help"], scratch, base_env)]
        for project in projects:
            env = {**base_env, **dict(project.env)}
            measurements.append((f"config: {project.label}",
                                 [*project.args, "config", "--format", "json"],
                                 project.workdir, env))
        for label, args, cwd, env in measurements:
            ours = time_command(mine + args, cwd, env, opts.runs)
            theirs = time_command(reference + args, cwd, env, opts.runs) if reference else None
            rows.append({
                "what": label, "pycompose_ms": round(ours.median_ms, 1),
                "pycompose_cpu_ms": round(ours.cpu_ms, 1), "pycompose_exit": ours.exit_code,
                "reference_ms": round(theirs.median_ms, 1) if theirs else None,
                "reference_cpu_ms": round(theirs.cpu_ms, 1) if theirs else None,
                "reference_exit": theirs.exit_code if theirs else None,
                "ratio": round(ours.median_ms / theirs.median_ms, 2) if theirs else None,
            })
    if opts.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"median of {opts.runs} runs (wall / CPU ms); pycompose: {' '.join(mine)}; "
          f"reference: {' '.join(reference) if reference else 'not found'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'measurement':<44} {'pycompose':>20} {'reference':>20} {'ratio':>6}")
    for row in rows:
        ours_text = f"{row['pycompose_ms']:.0f} / {row['pycompose_cpu_ms']:.0f}" + (
            "" if row["pycompose_exit"] == 0 else f" (exit {row['pycompose_exit']})")
        theirs_text = "-" if row["reference_ms"] is None else (
            f"{row['reference_ms']:.0f} / {row['reference_cpu_ms']:.0f}" +
            ("" if row["reference_exit"] == 0 else f" (exit {row['reference_exit']})"))
        ratio = "-" if row["ratio"] is None else f"{row['ratio']}x"
        print(f"{str(row['what'])[:44]:<44} {ours_text:>20} {theirs_text:>20} {ratio:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
