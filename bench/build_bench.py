"""Builder benchmark (root): cold build, warm rebuild, rebuild after touching one file and
after editing one file, for a 50-file context and a multi-stage Dockerfile; median of
repeated runs. Everything lives in a temporary data root that is removed afterwards.

    sudo .venv/bin/python bench/build_bench.py [--repeat 5] [--no-docker]

Columns: the engine's `image_build` called in-process; the whole `pycompose image build`
process (interpreter start-up included, bytecode cached); and `docker build` (classic
builder, DOCKER_BUILDKIT=0) against a private dockerd from bench/docker_env.py, with the
same busybox rootfs imported under the same tag. `ratio` is pycompose CLI / docker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.api import BuildSpec, connect  # noqa: E402
from tests.conftest import make_busybox_rootfs_tar  # noqa: E402

DOCKERFILE = """FROM busybox:local AS deps
RUN mkdir -p /deps && echo dep > /deps/lib.txt
FROM busybox:local AS assets
COPY assets/ /assets/
RUN ls /assets | wc -l > /assets.count
FROM busybox:local
COPY --from=deps /deps /deps
COPY --from=assets /assets.count /assets.count
COPY src/ /app/
RUN ls /app > /app.list
CMD ["cat", "/app.list"]
"""


def median_of(repeat: int, prepare: Callable[[], object], action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        prepare()
        t = time.perf_counter()
        action()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


SCENARIOS = ("cold build (--no-cache)", "warm rebuild (all cached)",
             "rebuild after touching one file", "rebuild after editing one file")


def scenario_times(repeat: int, build: Callable[[bool], object], touch: Callable[[], None],
                   edit: Callable[[], None]) -> dict[str, float]:
    """Median seconds of each scenario; `build(no_cache)` runs one build. A scenario whose
    build fails is NaN (the error is printed), so the other columns are still measured."""
    steps = {SCENARIOS[0]: (lambda: None, True), SCENARIOS[1]: (lambda: None, False),
             SCENARIOS[2]: (touch, False), SCENARIOS[3]: (edit, False)}
    times = {}
    for name, (prepare, no_cache) in steps.items():
        def one_build(nc: bool = no_cache) -> None:
            build(nc)

        try:
            times[name] = median_of(repeat, prepare, one_build)
        except Exception as exc:  # noqa: BLE001 - reported, the bench goes on
            print(f"{name}: {exc}", file=sys.stderr)
            times[name] = float("nan")
    return times


def cli_build(argv: list[str], env: dict[str, str], ctx: Path, no_cache: bool) -> None:
    done = subprocess.run([*argv, "-t", "bench:latest", *(["--no-cache"] if no_cache else []),
                           str(ctx)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-docker", action="store_true",
                        help="do not compare with a private dockerd (bench/docker_env.py)")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    repeat = opts.repeat
    work = Path(tempfile.mkdtemp(prefix="pyc-build-bench-"))
    try:
        engine = connect(str(work / "root"))
        engine.image_import(str(make_busybox_rootfs_tar(work / "bb.tar")), "busybox:local")
        ctx = work / "ctx"
        for i in range(40):
            (ctx / "src").mkdir(parents=True, exist_ok=True)
            (ctx / "src" / f"f{i:02}.txt").write_text(f"source {i}\n" * 50)
        for i in range(10):
            (ctx / "assets").mkdir(exist_ok=True)
            (ctx / "assets" / f"a{i}.bin").write_bytes(os.urandom(4096))
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        spec = BuildSpec(context=str(ctx), tags=("bench:latest",))
        cold = BuildSpec(context=str(ctx), tags=("bench:latest",), no_cache=True)
        counter = iter(range(10**6))

        def touch() -> None:
            now = time.time() + next(counter)
            os.utime(ctx / "src" / "f07.txt", (now, now))

        def edit() -> None:
            (ctx / "src" / "f07.txt").write_text(f"edited {next(counter)}\n")

        results = scenario_times(repeat, lambda nc: engine.image_build(cold if nc else spec),
                                 touch, edit)
        env = {**os.environ, "PYCOMPOSE_ROOT": str(work / "root"),
               "PYTHONPYCACHEPREFIX": str(work / "pycache")}  # bytecode cached, as installed
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        script = ROOT / ".venv" / "bin" / "pycompose"
        pycompose = [str(script)] if script.exists() else [sys.executable, "-m",
                                                          "compose.cli.main"]
        columns = {"in-process": results, "pycompose CLI": scenario_times(
            repeat, lambda nc: cli_build([*pycompose, "image", "build"], env, ctx, nc),
            touch, edit)}
        if not opts.no_docker:
            sys.path.insert(0, str(ROOT / "bench"))
            from docker_env import private_dockerd

            with private_dockerd() as docker:
                if docker is not None:
                    docker.import_image(work / "bb.tar", "busybox:local")
                    denv = {**docker.env(), "DOCKER_BUILDKIT": "0"}
                    columns[f"docker {docker.version}"] = scenario_times(
                        repeat, lambda nc: cli_build([docker.cli, "build", "-q"], denv, ctx, nc),
                        touch, edit)
        print_results(columns, repeat, opts.json)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_results(columns: dict[str, dict[str, float]], repeat: int, as_json: bool) -> None:
    docker = next((name for name in columns if name.startswith("docker")), None)
    rows = []
    for scenario in SCENARIOS:
        row: dict[str, object] = {"scenario": scenario}
        row.update({f"{name} ms": round(col[scenario] * 1000, 1)
                    for name, col in columns.items()})
        row["ratio"] = (round(columns["pycompose CLI"][scenario] / columns[docker][scenario], 2)
                        if docker else None)
        rows.append(row)
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"build benchmark: 50-file context, 3-stage Dockerfile, median of {repeat} (ms); "
          f"load {load}")
    print(f"{'scenario':<34}" + "".join(f"{name:>22}" for name in columns) + f"{'ratio':>8}")
    for row in rows:
        cells = "".join(f"{row[f'{name} ms']:>22.1f}" for name in columns)
        ratio = f"{row['ratio']}x" if row["ratio"] is not None else "-"
        print(f"{row['scenario']!s:<34}{cells}{ratio:>8}")


if __name__ == "__main__":
    main()
