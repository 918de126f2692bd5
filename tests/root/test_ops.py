"""Container operations on real containers: exec (also -it through a PTY), top, stats,
pause/unpause, cp both ways (running and stopped, symlinks kept inside), diff, export."""

from __future__ import annotations

import io
import os
import select
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import Conflict, ExecSpec, NotFound, Resources
from engine.local import LocalEngine
from engine.runtime.cgroups import CgroupDriver
from engine.runtime.nsexec import ExecFailed, set_winsize
from tests.conftest import unique
from tests.root.runtime_fixtures import IMAGE, cleanup_engine, spec, wait_for

pytestmark = pytest.mark.root


@pytest.fixture
def engine(engine_root: Path, busybox_tar: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEngine]:
    """An engine on a temp root with the busybox image and a private cgroup parent;
    every monitor, container and cgroup it made is removed afterwards (by pid)."""
    monkeypatch.setenv("PYCOMPOSE_CGROUP_PARENT", unique("pycops"))
    eng = LocalEngine(engine_root)
    try:
        eng.image_import(str(busybox_tar), IMAGE)
        yield eng
    finally:
        cleanup_engine(eng)


def started(engine: LocalEngine, script: str = "sleep 100", **kw: object) -> str:
    c = engine.container_create(spec(script, **kw))  # type: ignore[arg-type]
    engine.container_start(c.id)
    return c.id


def exec_out(engine: LocalEngine, cid: str, *cmd: str, **kw: object) -> tuple[int, str]:
    r, w = os.pipe()
    try:
        code = engine.container_exec(cid, ExecSpec(cmd=cmd, **kw),  # type: ignore[arg-type]
                                     stdout=w, stderr=w)
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        return code, f.read()


def test_exec_env_user_workdir_and_exit_code(engine: LocalEngine) -> None:
    cid = started(engine, env=(("FROM_SPEC", "yes"),))
    code, out = exec_out(engine, cid, "sh", "-c", "echo $FROM_SPEC $EXTRA; id -un; pwd; exit 5",
                         env=(("EXTRA", "x y"),), user="app", working_dir="/tmp")
    assert code == 5
    assert out.splitlines() == ["yes x y", "app", "/tmp"]
    code, out = exec_out(engine, cid, "grep", "CapEff", "/proc/self/status")
    assert code == 0 and out.split()[1] == "00000000a80425fb"
    with pytest.raises(ExecFailed) as err:
        exec_out(engine, cid, "no-such-program")
    assert err.value.exit_code == 127
    actions = [e["action"] for e in engine.store.read_events() if e["id"] == cid]
    assert "exec_die" in actions and any(a.startswith("exec_start: sh -c") for a in actions)


def test_exec_stdin_and_detach(engine: LocalEngine) -> None:
    cid = started(engine)
    r, w = os.pipe()
    os.write(w, b"from-stdin\n")
    os.close(w)
    out_r, out_w = os.pipe()
    code = engine.container_exec(cid, ExecSpec(cmd=("cat",), stdin=True), stdin=r,
                                 stdout=out_w, stderr=out_w)
    os.close(r)
    os.close(out_w)
    with os.fdopen(out_r) as f:
        assert f.read() == "from-stdin\n"
    assert code == 0
    assert engine.container_exec(cid, ExecSpec(cmd=("sh", "-c", "sleep 0.2; touch /tmp/bg"),
                                               detach=True)) == 0
    wait_for(lambda: exec_out(engine, cid, "test", "-e", "/tmp/bg")[0] == 0, timeout=5)


def test_exec_tty_through_a_pty(engine: LocalEngine) -> None:
    cid = started(engine)
    master, slave = os.openpty()  # plays the user's terminal
    set_winsize(slave, 30, 100)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(engine.container_exec(
        cid, ExecSpec(cmd=("sh", "-c", "tty; stty size; read x; echo got-$x; exit 3"),
                      tty=True, stdin=True), stdin=slave, stdout=slave)))
    worker.start()
    try:
        out = b""
        deadline = time.monotonic() + 10
        while b"30 100" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        assert b"/dev/pts/0" in out, out
        os.write(master, b"hello\r")
        while b"got-hello" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        assert b"got-hello" in out, out
        worker.join(10)
        assert result == [3]
    finally:
        worker.join(10)
        os.close(master)
        os.close(slave)


