"""The book's image and builder scenarios A1-A9 (seed-inventory section 8.1), driven
through the real `pycompose` command on `busybox:local`."""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path

import pytest

from tests.e2e.book_fixtures import BASE, Pyc, free_port, http_get, pyc, wait_for, write_files

pytestmark = [pytest.mark.root, pytest.mark.e2e]
__all__ = ["pyc"]

NODE_HELLO = """\
FROM busybox:local
ARG email="anna@example.com"
LABEL "maintainer"=$email
LABEL "rating"="Five Stars" "class"="First Class"
USER root
ENV AP /data/app
ENV SCPATH /etc/supervisor/conf.d
RUN mkdir -p /var/log/supervisor
COPY ./supervisord/conf.d/* $SCPATH/
COPY *.htm* $AP/
WORKDIR $AP
CMD ["sh", "-c", "echo \\"Hello ${WHO:-World}. Wish you were here.\\" > index.html && exec httpd -f -p 8080 -h ."]
"""


def inspect(pyc: Pyc, ref: str, kind: str = "image") -> dict:  # type: ignore[type-arg]
    doc = json.loads(pyc(kind, "inspect", ref).stdout)
    assert isinstance(doc, list) and len(doc) == 1
    return doc[0]  # type: ignore[no-any-return]


def image_id(pyc: Pyc, ref: str) -> str:
    return pyc("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()


def stop_rm(pyc: Pyc, ref: str) -> None:
    pyc("container", "rm", "-f", ref)


def test_a1_build_label_build_arg_run_env(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "hello", {
        "Dockerfile": NODE_HELLO,
        ".dockerignore": ".git\n",
        ".git/secret": "do not ship\n",
        "supervisord/conf.d/supervisord.conf": "[supervisord]\n",
        "index.htm": "<p>old index</p>\n",
        "about.html": "<p>about</p>\n",
    })
    out = pyc("image", "build", "--progress", "plain", "-t", "example/docker-node-hello",
              ".", cwd=ctx)
    text = out.stdout + out.stderr
    assert re.search(r"\[\d+/\d+\]", text), text
    assert "naming to docker.io/example/docker-node-hello" in text, text

    doc = inspect(pyc, "example/docker-node-hello")
    labels = doc["Config"]["Labels"]
    assert labels["maintainer"] == "anna@example.com"
    assert labels["rating"] == "Five Stars" and labels["class"] == "First Class"
    assert "AP=/data/app" in doc["Config"]["Env"]
    assert "SCPATH=/etc/supervisor/conf.d" in doc["Config"]["Env"]
    assert doc["Config"]["WorkingDir"] == "/data/app"

    pyc("image", "build", "--progress", "plain", "--build-arg", "email=me@example.com",
        "-t", "example/docker-node-hello", ".", cwd=ctx)
    labels = inspect(pyc, "example/docker-node-hello")["Config"]["Labels"]
    assert labels["maintainer"] == "me@example.com"

    listing = pyc("container", "run", "--rm", "--network", "none",
                  "example/docker-node-hello", "ls", "-a", "/data/app").stdout.split()
    assert sorted(listing) == [".", "..", "about.html", "index.htm"]
    assert pyc("container", "run", "--rm", "--network", "none", "example/docker-node-hello",
               "ls", "/etc/supervisor/conf.d").stdout.split() == ["supervisord.conf"]

    port = free_port()
    cid = pyc("container", "run", "--rm", "-d", "-p", f"{port}:8080",
              "example/docker-node-hello").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    try:
        assert http_get(port) == "Hello World. Wish you were here.\n"
    finally:
        pyc("container", "stop", "-t", "1", cid)
    assert wait_for(lambda: pyc("container", "ls", "-a", "-q").stdout.strip() == "")

    port = free_port()
    cid = pyc("container", "run", "-d", "--publish",
              f"mode=ingress,published={port},target=8080", "-e", "WHO=Sean and Karl",
              "example/docker-node-hello").stdout.strip()
    try:
        assert http_get(port) == "Hello Sean and Karl. Wish you were here.\n"
    finally:
        stop_rm(pyc, cid)


def build(pyc: Pyc, ctx: Path, *args: str, code: int | None = 0
          ) -> tuple[str, float, str]:
    """(combined output, seconds taken, image id or "") of `image build --progress plain`."""
    tag = f"book-{ctx.name}"
    started = time.monotonic()
    proc = pyc("image", "build", "--progress", "plain", "-t", tag, *args, ".", cwd=ctx,
               code=code)
    took = time.monotonic() - started
    ident = image_id(pyc, tag) if proc.returncode == 0 else ""
    return proc.stdout + proc.stderr, took, ident


def cached_steps(text: str) -> set[int]:
    """Steps reported CACHED, as plain progress does (`#4 [2/5] RUN ...` / `#4 CACHED`)."""
    step_of: dict[str, int] = {}
    cached = set()
    for line in text.splitlines():
        m = re.match(r"(#\d+) \[(?:[\w.-]+ )?(\d+)/\d+\]", line)
        if m:
            step_of[m.group(1)] = int(m.group(2))
        m = re.match(r"(#\d+) CACHED$", line.strip())
        if m and m.group(1) in step_of:
            cached.add(step_of[m.group(1)])
    return cached


def test_a2_layer_cache(pyc: Pyc, tmp_path: Path) -> None:
    # the busybox rootfs has no /opt, so the slow step makes it
    slow = "RUN sleep 3 && mkdir -p /opt && echo installed > /opt/pkg\n"
    rest = "RUN mkdir -p /var/www && mkdir -p /var/www/html\nADD index.html /var/www/html\n"
    tail = 'CMD ["httpd","-f","-h","/var/www/html"]\n'
    ctx = write_files(tmp_path / "cache", {
        "Dockerfile": f"FROM {BASE}\n{slow}{rest}{tail}", "index.html": "v1\n"})

    text, took, first = build(pyc, ctx, "--no-cache")
    assert took >= 3 and "CACHED" not in text, text

    text, took, second = build(pyc, ctx)
    assert {2, 3, 4} <= cached_steps(text), text
    assert took < 3 and second == first, (took, text)

    (ctx / "index.html").write_text("v2\n")
    text, took, third = build(pyc, ctx)
    assert {2, 3} <= cached_steps(text) and 4 not in cached_steps(text), text
    assert third != first

    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nADD index.html /var/www/html/\n{slow}"
                                    f"RUN mkdir -p /var/www/html\n{tail}")
    (ctx / "index.html").write_text("v3\n")
    text, took, _ = build(pyc, ctx)
    assert took >= 3 and 3 not in cached_steps(text), text


