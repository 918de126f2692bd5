"""Docker's default seccomp profile on real containers: the probe matrix of
security-notes.md §1.9 (a static C probe bind-mounted into busybox), exec'd processes
filtered too, unconfined and privileged without a filter, setuid binaries still working
(no_new_privs stays off), and the start-time cost of the filter."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import ExecSpec, Mount
from engine.local import LocalEngine
from tests.conftest import unique
from tests.root.runtime_fixtures import cleanup_engine, run, spec

pytestmark = pytest.mark.root

PROBE_SRC = Path(__file__).with_name("seccomp_probe.c")
PROBES = ("unshare_user", "clone_user", "clone3", "keyctl", "personality_rie", "mount_tmpfs",
          "fchmodat2", "syscall_1000", "getpid", "add_key", "bpf", "userfaultfd",
          "io_uring_setup", "socket_vsock", "setns", "perf_event_open", "open_by_handle_at",
          "kexec_load", "chroot", "i386_getpid", "i386_keyctl", "i386_unshare")


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/probe/probe (the matrix) and /probe/suid (the same binary, setuid root)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the seccomp probe (apt-get install gcc)")
    d = tmp_path_factory.mktemp("seccomp-probe")
    d.chmod(0o755)
    subprocess.run([gcc, "-static", "-O1", "-o", str(d / "probe"), str(PROBE_SRC)],
                   check=True, capture_output=True)
    shutil.copy(d / "probe", d / "suid")
    os.chown(d / "suid", 0, 0)
    (d / "suid").chmod(0o4755)
    return d


@pytest.fixture
def engine(engine_root: Path, busybox_tar: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEngine]:
    monkeypatch.setenv("PYCOMPOSE_CGROUP_PARENT", unique("pycsec"))
    eng = LocalEngine(engine_root)
    try:
        eng.image_import(str(busybox_tar), "pyc-runtime-busybox:test")
        yield eng
    finally:
        cleanup_engine(eng)


def probe_mount(d: Path) -> tuple[Mount, ...]:
    return (Mount(type="bind", source=str(d), target="/probe", read_only=True),)


def parse(out: str) -> dict[str, str]:
    """`<probe> <result>` lines and /proc/self/status `Key:\tvalue` lines."""
    result: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.replace(":", " ", 1).partition(" ")
        if sep:
            result[key] = value.strip()
    return result


STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
MATRIX = "/probe/probe " + " ".join(PROBES) + "; " + STATUS


def test_default_profile_probe_matrix(engine: LocalEngine, probe_dir: Path) -> None:
    code, out, err = run(engine, MATRIX, mounts=probe_mount(probe_dir))
    assert code == 0, err
    got = parse(out)
    assert got["unshare_user"] == "EPERM"
    assert got["clone_user"] == "EPERM"  # clone's flag mask
    assert got["clone3"] == "ENOSYS"  # so that libc falls back to clone
    assert got["keyctl"] == "EPERM"
    assert got["personality_rie"] == "EPERM"
    assert got["mount_tmpfs"] == "EPERM"
    assert got["fchmodat2"] == "ENOENT"  # a newer syscall the profile allows reaches the kernel
    assert got["syscall_1000"] == "ENOSYS"  # beyond the profile: ENOSYS stub, not EPERM
    assert got["getpid"] == "OK"
    for blocked in ("add_key", "bpf", "userfaultfd", "io_uring_setup", "socket_vsock",
                    "setns", "perf_event_open", "open_by_handle_at", "kexec_load"):
        assert got[blocked] == "EPERM", blocked
    assert got["chroot"] == "OK"  # CAP_SYS_CHROOT is a default cap, so the rule applies
    assert got["i386_getpid"] == "OK"  # 32-bit syscalls: same profile, i386 numbers
    assert got["i386_keyctl"] == "EPERM" and got["i386_unshare"] == "EPERM"
    assert got["Seccomp"] == "2" and got["NoNewPrivs"] == "0"


def test_unconfined_and_privileged_have_no_filter(engine: LocalEngine, probe_dir: Path) -> None:
    code, out, err = run(engine, MATRIX, mounts=probe_mount(probe_dir),
                         security_opt=("seccomp=unconfined",))
    assert code == 0, err
    got = parse(out)
    assert got["Seccomp"] == "0"
    assert got["unshare_user"] == "OK"  # seccomp was the only thing stopping it
    assert got["clone3"] == "OK" and got["personality_rie"] == "OK"
    assert got["keyctl"] != "EPERM"
    assert got["mount_tmpfs"] == "EPERM"  # still no CAP_SYS_ADMIN
    assert got["io_uring_setup"] == "EFAULT"  # reaches the kernel
    assert got["setns"] == "EBADF" and got["socket_vsock"] != "EPERM"
    assert got["i386_keyctl"] != "EPERM" and got["i386_unshare"] == "OK"
    code, out, err = run(engine, "grep Seccomp: /proc/self/status", privileged=True)
    assert code == 0, err
    assert parse(out)["Seccomp"] == "0"


def test_custom_profile_file(engine: LocalEngine, probe_dir: Path, tmp_path: Path) -> None:
    profile = tmp_path / "deny-getpid.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"],'
                       ' "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}')
    code, out, err = run(engine, "/probe/probe getpid unshare_user",
                         mounts=probe_mount(probe_dir), security_opt=(f"seccomp={profile}",))
    assert code == 0, err
    got = parse(out)
    assert got["getpid"] == "EACCES" and got["unshare_user"] == "OK"


def exec_out(engine: LocalEngine, cid: str, script: str, **kw: object) -> tuple[int, str]:
    r, w = os.pipe()
    try:
        code = engine.container_exec(cid, ExecSpec(cmd=("sh", "-c", script), **kw),  # type: ignore[arg-type]
                                     stdout=w, stderr=w)
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        return code, f.read()


def test_exec_is_filtered_too(engine: LocalEngine, probe_dir: Path) -> None:
    confined = engine.container_create(spec("sleep 30", mounts=probe_mount(probe_dir)))
    engine.container_start(confined.id)
    code, out = exec_out(engine, confined.id, "/probe/probe unshare_user clone3; " + STATUS)
    got = parse(out)
    assert code == 0 and got["Seccomp"] == "2" and got["NoNewPrivs"] == "0", out
    assert got["unshare_user"] == "EPERM" and got["clone3"] == "ENOSYS"
    code, out = exec_out(engine, confined.id, "/probe/suid euid; " + STATUS, user="1000")
    assert code == 0 and "euid=0 uid=1000" in out and parse(out)["Seccomp"] == "2", out
    engine.container_remove(confined.id, force=True)

    free = engine.container_create(spec("sleep 30", mounts=probe_mount(probe_dir),
                                        security_opt=("seccomp=unconfined",)))
    engine.container_start(free.id)
    code, out = exec_out(engine, free.id, "/probe/probe unshare_user; " + STATUS)
    got = parse(out)
    assert code == 0 and got["Seccomp"] == "0" and got["unshare_user"] == "OK", out
    engine.container_remove(free.id, force=True)


def test_setuid_still_works_as_no_new_privs_stays_off(engine: LocalEngine,
                                                      probe_dir: Path) -> None:
    script = "/probe/suid euid; " + STATUS
    code, out, err = run(engine, script, mounts=probe_mount(probe_dir), user="1000")
    assert code == 0, err
    got = parse(out)
    assert "euid=0 uid=1000" in out  # the filter was loaded before dropping to uid 1000
    assert got["Seccomp"] == "2" and got["NoNewPrivs"] == "0"
    code, out, err = run(engine, script, mounts=probe_mount(probe_dir), user="1000",
                         security_opt=("no-new-privileges:true",))
    assert code == 0, err
    assert "euid=1000 uid=1000" in out and parse(out)["NoNewPrivs"] == "1"


def test_start_time_with_and_without_filter(engine: LocalEngine,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def start_ms(opt: tuple[str, ...]) -> float:
        c = engine.container_create(spec("sleep 30", security_opt=opt))
        t0 = time.perf_counter()
        engine.container_start(c.id)
        elapsed = (time.perf_counter() - t0) * 1000
        engine.container_remove(c.id, force=True)
        return elapsed

    start_ms(())  # warm the compiled-program cache and the page cache
    confined, unconfined = [], []
    for _ in range(5):  # interleaved, so that a load change on the host hits both
        confined.append(start_ms(()))
        unconfined.append(start_ms(("seccomp=unconfined",)))
    med_c, med_u = statistics.median(confined), statistics.median(unconfined)
    with capsys.disabled():
        print(f"\ncontainer start, median of 5: default seccomp {med_c:.1f} ms, "
              f"unconfined {med_u:.1f} ms, difference {med_c - med_u:+.1f} ms")
    assert med_c - med_u < 50
