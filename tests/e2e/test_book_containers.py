"""The book's container scenarios (seed-inventory section 8.2, B1-B16), driven through the
real `pycompose container ...` command on `busybox:local`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.e2e.book_fixtures import BASE, Pyc, free_port, http_get, pyc, wait_for, write_files

pytestmark = [pytest.mark.root, pytest.mark.e2e]
__all__ = ["pyc"]


def inspect(pyc: Pyc, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(pyc("container", "inspect", ref).stdout)[0]  # type: ignore[no-any-return]


def status(pyc: Pyc, name: str) -> str:
    """The STATUS column of `container ls -a` for container `name`."""
    out = pyc("container", "ls", "-a", "--format", "{{.Names}}\t{{.Status}}").stdout
    for line in out.splitlines():
        n, _, st = line.partition("\t")
        if n == name:
            return st
    return ""


def run(pyc: Pyc, *args: str, code: int | None = 0) -> str:
    return pyc("container", "run", "--rm", "--network", "none", *args, code=code).stdout


def test_b1_create_start_stop_keeps_config(pyc: Pyc) -> None:
    cid = pyc("container", "create", "--network", "none", "--name", "awesome-service",
              "-e", "X=1", "-l", "a=b", BASE, "sleep", "120").stdout.strip()
    try:
        assert re.fullmatch(r"[0-9a-f]{64}", cid)
        assert status(pyc, "awesome-service") == "Created"
        pyc("container", "start", "awesome-service")
        assert status(pyc, "awesome-service").startswith("Up ")
        pyc("container", "stop", "-t", "1", "awesome-service")
        assert re.match(r"Exited \((137|143)\) ", status(pyc, "awesome-service"))
        pyc("container", "start", cid[:5])
        doc = inspect(pyc, "awesome-service")
        assert doc["Id"] == cid and doc["State"]["Running"] is True
        assert "X=1" in doc["Config"]["Env"] and doc["Config"]["Labels"]["a"] == "b"
        dup = pyc.fails("container", "create", "--name", "awesome-service", BASE, "true")
        assert "already in use" in dup.stderr and len(dup.stderr.strip().splitlines()) == 1
    finally:
        pyc("container", "rm", "-f", "awesome-service")


def test_b2_labels_and_filters(pyc: Pyc) -> None:
    cid = pyc("container", "run", "--rm", "-d", "--network", "none", "--name",
              "has-some-labels", "-l", "deployer=Ahmed", "-l", "tester=Asako", BASE,
              "sleep", "1000").stdout.strip()
    other = pyc("container", "create", "--network", "none", "--name", "no-labels", BASE,
                "true").stdout.strip()
    try:
        assert pyc("container", "ls", "-a", "-q", "-f", "label=deployer=Ahmed"
                   ).stdout.split() == [cid[:12]]
        assert inspect(pyc, cid)["Config"]["Labels"] == {"deployer": "Ahmed",
                                                          "tester": "Asako"}
        both = pyc("container", "ls", "-a", "-q", "--filter", f"ancestor={BASE}").stdout
        assert set(both.split()) == {cid[:12], other[:12]}
        assert pyc("container", "ls", "-q").stdout.split() == [cid[:12]]
        table = pyc("container", "ls", "--format",
                    r"table {{.ID}}\t{{.Image}}\t{{.Status}}").stdout.splitlines()
        assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "STATUS"]
        assert table[1].split()[:3] == [cid[:12], BASE, "Up"]
    finally:
        pyc("container", "rm", "-f", other)
        pyc("container", "stop", "-t", "0", cid)
        assert wait_for(lambda: cid[:12] not in pyc("container", "ls", "-a", "-q").stdout)


def test_b3_hostname_dns_and_engine_files(pyc: Pyc) -> None:
    out = pyc("container", "run", "--network", "none", "--name", "b3", BASE, "hostname")
    cid = inspect(pyc, "b3")["Id"]
    pyc("container", "rm", "b3")
    assert out.stdout == cid[:12] + "\n"
    assert run(pyc, "--hostname", "mycontainer", BASE, "hostname") == "mycontainer\n"
    resolv = run(pyc, "--dns=8.8.8.8", "--dns-search=example1.com",
                 "--dns-search=example2.com", BASE, "cat", "/etc/resolv.conf").splitlines()
    assert [line for line in resolv if line.startswith("nameserver")] == ["nameserver 8.8.8.8"]
    assert "search example1.com example2.com" in resolv
    mounts = [line.split()[2] for line in run(pyc, BASE, "mount").splitlines()]
    assert {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc"} <= set(mounts)


def test_b4_exit_codes_and_stdio(pyc: Pyc) -> None:
    assert pyc("container", "run", "--rm", "--network", "none", BASE, "false", code=1)
    assert pyc("container", "run", "--rm", "--network", "none", BASE, "true", code=0)
    assert pyc("container", "run", "--rm", "--network", "none", BASE, "sh", "-c", "exit 42",
               code=42)
    passwd = run(pyc, BASE, "cat", "/etc/passwd")
    inside = run(pyc, BASE, "sh", "-c", "cat /etc/passwd | wc -l")
    assert int(inside.strip()) == len(passwd.splitlines()) >= 1
    assert pyc("container", "run", "--rm", "-i", "--network", "none", BASE, "cat",
               stdin="hi\n").stdout == "hi\n"


TRAPPER = ('trap "echo got TERM; exit 0" TERM; trap "echo got USR1" USR1; '
           'while :; do sleep 1; done')


def logs(pyc: Pyc, ref: str, *flags: str) -> str:
    proc = pyc("container", "logs", *flags, ref)
    return proc.stdout + proc.stderr


def test_b5_stop_kill_signals(pyc: Pyc) -> None:
    pyc("container", "run", "-d", "--network", "none", "--name", "trapper", BASE,
        "sh", "-c", TRAPPER)
    pyc("container", "run", "-d", "--network", "none", "--name", "stubborn", BASE,
        "sh", "-c", 'trap "" TERM; while :; do sleep 1; done')
    pyc("container", "run", "-d", "--network", "none", "--name", "victim", BASE,
        "sleep", "600")
    try:
        time.sleep(0.3)
        pyc("container", "kill", "--signal=USR1", "trapper")
        assert wait_for(lambda: "got USR1" in logs(pyc, "trapper"), 5)
        assert inspect(pyc, "trapper")["State"]["Running"] is True
        started = time.monotonic()
        pyc("container", "stop", "trapper")
        assert time.monotonic() - started < 3
        assert "got TERM" in logs(pyc, "trapper")
        assert inspect(pyc, "trapper")["State"]["ExitCode"] == 0

        started = time.monotonic()
        pyc("container", "stop", "-t", "2", "stubborn")
        took = time.monotonic() - started
        assert 1.8 <= took < 5, took
        assert inspect(pyc, "stubborn")["State"]["ExitCode"] == 137

        started = time.monotonic()
        pyc("container", "kill", "victim")
        assert wait_for(lambda: not inspect(pyc, "victim")["State"]["Running"], 3)
        assert time.monotonic() - started < 3
        assert inspect(pyc, "victim")["State"]["ExitCode"] == 137
    finally:
        pyc("container", "rm", "-f", "trapper", "stubborn", "victim")


def test_b6_restart_policies(pyc: Pyc) -> None:
    pyc("container", "run", "-d", "--network", "none", "--name", "rf",
        "--restart=on-failure:3", BASE, "sh", "-c", "echo run; exit 1")
    pyc("container", "run", "-d", "--network", "none", "--name", "ra", "--restart=always",
        BASE, "sh", "-c", "echo again; sleep 0.2; exit 0")
    pyc("container", "run", "-d", "--network", "none", "--name", "ru",
        "--restart=unless-stopped", BASE, "sleep", "600")
    try:
        assert wait_for(lambda: not inspect(pyc, "rf")["State"]["Restarting"]
                        and inspect(pyc, "rf")["RestartCount"] == 3
                        and not inspect(pyc, "rf")["State"]["Running"], 20, 0.3)
        doc = inspect(pyc, "rf")
        assert doc["State"]["ExitCode"] == 1 and doc["RestartCount"] == 3
        assert logs(pyc, "rf").splitlines().count("run") == 4
        assert status(pyc, "rf").startswith("Exited (1)")

        assert wait_for(lambda: inspect(pyc, "ra")["RestartCount"] >= 2, 20, 0.3)
        assert logs(pyc, "ra").count("again") >= 2

        pyc("container", "stop", "-t", "1", "ru")
        time.sleep(1.5)
        doc = inspect(pyc, "ru")
        assert doc["State"]["Running"] is False and doc["RestartCount"] == 0
        assert doc["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    finally:
        pyc("container", "rm", "-f", "rf", "ra", "ru")


def test_b8_exec(pyc: Pyc) -> None:
    pyc("container", "run", "-d", "--network", "none", "--name", "sl", BASE, "sleep", "600")
    try:
        rows = [line.split(None, 3) for line in
                pyc("container", "exec", "sl", "ps", "-o", "pid,args").stdout.splitlines()]
        assert rows[1][:1] == ["1"] and rows[1][1:] == ["sleep", "600"], rows
        assert any(r[1:] == ["ps", "-o", "pid,args"] for r in rows[2:]), rows
        pid = pyc("container", "exec", "sl", "sh", "-c", "echo $$").stdout.strip()
        assert pid.isdigit() and int(pid) > 1
        pyc("container", "exec", "-d", "sl", "touch", "/tmp/x")
        assert wait_for(lambda: pyc("container", "exec", "sl", "ls", "/tmp/x", code=None
                                    ).stdout == "/tmp/x\n", 5)
        pyc("container", "stop", "-t", "1", "sl")
        refused = pyc.fails("container", "exec", "sl", "true")
        assert "is not running" in refused.stderr, refused.stderr
    finally:
        pyc("container", "rm", "-f", "sl")


def test_b9_init(pyc: Pyc) -> None:
    rows = run(pyc, BASE, "ps", "-o", "pid,args").splitlines()
    assert rows[1].split() == ["1", "ps", "-o", "pid,args"]
    rows = run(pyc, "--init", BASE, "ps", "-o", "pid,args").splitlines()
    first = rows[1].split(None, 1)
    assert first[0] == "1" and not first[1].startswith("ps"), rows
    assert any(r.split(None, 1)[1] == "ps -o pid,args" for r in rows[2:]), rows

    script = "(sleep 1 &); exec sleep 30"
    pyc("container", "run", "-d", "--network", "none", "--name", "z", BASE, "sh", "-c", script)
    pyc("container", "run", "-d", "--network", "none", "--init", "--name", "zi", BASE,
        "sh", "-c", script)
    try:
        time.sleep(2)
        stats = pyc("container", "exec", "z", "ps", "-o", "stat,args").stdout.splitlines()
        assert any(line.split()[0].startswith("Z") for line in stats[1:]), stats
        stats = pyc("container", "exec", "zi", "ps", "-o", "stat,args").stdout.splitlines()
        assert not any(line.split()[0].startswith("Z") for line in stats[1:]), stats
    finally:
        pyc("container", "rm", "-f", "z", "zi")


def test_b11_read_only_tmpfs_ro_bind(pyc: Pyc, tmp_path: Path) -> None:
    denied = pyc("container", "run", "--rm", "--network", "none", "--read-only", BASE,
                 "touch", "/x", code=None)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    out = run(pyc, "--read-only", "--mount", "type=tmpfs,destination=/tmp,tmpfs-size=256m",
              BASE, "sh", "-c", "touch /tmp/x && df -h /tmp")
    assert out.splitlines()[1].split()[1] == "256.0M", out
    data = write_files(tmp_path / "data", {"hello.txt": "hi from host\n"})
    for flag in (["-v", f"{data}:/data:ro"],
                 ["--mount", f"type=bind,source={data},target=/data,readonly"]):
        assert run(pyc, *flag, BASE, "cat", "/data/hello.txt") == "hi from host\n"
        proc = pyc("container", "run", "--rm", "--network", "none", *flag, BASE,
                   "touch", "/data/new", code=None)
        assert proc.returncode != 0 and "Read-only file system" in proc.stderr
    assert not (data / "new").exists()
    fresh = tmp_path / "created-by-v"
    run(pyc, "-v", f"{fresh}:/d", BASE, "true")
    assert fresh.is_dir()
    missing = pyc.fails("container", "run", "--rm", "--mount",
                        f"type=bind,source={tmp_path / 'absent'},target=/d", BASE, "true")
    assert "does not exist" in missing.stderr


def test_b13_logs(pyc: Pyc) -> None:
    loop = ('i=0; while :; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.2; done')
    cid = pyc("container", "run", "-d", "--network", "none", "--name", "lg", BASE,
              "sh", "-c", loop).stdout.strip()
    try:
        assert wait_for(lambda: "out 3" in pyc("container", "logs", "lg").stdout, 10)
        proc = pyc("container", "logs", "lg")
        assert "out 0\n" in proc.stdout and "err 0\n" in proc.stderr
        assert "err 0" not in proc.stdout
        assert wait_for(lambda: "out 8" in pyc("container", "logs", "lg").stdout, 10)
        recent = pyc("container", "logs", "--since", "1s", "lg").stdout.splitlines()
        assert recent and "out 0" not in recent and len(recent) <= 7, recent
        tail = pyc("container", "logs", "--tail", "2", "lg")
        assert len(tail.stdout.splitlines()) + len(tail.stderr.splitlines()) == 2
        log_file = pyc.root / "containers" / cid / f"{cid}-json.log"
        first = json.loads(log_file.read_text().splitlines()[0])
        assert set(first) == {"log", "stream", "time"}
        assert first["log"] in ("out 0\n", "err 0\n") and first["time"].endswith("Z")
        pyc("container", "stop", "-t", "1", "lg")
        assert "out 0" in pyc("container", "logs", "lg").stdout
    finally:
        pyc("container", "rm", "-f", "lg")
    pyc.fails("container", "logs", "lg")


def test_b14_top_stats_inspect(pyc: Pyc) -> None:
    cid = pyc("container", "run", "-d", "--network", "none", "--name", "tp", "-e", "X=1",
              BASE, "sh", "-c", "while :; do sleep 5; done").stdout.strip()
    try:
        time.sleep(0.3)
        top = pyc("container", "top", "tp").stdout.splitlines()
        assert top[0].split()[:2] == ["UID", "PID"]
        pids = [int(line.split()[1]) for line in top[1:]]
        assert len(pids) >= 2 and any(line.endswith("sleep 5") for line in top), top
        stats = pyc("container", "stats", "--no-stream", "tp").stdout.splitlines()
        assert re.split(r"\s{2,}", stats[0].strip()) == [
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
            "BLOCK I/O", "PIDS"]
        assert stats[1].startswith(cid[:12]) and int(stats[1].split()[-1]) >= 2
        doc = inspect(pyc, "tp")
        assert doc["Id"] == cid and doc["Created"].endswith("Z")
        assert doc["Config"]["Hostname"] == cid[:12] and doc["Config"]["Image"] == BASE
        assert doc["Config"]["Cmd"] == ["sh", "-c", "while :; do sleep 5; done"]
        assert "X=1" in doc["Config"]["Env"]
        host_pid = doc["State"]["Pid"]
        assert host_pid in pids and Path(f"/proc/{host_pid}").exists()
    finally:
        pyc("container", "rm", "-f", "tp")


def test_b16_cleanup(pyc: Pyc) -> None:
    running = pyc("container", "run", "-d", "--network", "none", BASE, "sleep", "600"
                  ).stdout.strip()
    failed = pyc("container", "run", "--network", "none", BASE, "false", code=1)
    ok = pyc("container", "run", "--network", "none", BASE, "true")
    assert failed.returncode == 1 and ok.returncode == 0
    try:
        refused = pyc.fails("container", "rm", running)
        assert "You cannot remove a running container" in refused.stderr
        assert "force remove" in refused.stderr
        exited1 = pyc("container", "ls", "-a", "-q", "--filter", "exited=1").stdout.split()
        assert len(exited1) == 1
        pyc("container", "rm", *exited1)
        left = pyc("container", "ls", "-a", "-q").stdout.split()
        assert len(left) == 2 and running[:12] in left
        pyc("container", "rm", "-f", running)
        out = pyc("system", "prune", "-f").stdout
        assert "Deleted Containers:" in out and "Total reclaimed space:" in out
        assert pyc("container", "ls", "-a", "-q").stdout == ""
    finally:
        pyc("container", "rm", "-f", running, code=None)


def test_b7_pause_unpause(pyc: Pyc) -> None:
    pyc("container", "run", "-d", "--network", "none", "--name", "counter", BASE,
        "sh", "-c", "while :; do date +%s; sleep 0.5; done")
    try:
        assert wait_for(lambda: len(logs(pyc, "counter").split()) >= 2, 5)
        pyc("container", "pause", "counter")
        assert status(pyc, "counter").endswith("(Paused)")
        frozen = logs(pyc, "counter")
        refused = pyc.fails("container", "exec", "counter", "true")
        assert "is paused" in refused.stderr
        time.sleep(1.5)
        assert logs(pyc, "counter") == frozen
        pyc("container", "unpause", "counter")
        assert wait_for(lambda: len(logs(pyc, "counter")) > len(frozen), 5)
        assert re.match(r"Up \d+ seconds?$", status(pyc, "counter")), status(pyc, "counter")
    finally:
        pyc("container", "rm", "-f", "counter")


def cgroup_dir(pid: int, controller: str) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return Path("/sys/fs/cgroup", controller, path.lstrip("/"))
    raise AssertionError(f"no {controller} cgroup for pid {pid}")


def test_b10_resource_limits(pyc: Pyc) -> None:
    hog = 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo done'
    proc = pyc("container", "run", "--network", "none", "--name", "hog", "--memory", "16m",
               BASE, "sh", "-c", hog, code=137)
    assert "done" not in proc.stdout
    assert inspect(pyc, "hog")["State"]["OOMKilled"] is True
    pyc("container", "rm", "hog")

    too_many = pyc.fails("container", "run", "--rm", "--network", "none", "--cpus=999", BASE,
                         "true")
    assert re.search(r"Range of CPUs is from 0\.01 to \d+\.00, as there are only \d+ CPUs "
                     r"available", too_many.stderr), too_many.stderr
    assert pyc("container", "ls", "-a", "-q").stdout == ""
    bad_cpu = pyc.fails("container", "run", "--rm", "--network", "none", "--cpuset-cpus=64",
                        BASE, "true")
    assert "64" in bad_cpu.stderr
    assert run(pyc, "--ulimit", "nofile=150:300", BASE, "sh", "-c",
               "ulimit -n; ulimit -Hn").split() == ["150", "300"]

    pyc("container", "run", "-d", "--network", "none", "--name", "limited", "--cpus=.25",
        "--cpu-shares", "512", "--cpuset-cpus=0", "-m", "16m", BASE, "sleep", "600")
    try:
        pid = inspect(pyc, "limited")["State"]["Pid"]
        cpu = cgroup_dir(pid, "cpu")
        # this host is hybrid: the v1 cpu controller holds the limits (v2's cpu.max)
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (cpu / "cpu.shares").read_text().strip() == "512"
        assert (cgroup_dir(pid, "cpuset") / "cpuset.cpus").read_text().strip() == "0"
        stats = pyc("container", "stats", "--no-stream", "limited").stdout.splitlines()
        assert re.search(r" / 16MiB ", stats[1]), stats
    finally:
        pyc("container", "rm", "-f", "limited")


HEALTHCHECK_SCRIPT = ("#!/bin/sh\ntest -f /tmp/ready && "
                      "wget -q -O /dev/null http://127.0.0.1:27017/ready || exit 1\n")
MONGO_DOCKERFILE = f"""\
FROM {BASE}
COPY docker-healthcheck /usr/local/bin/
HEALTHCHECK CMD ["docker-healthcheck"]
CMD ["sh", "-c", "sleep 3; touch /tmp/ready; exec httpd -f -p 27017 -h /tmp"]
"""


def test_b12_health_checks(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "mongodb", {"Dockerfile": MONGO_DOCKERFILE,
                                             "docker-healthcheck": HEALTHCHECK_SCRIPT})
    (ctx / "docker-healthcheck").chmod(0o755)
    pyc("image", "build", "--progress", "plain", "-t", "mongo-with-check:4.4", ".", cwd=ctx)
    pyc("container", "run", "-d", "--network", "none", "--name", "mongo-hc",
        "--health-interval", "1s", "--health-retries", "2", "mongo-with-check:4.4")
    pyc("container", "run", "-d", "--network", "none", "--name", "mongo-nohc",
        "--no-healthcheck", "mongo-with-check:4.4")
    try:
        assert status(pyc, "mongo-hc").endswith("(health: starting)")
        health = ("container", "inspect", "--format", "{{.State.Health.Status}}", "mongo-hc")
        assert wait_for(lambda: pyc(*health).stdout == "healthy\n", 15, 0.3)
        assert status(pyc, "mongo-hc").endswith("(healthy)")
        doc = json.loads(pyc("container", "inspect", "--format", "{{json .State.Health}}",
                             "mongo-hc").stdout)
        assert doc["Status"] == "healthy" and doc["FailingStreak"] == 0
        assert doc["Log"] and {"Start", "End", "ExitCode", "Output"} <= set(doc["Log"][-1])
        assert doc["Log"][-1]["ExitCode"] == 0

        pyc("container", "exec", "mongo-hc", "rm", "/tmp/ready")
        assert wait_for(lambda: pyc(*health).stdout == "unhealthy\n", 15, 0.3)
        doc = inspect(pyc, "mongo-hc")
        assert doc["State"]["Health"]["FailingStreak"] >= 2
        assert doc["State"]["Running"] is True and doc["RestartCount"] == 0
        assert status(pyc, "mongo-hc").endswith("(unhealthy)")
        assert inspect(pyc, "mongo-nohc")["State"].get("Health") is None
        assert "health" not in status(pyc, "mongo-nohc")
    finally:
        pyc("container", "rm", "-f", "mongo-hc", "mongo-nohc")


def test_b15_diff_export_cp(pyc: Pyc, tmp_path: Path) -> None:
    pyc("container", "run", "-d", "--network", "none", "--name", "fs", BASE, "sh", "-c",
        "echo 1 > /run/app.pid; mkdir -p /var/cache/app/tmp; echo x >> /etc/motd; "
        "sleep 600")
    try:
        assert wait_for(lambda: pyc("container", "exec", "fs", "test", "-d",
                                    "/var/cache/app/tmp", code=None).returncode == 0, 5)
        pyc("container", "exec", "fs", "rm", "/bin/true")
        changes = set(pyc("container", "diff", "fs").stdout.splitlines())
        assert {"C /run", "A /run/app.pid", "A /var/cache/app/tmp", "C /etc",
                "D /bin/true"} <= changes, changes
        assert {"C /var/cache", "A /var/cache"} & changes
        assert {"A /etc/motd", "C /etc/motd"} & changes
        archive = tmp_path / "fs.tar"
        pyc("container", "export", "fs", "-o", str(archive))
        import tarfile

        with tarfile.open(archive) as tar:
            names = {n.removeprefix("./") for n in tar.getnames()}
        assert "run/app.pid" in names and "bin/true" not in names
        pyc("container", "cp", "fs:/run/app.pid", str(tmp_path))
        assert (tmp_path / "app.pid").read_text() == "1\n"
        (tmp_path / "in.txt").write_text("round trip\n")
        pyc("container", "cp", str(tmp_path / "in.txt"), "fs:/tmp/")
        assert pyc("container", "exec", "fs", "cat", "/tmp/in.txt").stdout == "round trip\n"
    finally:
        pyc("container", "rm", "-f", "fs")


def test_b17_security_basics(pyc: Pyc) -> None:
    assert run(pyc, BASE, "id", "-u") == "0\n"
    assert run(pyc, "-u", "500", BASE, "id", "-u") == "500\n"
    raw = pyc("container", "run", "--rm", "--network", "none", "--cap-drop=NET_RAW", BASE,
              "ping", "-c1", "127.0.0.1", code=None)
    assert raw.returncode != 0 and "permission denied" in raw.stderr.lower()
    mac = ("ip", "link", "set", "eth0", "address", "02:42:ac:11:00:99")
    plain = pyc("container", "run", "--rm", BASE, *mac, code=None)
    assert plain.returncode != 0 and "Operation not permitted" in plain.stderr
    admin = pyc("container", "run", "--rm", "--cap-add=NET_ADMIN", BASE, "sh", "-c",
                " ".join(mac) + " && ip link show eth0 && mkdir -p /mnt && "
                "mount -t tmpfs none /mnt", code=None)
    assert "link/ether 02:42:ac:11:00:99" in admin.stdout
    assert admin.returncode != 0 and "permission denied" in admin.stderr.lower()
    assert run(pyc, "--privileged", BASE, "sh", "-c",
               "mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted") == "mounted\n"
    host_name = Path("/etc/hostname").read_text()
    assert run(pyc, "-v", "/etc:/host_etc:ro", BASE, "cat", "/host_etc/hostname") == host_name


def test_b14_events_and_exec_events(pyc: Pyc) -> None:
    since = f"{time.time():.3f}"
    pyc("container", "run", "--rm", "--network", "none", "--name", "sleeper", BASE,
        "sleep", "1")
    pyc("container", "run", "-d", "--network", "none", "--name", "ev", BASE, "sleep", "600")
    try:
        pyc("container", "exec", "ev", "true")
        until = f"{time.time():.3f}"
        lines = pyc("system", "events", "--since", since, "--until", until,
                    "--filter", "container=sleeper").stdout.splitlines()
        actions = [line.split()[2] for line in lines]
        assert actions == ["create", "start", "die", "destroy"], lines
        assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container ", line)
                   for line in lines), lines
        assert "exitCode=0" in lines[2] and "name=sleeper" in lines[2]
        exec_events = pyc("system", "events", "--since", since, "--until", until,
                          "--filter", "container=ev", "--filter", "event=exec_die").stdout
        assert len(exec_events.splitlines()) == 1 and "exitCode=0" in exec_events
        bounded = pyc("system", "events", "--since", since, "--until", since).stdout
        assert bounded == ""
        bad = pyc.fails("system", "events", "--since", "yesterday-ish")
        assert "invalid value" in bad.stderr
    finally:
        pyc("container", "rm", "-f", "ev")


def test_b13_log_since_rotation_and_driver_none(pyc: Pyc) -> None:
    chatty = "i=0; while :; do echo out $i padding padding padding; i=$((i+1)); sleep 0.01; done"
    cid = pyc("container", "run", "-d", "--network", "none", "--name", "rot", "--log-opt",
              "max-size=1k", "--log-opt", "max-file=2", BASE, "sh", "-c", chatty
              ).stdout.strip()
    try:
        bundle = pyc.root / "containers" / cid
        assert wait_for(lambda: (bundle / f"{cid}-json.log.1").exists(), 10)
        time.sleep(0.5)
        files = sorted(p.name for p in bundle.glob(f"{cid}-json.log*"))
        assert files == [f"{cid}-json.log", f"{cid}-json.log.1"], files
        assert all(p.stat().st_size <= 1024 for p in bundle.glob(f"{cid}-json.log*"))
        everything = pyc("container", "logs", "rot").stdout.splitlines()
        assert everything and all(line.startswith("out ") for line in everything)
    finally:
        pyc("container", "rm", "-f", "rot")
    pyc("container", "run", "-d", "--network", "none", "--name", "nolog", "--log-driver",
        "none", BASE, "echo", "hi")
    try:
        refused = pyc.fails("container", "logs", "nolog")
        assert "does not support reading" in refused.stderr
    finally:
        pyc("container", "rm", "-f", "nolog")


def test_b18_namespaces_and_debugging_sidecars(pyc: Pyc, tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.e2e.test_book_images import MULTISTAGE

    ctx = write_files(tmp_path / "outyet", {"Dockerfile": MULTISTAGE})
    pyc("image", "build", "--progress", "plain", "-t", "outyet-small", ".", cwd=ctx)
    port = free_port()
    pyc("container", "run", "-d", "--name", "outyet-small", "-p", f"{port}:8080",
        "outyet-small")
    try:
        assert "Hello World" in http_get(port)
        refused = pyc.fails("container", "exec", "outyet-small", "/bin/sh")
        assert "no such file or directory" in refused.stderr.lower()
        page = pyc("container", "run", "--rm", "--net=container:outyet-small", BASE,
                   "wget", "-qO-", "http://localhost:8080/").stdout
        assert "Hello World from a minimal container." in page
        host_ps = pyc("container", "run", "--rm", "--network", "none", "--pid=host", BASE,
                      "ps", "-o", "pid").stdout.split()
        assert str(os.getpid()) in host_ps
        top = pyc("container", "top", "outyet-small").stdout.splitlines()
        row = [line.split() for line in top[1:] if line.endswith("/httpd -f -p 8080 -h /www")]
        pid = int(row[0][1])
        assert pid != 1 and pid == json.loads(pyc("container", "inspect", "outyet-small"
                                                  ).stdout)[0]["State"]["Pid"]
        inside = subprocess.run(["nsenter", "--target", str(pid), "--uts", "hostname"],
                                capture_output=True, text=True, check=True).stdout
        assert inside == pyc("container", "inspect", "-f", "{{.Config.Hostname}}",
                             "outyet-small").stdout
    finally:
        pyc("container", "rm", "-f", "outyet-small")