def history_rows(pyc: Pyc, ref: str, *flags: str) -> list[str]:
    lines = pyc("image", "history", *flags, ref).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    return lines[1:]


def size_bytes(row: str) -> float:
    m = re.search(r"([\d.]+)\s*(B|kB|KB|MB|GB)\s*\S*\s*$", row.rstrip())
    assert m, row
    scale = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]
    return float(m.group(1)) * scale


def test_a3_layers_are_additive_history(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "additive", {"Dockerfile": (
        f"FROM {BASE}\nRUN dd if=/dev/zero of=/big bs=1M count=5\nRUN rm /big\n"
        "ENV DONE=1\n")})
    build(pyc, ctx)
    rows = history_rows(pyc, "book-additive")
    assert "ENV DONE=1" in rows[0] and size_bytes(rows[0]) == 0
    assert "rm /big" in rows[1] and size_bytes(rows[1]) < 10_000
    assert "dd if=/dev/zero" in rows[2] and 5.0e6 <= size_bytes(rows[2]) < 5.5e6
    base_size = inspect(pyc, BASE)["Size"]
    assert inspect(pyc, "book-additive")["Size"] >= base_size + 5 * 1024 * 1024

    full = history_rows(pyc, "book-additive", "--no-trunc")
    assert any("/bin/sh -c dd if=/dev/zero of=/big bs=1M count=5" in r for r in full), full

    one = write_files(tmp_path / "onestep", {"Dockerfile": (
        f"FROM {BASE}\nRUN dd if=/dev/zero of=/big bs=1M count=5 && rm /big\n")})
    build(pyc, one)
    rows = history_rows(pyc, "book-onestep")
    assert "dd if=/dev/zero" in rows[0] and size_bytes(rows[0]) < 10_000
    assert inspect(pyc, "book-onestep")["Size"] < base_size + 10_000