def test_exec_refuses_stopped_and_paused(engine: LocalEngine) -> None:
    c = engine.container_create(spec("sleep 100"))
    with pytest.raises(Conflict, match="is not running"):
        engine.container_exec(c.id, ExecSpec(cmd=("true",)))
    engine.container_start(c.id)
    engine.container_pause(c.id)
    with pytest.raises(Conflict, match="is paused"):
        engine.container_exec(c.id, ExecSpec(cmd=("true",)))
    engine.container_unpause(c.id)


def test_top_and_stats_show_real_figures(engine: LocalEngine) -> None:
    cid = started(engine, "sleep 1000 & while :; do :; done",
                  resources=Resources(memory=64 << 20, cpus=0.5))
    pid = engine.container_inspect(cid).state.pid
    # sh has forked its sleep and the child has exec'd (until then it shows as sh)
    wait_for(lambda: any(r[7] == "sleep 1000" for r in engine.container_top(cid)[1]))
    titles, rows = engine.container_top(cid)
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    by_pid = {int(r[1]): r for r in rows}
    assert pid in by_pid and by_pid[pid][0] == "root"
    assert any(r[7] == "sleep 1000" and int(r[2]) == pid for r in rows)
    st = engine.container_stats(cid)
    assert 2 < st.cpu_percent < 70, st
    assert st.memory_limit == 64 << 20
    assert 0 < st.memory_usage < 64 << 20
    assert st.pids == 2
    time.sleep(0.3)
    assert 2 < engine.container_stats(cid).cpu_percent < 70


def test_pause_freezes_and_unpause_thaws(engine: LocalEngine) -> None:
    cid = started(engine, "while :; do :; done")
    cg = CgroupDriver.detect().open(cid)
    engine.container_pause(cid)
    assert engine.container_inspect(cid).state.status == "paused"
    with pytest.raises(Conflict, match="already paused"):
        engine.container_pause(cid)
    before = cg.cpu_ns()
    time.sleep(0.3)
    assert cg.cpu_ns() - before < 5_000_000
    engine.container_unpause(cid)
    assert engine.container_inspect(cid).state.status == "running"
    before = cg.cpu_ns()
    wait_for(lambda: cg.cpu_ns() - before > 10_000_000)  # polled: the host may be loaded
    with pytest.raises(Conflict, match="is not paused"):
        engine.container_unpause(cid)
    actions = [e["action"] for e in engine.store.read_events() if e["id"] == cid]
    assert actions[-2:] == ["pause", "unpause"]


def make_tree(base: Path) -> Path:
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.txt").write_text("beta\n")
    os.symlink("a.txt", src / "link")
    os.chmod(src / "a.txt", 0o640)
    return src


def test_cp_both_ways_running(engine: LocalEngine, tmp_path: Path) -> None:
    cid = started(engine, "ln -s /etc /tmp/etclink; ln -s / /tmp/rootlink; sleep 100")
    wait_for(lambda: exec_out(engine, cid, "test", "-L", "/tmp/rootlink")[0] == 0)
    src = make_tree(tmp_path)
    engine.container_copy_to(cid, str(src), "/root")          # dir into existing dir
    engine.container_copy_to(cid, str(src / "a.txt"), "/root/renamed.txt")  # file, new name
    engine.container_copy_to(cid, str(src) + "/.", "/tmp")   # contents only
    code, out = exec_out(engine, cid, "sh", "-c",
                         "cat /root/src/a.txt /root/src/sub/b.txt /root/renamed.txt /tmp/a.txt; "
                         "readlink /root/src/link; stat -c '%a %u' /root/src/a.txt")
    assert code == 0, out
    assert out.splitlines() == ["alpha", "beta", "alpha", "alpha", "a.txt", "640 0"]
    # a symlink inside the container resolves inside it, never on the host
    engine.container_copy_to(cid, str(src / "a.txt"), "/tmp/etclink/")
    assert exec_out(engine, cid, "cat", "/etc/a.txt")[1] == "alpha\n"
    assert not Path("/etc/a.txt").exists()
    engine.container_copy_from(cid, "/tmp/rootlink/etc/passwd", str(tmp_path / "pw"))
    assert "app:x:1000" in (tmp_path / "pw").read_text()
    engine.container_copy_from(cid, "/root/src", str(tmp_path / "back"))
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "beta\n"
    assert os.readlink(tmp_path / "back" / "link") == "a.txt"
    with pytest.raises(NotFound):
        engine.container_copy_from(cid, "/nope", str(tmp_path / "x"))
    with pytest.raises(NotFound):
        engine.container_copy_to(cid, str(src / "a.txt"), "/no/such/dir/x")


