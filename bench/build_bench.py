"""Builder benchmark (root): cold build, warm rebuild, rebuild after touching one file and
after editing one file, for a 50-file context and a multi-stage Dockerfile; median of
repeated runs. Everything lives in a temporary data root that is removed afterwards.

    sudo .venv/bin/python bench/build_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def median_of(repeat: int, prepare: Callable[[], None], action: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        prepare()
        t = time.perf_counter()
        action()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
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

        results = {
            "cold build (--no-cache)": median_of(repeat, lambda: None,
                                                 lambda: engine.image_build(cold)),
            "warm rebuild (all cached)": median_of(repeat, lambda: None,
                                                   lambda: engine.image_build(spec)),
            "rebuild after touching one file": median_of(repeat, touch,
                                                         lambda: engine.image_build(spec)),
            "rebuild after editing one file": median_of(repeat, edit,
                                                        lambda: engine.image_build(spec)),
        }
        print(f"build benchmark: 50-file context, 3-stage Dockerfile, median of {repeat}")
        for name, seconds in results.items():
            print(f"  {name:34} {seconds * 1000:8.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
