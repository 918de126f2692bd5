"""The container runtime core on real namespaces: run, logs, stop, init, read-only,
capabilities, masked paths, a killed monitor, and concurrent creators."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.api import (
    Conflict,
    EngineRuntimeError,
    InvalidArgument,
    LogConfig,
    Mount,
    NotFound,
    RestartPolicy,
)
from engine.local import LocalEngine
from engine.runtime import bundle
from tests.root import runtime_fixtures
from tests.root.runtime_fixtures import run, spec, wait_for

pytestmark = pytest.mark.root
engine = runtime_fixtures.engine  # the fixture
REPO = str(Path(__file__).resolve().parents[2])


def test_exit_code_and_separate_ordered_streams(engine: LocalEngine) -> None:
    code, out, err = run(engine, "for i in 1 2 3; do echo out$i; echo err$i >&2; done; "
                                 "printf partial; exit 3")
    assert code == 3
    assert out == "out1\nout2\nout3\npartial"
    assert err == "err1\nerr2\nerr3\n"


def test_state_and_events_of_a_finished_container(engine: LocalEngine) -> None:
    c = engine.container_create(spec("exit 0"))
    assert engine.container_inspect(c.id).state.status == "created"
    assert len(c.id) == 64 and all(ch in "0123456789abcdef" for ch in c.id)
    engine.container_start(c.name)
    assert engine.container_wait(c.id, timeout=10) == 0
    st = engine.container_inspect(c.id[:12]).state
    assert st.status == "exited" and st.pid == 0 and st.finished_at >= st.started_at
    actions = [e["action"] for e in engine.store.read_events() if e["id"] == c.id]
    assert actions == ["create", "start", "die"]
    engine.container_remove(c.id)
    assert not bundle.bundle_dir(engine.store, c.id).exists()
    assert [e["action"] for e in engine.store.read_events() if e["id"] == c.id][-1] == "destroy"
    assert not [p for p in engine.store.path("locks").iterdir() if c.id in p.name]


def test_names_errors_and_missing_commands(engine: LocalEngine) -> None:
    c = engine.container_create(spec("true"))
    with pytest.raises(Conflict, match="already in use"):
        engine.container_create(spec("true", name=c.name))
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        engine.container_create(spec("true", name="bad name!"))
    with pytest.raises(NotFound):
        engine.container_start("no-such-container")
    bad = engine.container_create(spec(None, command=("no-such-binary",)))
    with pytest.raises(EngineRuntimeError, match="executable file not found"):
        engine.container_start(bad.id)
    st = engine.container_inspect(bad.id).state
    assert st.status == "created" and st.exit_code == 127 and "no-such-binary" in st.error


def test_survives_its_creator_and_is_managed_by_another_process(
        engine: LocalEngine, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": REPO}
    creator = (
        "import sys; from engine.api import ContainerSpec; from engine.local import LocalEngine\n"
        "e = LocalEngine(sys.argv[1])\n"
        "c = e.container_create(ContainerSpec(image=sys.argv[2], name=sys.argv[3], "
        "network_mode='none', command=("
        "'sh', '-c', 'echo hello; while true; do sleep 0.1; done')))\n"
        "e.container_start(c.id); print(c.id)\n")
    name = spec().name
    from tests.root.runtime_fixtures import IMAGE

    out = subprocess.run([sys.executable, "-c", creator, str(engine.store.root), IMAGE,
                          str(name)], capture_output=True, text=True, env=env, timeout=30,
                         check=True)
    cid = out.stdout.strip()
    assert engine.container_inspect(cid).state.status == "running"
    manager = (
        "import sys; from engine.local import LocalEngine\n"
        "e = LocalEngine(sys.argv[1]); c = e.container_inspect(sys.argv[2])\n"
        "print(c.state.status)\n"
        "print(''.join(l.text for l in e.container_logs(c.id)), end='')\n"
        "e.container_stop(c.id, timeout=1)\n"
        "print(e.container_inspect(c.id).state.status)\n")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", manager, str(engine.store.root), str(name)],
                         capture_output=True, text=True, env=env, timeout=30, check=True)
    assert out.stdout.splitlines() == ["running", "hello", "exited"]
    assert time.monotonic() - t0 < 9  # PID 1 sh ignores SIGTERM: SIGKILL after 1 s, not 10
    assert engine.container_inspect(cid).state.exit_code == 137


def test_stop_uses_stop_signal(engine: LocalEngine) -> None:
    c = engine.container_create(spec(
        "trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.05; done",
        stop_signal="SIGUSR1"))
    engine.container_start(c.id)
    wait_for(lambda: any("ready" in ln.text for ln in engine.container_logs(c.id)))
    t0 = time.monotonic()
    engine.container_stop(c.id, timeout=20)
    assert time.monotonic() - t0 < 15  # the trap ran: no wait for the 20 s grace period
    assert engine.container_inspect(c.id).state.exit_code == 7
    assert any("got-usr1" in ln.text for ln in engine.container_logs(c.id))
    actions = [e["action"] for e in engine.store.read_events() if e["id"] == c.id]
    assert actions[-3:] == ["kill", "die", "stop"]


def test_stop_waits_the_grace_period_then_kills(engine: LocalEngine) -> None:
    c = engine.container_create(spec("trap '' TERM; while true; do sleep 0.05; done",
                                     stop_grace_period=1.0))
    engine.container_start(c.id)
    t0 = time.monotonic()
    engine.container_stop(c.id)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 8  # 1 s grace, not the default 10
    assert engine.container_inspect(c.id).state.exit_code == 137


def test_init_forwards_sigterm_and_reaps_zombies(engine: LocalEngine) -> None:
    c = engine.container_create(spec(
        "for i in 1 2 3; do sh -c 'sleep 0.05 &'; done; sleep 0.5; "
        "ps -o pid,stat,comm; echo done; while true; do sleep 0.05; done", init=True))
    engine.container_start(c.id)
    wait_for(lambda: any("done" in ln.text for ln in engine.container_logs(c.id)))
    table = "".join(ln.text for ln in engine.container_logs(c.id))
    rows = [r.split() for r in table.splitlines()[1:] if r.strip() and r != "done"]
    assert rows and rows[0][0] == "1" and "init" in rows[0][2]
    assert not [r for r in rows if r[1].startswith("Z")], table
    t0 = time.monotonic()
    engine.container_stop(c.id, timeout=10)
    assert time.monotonic() - t0 < 8  # tini passed SIGTERM on: no 10 s wait
    assert engine.container_inspect(c.id).state.exit_code == 143


def test_read_only_rootfs_allows_only_tmpfs(engine: LocalEngine) -> None:
    code, out, err = run(engine, "touch /x && echo root-writable; touch /scratch/y && "
                                 "echo tmpfs-ok; echo hi > /etc/hosts && echo hosts-ok",
                         read_only=True,
                         mounts=(Mount(type="tmpfs", target="/scratch"),))
    assert "root-writable" not in out
    assert "Read-only file system" in err
    assert "tmpfs-ok" in out
    assert "hosts-ok" in out  # /etc/hosts is the bundle's file, writable as in Docker


def test_capabilities_default_and_changed(engine: LocalEngine) -> None:
    def cap_eff(**kw: object) -> str:
        _, out, _ = run(engine, "grep CapEff /proc/self/status", **kw)
        return out.split()[-1]

    def cap_bnd(**kw: object) -> str:
        _, out, _ = run(engine, "grep CapBnd /proc/self/status", **kw)
        return out.split()[-1]

    assert cap_eff() == "00000000a80425fb"
    assert cap_eff(cap_add=("SYS_ADMIN",)) == "00000000a82425fb"
    assert cap_eff(cap_drop=("ALL",)) == "0000000000000000"
    assert cap_eff(user="app") == "0000000000000000"
    assert cap_bnd(user="app") == "00000000a80425fb"


def test_isolation_masks_and_devices(engine: LocalEngine) -> None:
    code, out, err = run(engine, (
        "echo keys=$(wc -c < /proc/keys) timers=$(wc -c < /proc/timer_list); "
        "echo firmware=$(ls /sys/firmware | wc -l); "
        "echo x > /proc/sys/kernel/domainname 2>/dev/null || echo procsys-ro; "
        "mkdir /sys/x 2>/dev/null || echo sys-ro; "
        "echo dev=$(ls /dev | tr '\\n' ' '); echo pid=$$; hostname; "
        "grep NoNewPrivs /proc/self/status; grep SigIgn /proc/self/status; "
        "echo fds=$(ls /proc/self/fd); mount | grep ' /dev/pts '"), hostname="isolated")
    assert code == 0, err
    assert "keys=0 timers=0" in out
    assert "firmware=0" in out
    assert "procsys-ro" in out and "sys-ro" in out
    dev = out.split("dev=")[1].splitlines()[0].split()
    assert sorted(dev) == sorted(["core", "fd", "full", "mqueue", "null", "ptmx", "pts",
                                  "random", "shm", "stderr", "stdin", "stdout", "tty",
                                  "urandom", "zero"])
    assert "pid=1" in out and "isolated" in out
    assert "NoNewPrivs:\t0" in out and "SigIgn:\t0000000000000000" in out
    assert "fds=0 1 2 3\n" in out  # stdio, and the directory ls itself opened
    assert "newinstance" in out or "ptmxmode=666" in out


def test_no_new_privileges_and_user(engine: LocalEngine) -> None:
    _, out, _ = run(engine, "id; grep NoNewPrivs /proc/self/status; pwd", user="app",
                    security_opt=("no-new-privileges:true",), working_dir="/home/app/work")
    assert "uid=1000(app) gid=1000(app)" in out
    assert "NoNewPrivs:\t1" in out
    assert "/home/app/work" in out
    with pytest.raises(InvalidArgument, match="unable to find user nosuchuser"):
        engine.container_create(spec("true", user="nosuchuser"))


def test_killed_monitor_reports_dead_and_remove_cleans_up(engine: LocalEngine) -> None:
    from engine.runtime.cgroups import CgroupDriver

    c = engine.container_create(spec("while true; do sleep 0.05; done"))
    engine.container_start(c.id)
    state = bundle.read_state(engine.store, c.id)
    ctr_pid, mon_pid = state["pid"], state["monitor_pid"]
    os.kill(mon_pid, signal.SIGKILL)
    rec = wait_for(lambda: (r := engine.container_inspect(c.id)).state.status == "dead" and r)
    assert not rec.state.running and "monitor" in rec.state.error
    wait_for(lambda: not os.path.exists(f"/proc/{ctr_pid}")
             or b"Z" in Path(f"/proc/{ctr_pid}/stat").read_bytes().split(b")")[1][:3])
    assert c.id not in [x.id for x in engine.container_list()]
    assert c.id in [x.id for x in engine.container_list(all=True)]
    engine.container_remove(c.id)
    assert not bundle.bundle_dir(engine.store, c.id).exists()
    with pytest.raises(NotFound):
        CgroupDriver.detect().open(c.id)


def test_remove_running_needs_force(engine: LocalEngine) -> None:
    c = engine.container_create(spec("while true; do sleep 0.05; done"))
    engine.container_start(c.id)
    with pytest.raises(Conflict, match="cannot remove a running container"):
        engine.container_remove(c.id)
    engine.container_remove(c.id, force=True)
    with pytest.raises(NotFound):
        engine.container_inspect(c.id)


def test_concurrent_creators_do_not_corrupt_the_store(engine: LocalEngine) -> None:
    from tests.root.runtime_fixtures import IMAGE

    env = {**os.environ, "PYTHONPATH": REPO}
    script = (
        "import sys, json; from engine.api import ContainerSpec, Conflict\n"
        "from engine.local import LocalEngine\n"
        "e = LocalEngine(sys.argv[1]); made = []; lost = 0\n"
        "for i in range(6):\n"
        "    try:\n"
        "        made.append(e.container_create(ContainerSpec(image=sys.argv[2], "
        "name=f'shared{i}', command=('true',))).id)\n"
        "    except Conflict:\n"
        "        lost += 1\n"
        "print(json.dumps({'made': made, 'lost': lost}))\n")

    def creator() -> dict[str, object]:
        out = subprocess.run([sys.executable, "-c", script, str(engine.store.root), IMAGE],
                             capture_output=True, text=True, env=env, timeout=120, check=True)
        return dict(json.loads(out.stdout))

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: creator(), range(2)))
    made = [cid for r in results for cid in r["made"]]  # type: ignore[attr-defined]
    lost = sum(int(r["lost"]) for r in results)  # type: ignore[call-overload]
    assert len(made) == 6 and lost == 6
    names = sorted(c.name for c in engine.container_list(all=True))
    assert names == [f"shared{i}" for i in range(6)]
    for cid in made:
        json.loads(bundle.config_path(engine.store, cid).read_text())
        json.loads(bundle.state_path(engine.store, cid).read_text())


def test_log_rotation_from_log_options(engine: LocalEngine) -> None:
    c = engine.container_create(spec(
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        log_config=LogConfig(options=(("max-size", "2k"), ("max-file", "3")))))
    engine.container_start(c.id)
    assert engine.container_wait(c.id, timeout=10) == 0
    log = bundle.log_path(engine.store, c.id)
    files = sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name))
    assert files == [log.name, f"{log.name}.1", f"{log.name}.2"]
    texts = [ln.text for ln in engine.container_logs(c.id)]
    assert texts[-1] == "line-199\n" and 10 < len(texts) < 200
    assert [ln.text for ln in engine.container_logs(c.id, tail=2)] == texts[-2:]


def test_auto_remove_restart_and_idempotent_start(engine: LocalEngine) -> None:
    c = engine.container_create(spec("while true; do sleep 0.05; done"))
    engine.container_start(c.id)
    pid = engine.container_inspect(c.id).state.pid
    engine.container_start(c.id)  # already running: nothing happens
    assert engine.container_inspect(c.id).state.pid == pid
    engine.container_restart(c.id, timeout=0)
    st = engine.container_inspect(c.id).state
    assert st.status == "running" and st.pid != pid
    assert [e["action"] for e in engine.store.read_events() if e["id"] == c.id][-1] == \
        "restart"
    engine.container_kill(c.id)
    engine.container_wait(c.id, timeout=10)
    temp = engine.container_create(spec("echo bye", auto_remove=True))
    engine.container_start(temp.id)
    wait_for(lambda: not bundle.bundle_dir(engine.store, temp.id).exists())
    with pytest.raises(NotFound):
        engine.container_inspect(temp.id)


def test_tty_and_open_stdin(engine: LocalEngine) -> None:
    code, out, err = run(engine, "tty; echo hi >&2; stty size", tty=True)
    assert code == 0
    assert out == "/dev/pts/0\r\nhi\r\n24 80\r\n" and err == ""  # one stream, as Docker
    c = engine.container_create(spec(None, command=("cat",), stdin_open=True))
    engine.container_start(c.id)
    time.sleep(0.3)
    assert engine.container_inspect(c.id).state.status == "running"  # stdin did not end
    engine.container_stop(c.id, timeout=0)
    plain = engine.container_create(spec(None, command=("cat",)))
    engine.container_start(plain.id)
    assert engine.container_wait(plain.id, timeout=10) == 0  # /dev/null: EOF at once


def test_corrupt_state_is_reported_and_removable(engine: LocalEngine) -> None:
    c = engine.container_create(spec("true"))
    bundle.state_path(engine.store, c.id).write_text("{not json")
    st = engine.container_inspect(c.id).state
    assert st.status == "dead" and "corrupt" in st.error
    other = engine.container_create(spec("true"))
    bundle.config_path(engine.store, other.id).write_text("")
    assert other.id not in [x.id for x in engine.container_list(all=True)]
    for cid in (c.id, other.id):
        engine.container_remove(cid)
        assert not bundle.bundle_dir(engine.store, cid).exists()


def test_devices_and_privileged(engine: LocalEngine) -> None:
    _, out, _ = run(engine, "ls -l /dev/mydev /dev/loop-control 2>&1; "
                            "grep CapEff /proc/self/status", devices=("/dev/null:/dev/mydev",))
    assert "crw-rw-rw-" in out and "1,   3" in out and "/dev/mydev" in out
    assert "/dev/loop-control: No such file" in out  # that one only with privileged
    _, out, _ = run(engine, "ls /dev/loop-control; grep CapEff /proc/self/status; "
                            "echo 1 > /proc/sys/kernel/shmmni 2>/dev/null && echo psys-rw",
                    privileged=True)
    assert "/dev/loop-control" in out
    assert out.split("CapEff:")[1].split()[0] not in ("00000000a80425fb", "0" * 16)
    assert "psys-rw" in out


def test_none_log_driver_keeps_nothing(engine: LocalEngine) -> None:
    code, out, err = run(engine, "echo secret; echo more >&2",
                         log_config=LogConfig(driver="none"))
    assert code == 0 and out == "" and err == ""


def test_image_config_is_the_default(engine: LocalEngine, busybox_tar: Path) -> None:
    engine.image_import(str(busybox_tar), "rt-configured:1", changes=(
        'ENTRYPOINT ["sh", "-c"]', 'CMD ["echo $FOO $(id -un) $(pwd)"]', "ENV FOO=from-image",
        "WORKDIR /srv", "USER app", "LABEL team=rt", "STOPSIGNAL SIGUSR1"))
    c = engine.container_create(spec(None, image="rt-configured:1"))
    engine.container_start(c.id)
    assert engine.container_wait(c.id, timeout=10) == 0
    assert [ln.text for ln in engine.container_logs(c.id)] == ["from-image app /srv\n"]
    assert c.labels["team"] == "rt"
    cfg = bundle.read_config(engine.store, c.id)
    assert cfg["stop_signal"] == "SIGUSR1" and cfg["process"]["uid"] == 1000
    over = engine.container_create(spec("echo $FOO", image="rt-configured:1", user="0",
                                        env=(("FOO", "mine"),), entrypoint=()))
    engine.container_start(over.id)
    engine.container_wait(over.id, timeout=10)
    assert [ln.text for ln in engine.container_logs(over.id)] == ["mine\n"]


def test_paused_container_can_be_stopped_and_killed(engine: LocalEngine) -> None:
    for action in ("stop", "kill"):
        c = engine.container_create(spec("while true; do sleep 0.05; done"))
        engine.container_start(c.id)
        engine.container_pause(c.id)
        assert engine.container_inspect(c.id).state.status == "paused"
        if action == "stop":
            engine.container_stop(c.id, timeout=0)
        else:
            engine.container_kill(c.id)
        assert engine.container_wait(c.id, timeout=10) == 137
        wait_for(lambda cid=c.id: not bundle.monitor_alive(bundle.read_state(engine.store,
                                                                             cid)))
        assert engine.container_inspect(c.id).state.status == "exited"


def test_bad_specs_fail_at_create_with_one_line(engine: LocalEngine) -> None:
    for kw, message in ((dict(working_dir="rel/dir"), "needs to be an absolute path"),
                        (dict(pid_mode="container:x"), "unsupported pid mode"),
                        (dict(devices=("/dev/nope",)), "no such file"),
                        (dict(stop_signal="SIGNOPE"), "invalid signal"),
                        (dict(restart=RestartPolicy("always", 3)), "maximum retry count")):
        with pytest.raises(InvalidArgument, match=message) as info:
            engine.container_create(spec("true", **kw))
        assert "\n" not in str(info.value)
    assert engine.container_list(all=True) == []


def test_image_volumes_are_anonymous_volumes(engine: LocalEngine, busybox_tar: Path) -> None:
    engine.image_import(str(busybox_tar), "rt-vol:1", changes=("VOLUME /data",))
    code, out, _ = run(engine, "echo kept > /data/f; mount | grep -c ' /data '",
                       image="rt-vol:1")
    assert code == 0 and out == "1\n"
    c = engine.container_list(all=True)[0]
    vols = [v for v in engine.volume_list() if "com.docker.volume.anonymous" in dict(v.labels)]
    assert len(vols) == 1 and (Path(vols[0].mountpoint) / "f").read_text() == "kept\n"
    engine.container_remove(c.id, volumes=True)
    assert engine.volume_list() == []


def test_stale_pids_are_never_trusted(engine: LocalEngine) -> None:
    c = engine.container_create(spec("true"))
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        bundle.update_state(engine.store, c.id, status="running", pid=bystander.pid,
                            pid_start=1, monitor_pid=bystander.pid, monitor_start=1)
        st = engine.container_inspect(c.id).state
        assert st.status == "dead" and not st.running
        engine.container_remove(c.id)
        assert bystander.poll() is None  # a reused pid is not ours to kill
    finally:
        bystander.kill()
        bystander.wait()


def test_parallel_starts_from_worker_threads(engine: LocalEngine) -> None:
    ids = [engine.container_create(spec("echo hi; sleep 0.2")).id for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:  # as compose's apply starts a level
        list(pool.map(engine.container_start, ids))
    assert [engine.container_wait(cid, timeout=15) for cid in ids] == [0] * 4
    assert [[ln.text for ln in engine.container_logs(cid)] for cid in ids] == [["hi\n"]] * 4