def test_cp_stopped_container_and_diff_and_export(engine: LocalEngine, tmp_path: Path) -> None:
    c = engine.container_create(spec("rm /etc/group; echo new > /tmp/new; cat /seed.txt"))
    src = make_tree(tmp_path)
    engine.container_copy_to(c.id, str(src / "a.txt"), "/seed.txt")  # before the first start
    engine.container_start(c.id)
    assert engine.container_wait(c.id, timeout=10) == 0
    assert "".join(ln.text for ln in engine.container_logs(c.id)) == "alpha\n"
    engine.container_copy_from(c.id, "/tmp/new", str(tmp_path / "new"))  # stopped
    assert (tmp_path / "new").read_text() == "new\n"
    changes = engine.container_diff(c.id)
    assert ("D", "/etc/group") in changes
    assert ("A", "/tmp/new") in changes and ("C", "/tmp") in changes
    assert ("A", "/seed.txt") in changes
    buf = io.BytesIO()
    engine.container_export(c.id, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "tmp/new", "seed.txt", "etc/passwd"} <= names
        assert "etc/group" not in names
        new = tar.extractfile("tmp/new")
        assert new is not None and new.read() == b"new\n"
    out = tmp_path / "export.tar"
    engine.container_export(c.id, str(out))
    assert tarfile.is_tarfile(out)


def crafted_tar(*members: tuple[str, str, str]) -> io.BytesIO:
    """(type, name, data-or-linkname) entries written as raw tar members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data.encode()))
                continue
            ti.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}[kind]
            ti.linkname = data
            tar.addfile(ti)
    buf.seek(0)
    return buf


def test_extract_never_leaves_the_root(tmp_path: Path) -> None:
    from engine.api import InvalidArgument
    from engine.runtime.ops_archive import MAX_SPECIAL_RECORD, extract

    root, victim = tmp_path / "root", tmp_path / "victim"
    root.mkdir()
    victim.mkdir()
    (victim / "hello").write_text("keep")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(InvalidArgument):
            extract(crafted_tar(("file", "../victim/dotdot", "x")), fd)
        extract(crafted_tar(("sym", "up", str(victim)), ("file", "up/pwned", "x"),
                            ("sym", "rel", "../../../../victim"), ("file", "rel/pwned2", "x")),
                fd)
        assert sorted(os.listdir(victim)) == ["hello"]
        assert (root / str(victim).lstrip("/") / "pwned").read_text() == "x"
        with pytest.raises(InvalidArgument):
            extract(crafted_tar(("hard", "h", str(victim / "hello"))), fd)
        assert os.stat(victim / "hello").st_nlink == 1
        big = crafted_tar(("file", "x" * 10, ""))
        raw = bytearray(big.getvalue())
        ti = tarfile.TarInfo("././@PaxHeader")
        ti.type = tarfile.XHDTYPE
        ti.size = MAX_SPECIAL_RECORD + 1
        header = ti.tobuf(format=tarfile.USTAR_FORMAT)
        with pytest.raises(InvalidArgument, match="too large"):
            extract(io.BytesIO(header + bytes(raw)), fd)
    finally:
        os.close(fd)
    assert (victim / "hello").read_text() == "keep"