MULTISTAGE = f"""\
FROM {BASE} AS builder
RUN mkdir /out && echo '<h1>Hello World from a minimal container.</h1>' > /out/index.html
FROM scratch
# busybox picks the applet from argv[0], so the single binary is named httpd
COPY --from=builder /bin/busybox /httpd
COPY --from=builder /out/index.html /www/index.html
EXPOSE 8080
CMD ["/httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def test_a4_multi_stage_and_scratch(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "multistage", {"Dockerfile": MULTISTAGE})
    text, _, _ = build(pyc, ctx)
    assert re.search(r"\[builder 1/2\]", text), text
    assert re.search(r"\[stage-1 [12]/\d\]", text), text
    assert "8080/tcp" in inspect(pyc, "book-multistage")["Config"]["ExposedPorts"]

    port = free_port()
    cid = pyc("container", "run", "-d", "-p", f"{port}:8080", "book-multistage").stdout.strip()
    try:
        assert http_get(port) == "<h1>Hello World from a minimal container.</h1>\n"
        archive = tmp_path / "web-app.tar"
        pyc("container", "export", cid, "-o", str(archive))
        with tarfile.open(archive) as tar:
            names = {n.rstrip("/").removeprefix("./") for n in tar.getnames()} - {"", "."}
        engine_made = {".dockerenv", "dev", "etc", "etc/hostname", "etc/hosts",
                       "etc/resolv.conf", "proc", "sys"}
        assert {"httpd", "www", "www/index.html"} <= names, names
        extra = {n for n in names - {"httpd", "www", "www/index.html"}
                 if n not in engine_made and not n.startswith(("dev/", "proc/", "sys/"))}
        assert not extra, extra
        proc = pyc.fails("container", "exec", cid, "/bin/sh")
        assert "no such file or directory" in proc.stderr.lower(), proc.stderr
    finally:
        stop_rm(pyc, cid)


def test_a5_failing_build_and_target(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "failing", {
        "Dockerfile": (f"FROM {BASE} AS deploy\nRUN mkdir -p /app\nWORKDIR /app\n"
                       "RUN echo ok > ready\n\nFROM deploy\nRUN npm installer\n"),
    })
    before = pyc("image", "ls", "-q").stdout
    proc = pyc.fails("image", "build", "--progress", "plain", "-t", "example/failing", ".",
                     cwd=ctx)
    text = proc.stdout + proc.stderr
    assert re.search(r"ERROR:? \[stage-1 2/2\] RUN npm installer", text), text
    assert "/bin/sh -c npm installer" in text, text
    assert "npm: not found" in text, text
    assert pyc("image", "ls", "-q", "example/failing").stdout == ""
    assert pyc("image", "ls", "-q").stdout == before

    pyc("image", "build", "--progress", "plain", "--target", "deploy", "-t",
        "example/failing", ".", cwd=ctx)
    listing = pyc("container", "run", "--rm", "--network", "none", "example/failing",
                  "ls").stdout.split()
    assert listing == ["ready"]


def test_a6_entrypoint_cmd_user(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "wordchain", {"Dockerfile": (
        f'FROM {BASE}\nENTRYPOINT ["echo","wordchain"]\nCMD ["listen"]\nUSER 500\n')})
    build(pyc, ctx)
    img = "book-wordchain"

    def run(*args: str, code: int = 0) -> str:
        return pyc("container", "run", "--rm", "--network", "none", *args, code=code).stdout

    assert run(img) == "wordchain listen\n"
    assert run(img, "random", "-l", "100") == "wordchain random -l 100\n"
    assert run("--entrypoint", "id", img, "-u") == "500\n"
    assert run("-u", "0", "--entrypoint", "whoami", img) == "root\n"

    user = write_files(tmp_path / "myuser", {"Dockerfile": (
        # busybox-static has no adduser applet: the passwd line it would write
        f"FROM {BASE}\nRUN echo 'myuser:x:500:500::/home/myuser:/bin/sh' >> /etc/passwd"
        " && mkdir -p /home/myuser && echo 'root:*:1::::::' > /etc/shadow"
        " && chmod 0640 /etc/shadow\nUSER 500:500\nCMD [\"whoami\"]\n")})
    build(pyc, user)
    assert run("book-myuser") == "myuser\n"
    denied = pyc("container", "run", "--rm", "--network", "none", "-u", "500",
                 "book-myuser", "cat", "/etc/shadow", code=None)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied


def test_a7_file_context_dockerignore(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "alt", {
        "ctx/.dockerignore": ".git\n*.log\n!keep.log\n",
        "ctx/.git/HEAD": "ref: refs/heads/main\n",
        "ctx/app.txt": "app\n",
        "ctx/debug.log": "noise\n",
        "ctx/keep.log": "keep\n",
        "docker/Dockerfile.alt": f"FROM {BASE}\nCOPY . /ctx\n",
    })
    pyc("image", "build", "--progress", "plain", "--no-cache", "-f",
        "docker/Dockerfile.alt", "-t", "alt", "ctx/", cwd=ctx)
    listing = pyc("container", "run", "--rm", "--network", "none", "alt", "ls", "-a",
                  "/ctx").stdout.split()
    assert sorted(listing) == [".", "..", ".dockerignore", "app.txt", "keep.log"]


def test_a8_cache_mount(pyc: Pyc, tmp_path: Path) -> None:
    ctx = write_files(tmp_path / "cachemount", {
        "Dockerfile": ("# syntax=docker/dockerfile:1\n"
                       f"FROM {BASE}\nCOPY input.txt /input.txt\n"
                       "RUN --mount=type=cache,target=/root/.cache sh -c "
                       "'ls /root/.cache > /seen; date >> /root/.cache/stamp'\n"),
        "input.txt": "one\n",
    })
    build(pyc, ctx)
    run = ("container", "run", "--rm", "--network", "none", "book-cachemount", "sh", "-c")
    assert pyc(*run, "cat /seen; test -e /root/.cache/stamp && echo leaked || true"
               ).stdout.split() == []
    (ctx / "input.txt").write_text("two\n")
    build(pyc, ctx)
    seen = pyc(*run, "cat /seen; test -e /root/.cache/stamp && echo leaked || true").stdout
    assert seen.split() == ["stamp"], seen


def test_a9_tag_ls_rm_prune_save_load(pyc: Pyc, tmp_path: Path) -> None:
    pyc("image", "tag", BASE, "example/bb:1.0")
    names = pyc("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert {"busybox:local", "example/bb:1.0"} <= set(names)

    ctx = write_files(tmp_path / "inuse", {"Dockerfile": f"FROM {BASE}\nENV IN_USE=1\n"})
    _, _, used = build(pyc, ctx)
    holder = pyc("container", "create", "--network", "none", "book-inuse", "true"
                 ).stdout.strip()
    proc = pyc.fails("image", "rm", "book-inuse")
    assert "conflict" in proc.stderr.lower() and holder[:12] in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    pyc("container", "rm", holder)
    removed = pyc("image", "rm", "book-inuse").stdout
    assert "Untagged: book-inuse:latest" in removed and f"Deleted: {used}" in removed

    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nENV GENERATION=1\n")
    _, _, old = build(pyc, ctx)
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nENV GENERATION=2\n")
    build(pyc, ctx)
    dangling = pyc("image", "ls", "-q", "-f", "dangling=true").stdout.split()
    assert old[7:19] in dangling

    net = pyc("network", "create", "book-unused").stdout.strip()
    stopped = pyc("container", "create", "--network", "none", BASE, "true").stdout.strip()
    out = pyc("system", "prune", "-f").stdout
    assert stopped in out and "book-unused" in out and old in out, out
    assert re.search(r"Total reclaimed space: [\d.]+\s?[kMG]?B", out), out
    assert pyc("container", "ls", "-a", "-q").stdout == ""
    assert pyc("image", "ls", "-q", "-f", "dangling=true").stdout == ""
    assert net[:12] not in pyc("network", "ls", "-q").stdout

    archive = tmp_path / "x.tar"
    tagged = image_id(pyc, "example/bb:1.0")
    pyc("image", "save", "-o", str(archive), "example/bb:1.0")
    pyc("image", "rm", "example/bb:1.0")
    assert pyc("image", "load", "-i", str(archive)).stdout == "Loaded image: example/bb:1.0\n"
    assert image_id(pyc, "example/bb:1.0") == tagged


def test_a10_private_registry(pyc: Pyc, tmp_path: Path) -> None:
    from tests.support import registry as reg

    htpasswd = reg.htpasswd_file(tmp_path / "htpasswd", "myuser", "myuser-pw!")
    with reg.run_registry(tmp_path / "registry", reg.htpasswd_auth(htpasswd)) as r:
        ctx = write_files(tmp_path / "my-registry", {
            "Dockerfile": f"FROM {BASE}\nRUN echo pushed > /pushed.txt\n"})
        pyc("image", "build", "--progress", "plain", "-t", "my-registry", ".", cwd=ctx)
        login = pyc("login", r.host, "-u", "myuser", "--password-stdin", stdin="myuser-pw!\n")
        assert "Login Succeeded" in login.stdout
        config = Path(pyc.env["HOME"]) / ".docker" / "config.json"
        assert config.stat().st_mode & 0o777 == 0o600
        assert r.host in json.loads(config.read_text())["auths"]

        remote = f"{r.host}/my-registry"
        pyc("image", "tag", "my-registry", remote)
        local_id = image_id(pyc, remote)
        first = pyc("image", "push", remote).stdout
        assert re.search(r"^[0-9a-f]{12}: Pushed$", first, re.M), first
        assert re.search(r"^latest: digest: sha256:[0-9a-f]{64} size: \d+$", first, re.M)
        again = pyc("image", "push", remote).stdout
        assert "Layer already exists" in again and "Pushed" not in again, again

        pyc("image", "rm", remote)
        pyc("image", "rm", "my-registry")
        pyc("image", "pull", remote)
        assert image_id(pyc, remote) == local_id

        assert "Removing login credentials for " + r.host in pyc("logout", r.host).stdout
        assert r.host not in json.loads(config.read_text()).get("auths", {})
        pyc("image", "rm", remote)
