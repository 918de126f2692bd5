#!/usr/bin/env python3
"""Container start and exec latency of the built-in engine, side by side with runc (and docker).

    .venv/bin/python bench/engine_bench.py             # median of 11 runs, 2 warm-ups
    .venv/bin/python bench/engine_bench.py -n 21 --json

Run as root. Measured, each as the median of N runs after warm-ups:
- start: create + start of a busybox container until its process runs (pycompose:
  `container_create` + `container_start`, which return once the command was exec'd;
  runc: `runc run --detach`; docker: `docker run -d`), limits memory 256M, pids 100;
- exec: `/bin/true` in that running container until its exit code is back
  (pycompose `container_exec` in-process, `runc exec`, `docker exec`);
- exec (CLI process): the same through a whole `pycompose container exec` process,
  interpreter start-up included (for runc and docker the same figure as exec);
- start (CLI process): the same start through a whole `pycompose container run -d`
  process, the like of `docker run -d` (for runc and docker the same figure as start).
Without a Docker engine answering, a private dockerd is started for the docker column
(bench/docker_env.py; `--no-docker` skips it) and stopped at the end.
The same busybox rootfs (from Debian's busybox-static) is used everywhere; runc runs it
from an unpacked directory with a `runc spec` config. A column stays empty when its
runtime is missing (runc: `apt-get install runc`) or no Docker engine answers.
Everything created (containers, cgroups, bundles, the data root) is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUSYBOX = "/bin/busybox"
MEMORY = 256 << 20
PIDS = 100


def busybox_rootfs_tar(dest: Path) -> Path:
    """A minimal rootfs tarball: /bin/busybox, its applet links, /etc/passwd and group."""
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(dest, "w") as tar:
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "dev",
                  "proc", "sys", "run"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(ti)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in applets:
            name = applet.lstrip("/")
            if name != "bin/busybox" and "/" in name:
                ti = tarfile.TarInfo(name)
                ti.type, ti.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(ti)
        for name, data in (("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", b"root:x:0:\n")):
            import io

            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return dest


def timed(fn: Callable[[], object], runs: int, warmup: int,
          after: Callable[[], object] | None = None) -> list[float]:
    """Milliseconds of each timed call of `fn` (`after` runs untimed after each call)."""
    out = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        fn()
        elapsed = (time.perf_counter() - t) * 1000
        if after is not None:
            after()
        if i >= warmup:
            out.append(elapsed)
    return out


# --------------------------------------------------------------------------- pycompose


def bench_pycompose(work: Path, tar: Path, runs: int, warmup: int) -> dict[str, list[float]]:
    from engine.api import ContainerSpec, ExecSpec, Resources
    from engine.local import LocalEngine

    os.environ["PYCOMPOSE_CGROUP_PARENT"] = f"pycompose-bench-{uuid.uuid4().hex[:8]}"
    engine = LocalEngine(work / "pycompose-root")
    engine.image_import(str(tar), "bench-busybox:latest")
    spec = ContainerSpec(image="bench-busybox:latest", command=("sleep", "1000"),
                         network_mode="none",
                         resources=Resources(memory=MEMORY, pids_limit=PIDS, cpus=1.0))
    made: list[str] = []

    def start() -> None:
        c = engine.container_create(spec)
        made.append(c.id)
        engine.container_start(c.id)

    def remove() -> None:
        engine.container_remove(made.pop(), force=True)

    try:
        results = {"start": timed(start, runs, warmup, remove)}
        start()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            results["exec"] = timed(lambda: engine.container_exec(
                made[-1], ExecSpec(cmd=("/bin/true",)), stdout=null, stderr=null),
                runs, warmup)
        finally:
            os.close(null)
        # bytecode cached (under the scratch dir), as in an installed pycompose
        env = {**os.environ, "PYCOMPOSE_ROOT": str(engine.store.root),
               "PYTHONPYCACHEPREFIX": str(work / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cli = [sys.executable, "-m", "compose.cli.main", "container", "exec", made[-1],
               "/bin/true"]
        results["exec (CLI process)"] = timed(lambda: subprocess.run(
            cli, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL), runs, warmup)
        run_cli = [sys.executable, "-m", "compose.cli.main", "container", "run", "-d",
                   "--network", "none", "-m", str(MEMORY), "--pids-limit", str(PIDS),
                   "--cpus", "1", "bench-busybox:latest", "sleep", "1000"]

        def start_cli() -> None:
            out = subprocess.run(run_cli, env=env, check=True, cwd=ROOT, capture_output=True,
                                 text=True)
            made.append(out.stdout.strip().splitlines()[-1])

        results["start (CLI process)"] = timed(start_cli, runs, warmup, remove)
        return results
    finally:
        from engine.runtime.cgroups import CgroupDriver, remove_parent

        for cid in made:
            with contextlib.suppress(Exception):
                engine.container_remove(cid, force=True)
        driver = CgroupDriver.detect()
        for _ in range(50):  # monitors remove their groups as they exit
            if not driver.list_ids():
                break
            time.sleep(0.05)
        remove_parent(driver)


# --------------------------------------------------------------------------- runc


def bench_runc(work: Path, tar: Path, runs: int, warmup: int) -> dict[str, list[float]]:
    runc = shutil.which("runc")
    if runc is None:
        return {}
    bundle = work / "runc-bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(tar) as t:
        t.extractall(rootfs, filter="fully_trusted")
    subprocess.run([runc, "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "1000"]
    cfg["root"]["readonly"] = False
    cfg["linux"]["resources"] = {"memory": {"limit": MEMORY}, "pids": {"limit": PIDS},
                                 "cpu": {"quota": 100000, "period": 100000},
                                 "devices": cfg["linux"].get("resources", {}).get("devices",
                                                                                   [])}
    parent = f"pycompose-bench-runc-{uuid.uuid4().hex[:8]}"
    (bundle / "config.json").write_text(json.dumps(cfg))
    made: list[str] = []
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "stdin": subprocess.DEVNULL}

    def start() -> None:
        cid = f"bench-{uuid.uuid4().hex[:10]}"
        made.append(cid)
        data = json.loads((bundle / "config.json").read_text())
        data["linux"]["cgroupsPath"] = f"/{parent}/{cid}"
        (bundle / "config.json").write_text(json.dumps(data))
        subprocess.run([runc, "run", "--detach", cid], cwd=bundle, check=True, **quiet)

    def remove() -> None:
        subprocess.run([runc, "delete", "--force", made.pop()], check=False, **quiet)

    try:
        results = {"start": timed(start, runs, warmup, remove)}
        start()
        results["exec"] = timed(lambda: subprocess.run(
            [runc, "exec", made[-1], "/bin/true"], check=True, **quiet), runs, warmup)
        results["exec (CLI process)"] = results["exec"]  # runc is a process either way
        results["start (CLI process)"] = results["start"]
        return results
    finally:
        for cid in made:
            subprocess.run([runc, "delete", "--force", cid], check=False, **quiet)
        for ctrl in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (ctrl / parent).rmdir()


# --------------------------------------------------------------------------- docker


def docker_reachable() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def bench_docker(work: Path, tar: Path, runs: int, warmup: int) -> dict[str, list[float]]:
    if not docker_reachable():
        return {}
    image = f"pycompose-bench-busybox:{uuid.uuid4().hex[:8]}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with open(tar, "rb") as f:
        subprocess.run(["docker", "import", "-", image], stdin=f, check=True, **quiet)
    made: list[str] = []

    def start() -> None:
        out = subprocess.run(["docker", "run", "-d", "--network", "none", "-m", str(MEMORY),
                              "--pids-limit", str(PIDS), "--cpus", "1", image, "sleep",
                              "1000"], capture_output=True, text=True, check=True)
        made.append(out.stdout.strip())

    def remove() -> None:
        subprocess.run(["docker", "rm", "-f", made.pop()], check=False, **quiet)

    try:
        results = {"start": timed(start, runs, warmup, remove)}
        start()
        results["exec"] = timed(lambda: subprocess.run(
            ["docker", "exec", made[-1], "/bin/true"], check=True, **quiet), runs, warmup)
        results["exec (CLI process)"] = results["exec"]
        results["start (CLI process)"] = results["start"]
        return results
    finally:
        for cid in made:
            subprocess.run(["docker", "rm", "-f", cid], check=False, **quiet)
        subprocess.run(["docker", "rmi", image], check=False, **quiet)


@contextlib.contextmanager
def docker_for_bench(disabled: bool) -> Iterator[None]:
    """DOCKER_HOST aimed at a private dockerd (bench/docker_env.py) for the block, unless
    one already answers or `disabled`; the docker column stays empty when none can run."""
    if disabled or docker_reachable():
        yield
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from docker_env import private_dockerd

    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_CONFIG", "PATH")}
    with private_dockerd() as docker:
        try:
            if docker is not None:  # its own CLI (Debian's, same version) first on PATH
                os.environ.update({k: docker.env()[k] for k in ("DOCKER_HOST", "DOCKER_CONFIG")})
                os.environ["PATH"] = f"{Path(docker.cli).parent}:{saved['PATH'] or ''}"
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=11)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    ap.add_argument("--no-docker", action="store_true",
                    help="do not start a private dockerd (bench/docker_env.py)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("engine_bench: run as root", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="pycompose-bench-"))
    try:
        tar = busybox_rootfs_tar(work / "busybox.tar")
        columns = {
            "pycompose": bench_pycompose(work, tar, args.runs, args.warmup),
            "runc": bench_runc(work, tar, args.runs, args.warmup),
        }
        with docker_for_bench(args.no_docker):
            columns["docker"] = bench_docker(work, tar, args.runs, args.warmup)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.json:
        print(f"median of {args.runs} runs (ms), min in brackets")
        print(f"{'measurement':<20}" + "".join(f"{name:>20}" for name in columns))
    for what in ("start", "exec", "exec (CLI process)", "start (CLI process)"):
        row: dict[str, object] = {"measurement": what}
        cells = []
        for name, res in columns.items():
            values = res.get(what)
            if values:
                med, low = statistics.median(values), min(values)
                row[name] = {"median_ms": round(med, 2), "min_ms": round(low, 2)}
                cells.append(f"{med:.1f} [{low:.1f}]")
            else:
                row[name] = None
                cells.append("-")
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{what:<20}" + "".join(f"{c:>20}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
