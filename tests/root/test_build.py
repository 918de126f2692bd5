"""The Dockerfile builder end to end: each instruction's effect checked by running the
built image, the layer cache, multi-stage builds, failures and context escapes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.api import BuildError, BuildSpec, ContainerSpec, Engine, Image, Progress, connect

pytestmark = pytest.mark.root

BASE = "busybox:local"


class Builder:
    def __init__(self, engine: Engine, ctx: Path) -> None:
        self.engine = engine
        self.ctx = ctx
        self.containers: list[str] = []
        self.progress: list[Progress] = []

    def write(self, files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            path = self.ctx / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())

    def build(self, dockerfile: str, **spec: Any) -> Image:
        self.write({"Dockerfile": dockerfile})
        self.progress = []
        return self.engine.image_build(BuildSpec(context=str(self.ctx), **spec),
                                       self.progress.append)

    def status(self, fragment: str) -> list[str]:
        """The statuses reported for the steps whose label contains `fragment`."""
        return [p.status for p in self.progress if fragment in p.id]

    def run(self, image: str, *cmd: str, **spec: Any) -> tuple[int, str]:
        c = self.engine.container_create(ContainerSpec(
            image=image, command=cmd or None, network_mode="none", **spec))
        self.containers.append(c.id)
        self.engine.container_start(c.id)
        code = self.engine.container_wait(c.id, timeout=30)
        return code, "".join(line.text for line in self.engine.container_logs(c.id))


@pytest.fixture
def builder(engine_root: Path, busybox_tar: Path, tmp_path: Path) -> Iterator[Builder]:
    engine = connect(str(engine_root))
    engine.image_import(str(busybox_tar), BASE, changes=('CMD ["sh"]',))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    b = Builder(engine, ctx)
    try:
        yield b
    finally:
        for cid in b.containers:
            try:
                engine.container_remove(cid, force=True)
            except Exception:
                pass
        leftovers = list((engine_root / "containers").glob("*")) if (
            engine_root / "containers").exists() else []
        assert not leftovers, f"build step bundles left behind: {leftovers}"


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o600
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_every_instruction_has_its_effect(builder: Builder) -> None:
    builder.write({"app/main.sh": "echo main\n", "app/lib/util.txt": "util\n",
                   "bundle.tgz": _tar_bytes({"inner/a.txt": b"from tar\n"}),
                   "ignored.log": "no\n", ".dockerignore": "*.log\n"})
    image = builder.build(f"""# syntax=docker/dockerfile:1
ARG BASE={BASE}
FROM $BASE
ARG GREETING=hello
ARG UNUSED
ENV APP_HOME=/srv/app MSG="$GREETING world"
LABEL maintainer="me@example.com" "rating"="Five Stars"
WORKDIR $APP_HOME
COPY --chown=app:app --chmod=750 app/ ./
COPY app/lib/util.txt /opt/
ADD bundle.tgz /unpacked/
COPY <<EOF /etc/motd
motd for $GREETING
EOF
RUN echo "$MSG at $(pwd) as $(id -u)" > /built.txt && rm /etc/group
RUN ["sh", "-c", "echo exec-form > /exec.txt"]
RUN <<EOF
echo heredoc > /heredoc.txt
EOF
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form >> /built.txt
EXPOSE 8080 53/udp
VOLUME ["/data"]
USER app
RUN id -un > /tmp/who.txt
HEALTHCHECK --interval=5s --retries=2 CMD test -f /built.txt
STOPSIGNAL SIGUSR1
ONBUILD RUN echo triggered > /tmp/onbuild.txt
ENTRYPOINT ["sh", "-c"]
CMD ["cat /built.txt"]
""", args=(("GREETING", "hi"),), tags=("every:1",), labels=(("extra", "yes"),))
    cfg = image.config
    assert "MSG=hi world" in cfg["Env"] and "APP_HOME=/srv/app" in cfg["Env"]
    assert cfg["Labels"] == {"maintainer": "me@example.com", "rating": "Five Stars",
                             "extra": "yes"}
    assert cfg["WorkingDir"] == "/srv/app" and cfg["User"] == "app"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /built.txt"],
                                  "Interval": 5_000_000_000, "Retries": 2}
    assert cfg["StopSignal"] == "SIGUSR1" and cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["OnBuild"] == ["RUN echo triggered > /tmp/onbuild.txt"]
    assert cfg["Entrypoint"] == ["sh", "-c"] and cfg["Cmd"] == ["cat /built.txt"]
    assert not any(e.startswith("UNUSED") or e.startswith("GREETING") for e in cfg["Env"])

    code, out = builder.run("every:1")
    assert code == 0 and out == "hi world at /srv/app as 0\nshell-form\n"
    code, out = builder.run("every:1", "ls -ln /srv/app /srv/app/lib; cat /opt/util.txt "
                            "/unpacked/inner/a.txt /etc/motd /exec.txt /heredoc.txt "
                            "/tmp/who.txt; ls /etc; ls /srv/app/ignored.log /ignored.log",
                            user="0")
    assert "-rwxr-x---    1 1000     1000" in out and "main.sh" in out
    assert "util\nfrom tar\nmotd for hi\nexec-form\nheredoc\napp\n" in out
    assert "group" not in out.split("heredoc\napp\n")[1]  # RUN rm became a whiteout
    assert "ignored.log: No such file" in out

    child = builder.build("FROM every:1\nCMD [\"cat /tmp/onbuild.txt\"]\n")
    assert builder.run(child.id)[1] == "triggered\n"
    assert "OnBuild" not in child.config or not child.config["OnBuild"]


def test_multistage_target_scratch_and_skipped_stages(builder: Builder) -> None:
    image = builder.build(f"""FROM {BASE} AS builder
RUN mkdir -p /out && echo built > /out/result
FROM {BASE} AS broken
RUN exit 3
FROM {BASE} AS other
RUN echo other > /other
FROM scratch
COPY --from=builder /bin/busybox /bin/busybox
COPY --from=builder /out/result /result
COPY --from=2 /other /other
COPY --from={BASE} /etc/passwd /etc/passwd
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/result", "/other"]
""", tags=("multi:1",))
    assert not builder.status("broken")  # not needed by the target: never built
    assert any("[builder 2/2]" in p.id for p in builder.progress)
    assert len(image.diff_ids) == 4
    assert builder.run("multi:1") == (0, "built\nother\n")
    target = builder.build(builder.ctx.joinpath("Dockerfile").read_text(), target="builder",
                           tags=("multi:builder",))
    assert builder.engine.image_inspect("multi:builder").id == target.id
    assert builder.run("multi:builder", "cat", "/out/result") == (0, "built\n")
    assert builder.status("other") == []


def test_cache_reuse_and_invalidation(builder: Builder) -> None:
    builder.write({"index.html": "v1\n", "static.txt": "same\n"})
    dockerfile = f"""FROM {BASE}
RUN echo slow > /slow
COPY static.txt /static.txt
ARG VERSION=1
RUN echo unrelated > /unrelated
COPY index.html /www/index.html
RUN echo version $VERSION > /version
"""
    first = builder.build(dockerfile, tags=("cache:1",))
    assert builder.status("RUN echo slow") == ["START", "DONE"]

    again = builder.build(dockerfile, tags=("cache:1",))
    assert again.id == first.id
    for step in ("RUN echo slow", "COPY static", "RUN echo unrelated", "COPY index",
                 "RUN echo version"):
        assert builder.status(step) == ["START", "CACHED"], step

    past = time.time() - 3600
    os.utime(builder.ctx / "index.html", (past, past))
    touched = builder.build(dockerfile)
    assert touched.id == first.id and builder.status("COPY index") == ["START", "CACHED"]

    builder.write({"index.html": "v2\n"})
    edited = builder.build(dockerfile)
    assert edited.id != first.id
    assert builder.status("RUN echo unrelated") == ["START", "CACHED"]
    assert builder.status("COPY index") == ["START", "DONE"]
    assert builder.status("RUN echo version") == ["START", "DONE"]

    changed_arg = builder.build(dockerfile, args=(("VERSION", "2"),))
    assert builder.status("COPY static") == ["START", "CACHED"]
    assert builder.status("RUN echo unrelated") == ["START", "DONE"]  # first use of VERSION
    assert builder.run(changed_arg.id, "cat", "/version")[1] == "version 2\n"

    builder.build(dockerfile, no_cache=True)
    assert "CACHED" not in [p.status for p in builder.progress]


def test_run_failure_reports_output_and_tags_nothing(builder: Builder) -> None:
    with pytest.raises(BuildError) as err:
        builder.build(f"FROM {BASE}\nRUN echo before-failure && npm installer\n",
                      tags=("failed:1",))
    assert "/bin/sh -c echo before-failure && npm installer" in str(err.value)
    assert "exit code: 127" in str(err.value)
    assert "before-failure" in err.value.output and "npm: not found" in err.value.output
    assert "ERROR" in builder.status("RUN echo before-failure")
    assert not any("failed:1" in t for i in builder.engine.image_list() for t in i.repo_tags)


@pytest.mark.parametrize(("line", "message"), [
    ("COPY ../outside.txt /x", "forbidden path outside the build context"),
    ("COPY rel_escape /x", "not found"),
    ("ADD evil.tar /ev/", ""),
    ("RUN --mount=type=bind,source=../,target=/m true", "forbidden path"),
    ("COPY /etc/shadow /x", "not found"),  # absolute sources are context-relative
    ("WORKDIR /proc/self/fd/7\nRUN ls", "did not complete successfully"),
])
def test_context_escapes_fail(builder: Builder, tmp_path: Path, line: str,
                              message: str) -> None:
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink("../outside.txt", builder.ctx / "rel_escape")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("escape_etc")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(link)
        pwned = tarfile.TarInfo("escape_etc/pwned")
        tar.addfile(pwned, io.BytesIO(b""))
    builder.write({"evil.tar": buf.getvalue()})
    try:
        builder.build(f"FROM {BASE}\n{line}\n")
    except BuildError as e:
        assert message in str(e)
    else:
        assert line.startswith("ADD"), "the build should have failed"
    assert not (tmp_path / "pwned").exists()


def test_absolute_symlink_is_scoped_to_the_context(builder: Builder) -> None:
    builder.write({"etc/hostname": "ctx-etc-hostname\n"})
    os.symlink("/etc/hostname", builder.ctx / "abs_link")
    image = builder.build(f"FROM {BASE}\nCOPY abs_link /x\nCOPY /etc/hostname /y\n")
    assert builder.run(image.id, "cat", "/x", "/y")[1] == "ctx-etc-hostname\n" * 2


def test_cache_mount_persists_and_stays_out_of_the_image(builder: Builder) -> None:
    dockerfile = f"""FROM {BASE}
COPY trigger.txt /trigger
RUN --mount=type=cache,target=/root/.cache sh -c 'ls /root/.cache > /seen; date >> /root/.cache/stamp'
"""
    builder.write({"trigger.txt": "1"})
    builder.build(dockerfile)
    builder.write({"trigger.txt": "2"})
    image = builder.build(dockerfile)
    code, out = builder.run(image.id, "sh", "-c", "cat /seen; ls -A /root/.cache 2>/dev/null | wc -l")
    assert out == "stamp\n0\n"


def test_compose_build_command(builder: Builder, engine_root: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "web").mkdir(parents=True)
    (project / "web" / "Dockerfile.web").write_text(
        f"FROM {BASE}\nARG WHO\nRUN echo $WHO > /who\nLABEL from=dockerfile\n")
    (project / "compose.yaml").write_text(
        "services:\n  web:\n    build:\n      context: web\n      dockerfile: Dockerfile.web\n"
        "      args: {WHO: compose}\n      labels: {from-compose: 'yes'}\n"
        "  db:\n    image: busybox:local\n")
    env = {**os.environ, "PYCOMPOSE_ROOT": str(engine_root)}
    cmd = [sys.executable, "-m", "compose.cli.main", "build", "--build-arg", "WHO=cli"]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "RUN echo $WHO" in done.stderr and "Built" in done.stderr
    image = builder.engine.image_inspect("proj-web")
    assert image.config["Labels"] == {"from": "dockerfile", "from-compose": "yes"}
    assert builder.run("proj-web", "cat", "/who")[1] == "cli\n"

    (project / "web" / "Dockerfile.web").write_text(f"FROM {BASE}\nBOGUS x\n")
    bad = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1
    assert "Dockerfile.web:2: unknown instruction: BOGUS" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_arg_scoping_proxy_args_and_history(builder: Builder) -> None:
    image = builder.build("""ARG TAG=local
ARG GLOBAL_ONLY=global
FROM busybox:$TAG
ARG TAG
ARG DEFAULTED
RUN echo "tag=$TAG global=[$GLOBAL_ONLY] d=${DEFAULTED:-fallback} p=$HTTP_PROXY" > /args
ENV TAG=from-env
ARG TAG=ignored
RUN echo "$TAG" >> /args
""", args=(("HTTP_PROXY", "http://proxy.invalid:3128"),), tags=("args:1",))
    out = builder.run(image.id, "cat", "/args")[1]
    assert out == "tag=local global=[] d=fallback p=http://proxy.invalid:3128\nfrom-env\n"
    assert not any("proxy.invalid" in str(h) for h in image.history)
    builder.build("FROM scratch\nARG USED\n", args=(("USED", "1"), ("UNUSED_X", "2")))
    warnings = [p.text for p in builder.progress if p.status == "WARN"]
    assert warnings == ["[Warning] One or more build-args [UNUSED_X] were not consumed"]
    history = builder.engine.image_history("args:1")
    assert history[0]["Id"] == image.id and "RUN" in history[0]["CreatedBy"]
    assert sum(1 for h in history if h["Size"] == 0) >= 1  # the ENV step is metadata only


def test_image_build_command(builder: Builder, engine_root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "alt-ctx"
    (ctx / "docker").mkdir(parents=True)
    (ctx / ".git").mkdir()
    (ctx / ".git" / "HEAD").write_text("ref\n")
    for name in ("a.log", "keep.log", "app.txt"):
        (ctx / name).write_text(name)
    (ctx / ".dockerignore").write_text(".git\n*.log\n!keep.log\n")
    (ctx / "docker" / "Dockerfile.alt").write_text(f"FROM {BASE}\nCOPY . /ctx\n")
    env = {**os.environ, "PYCOMPOSE_ROOT": str(engine_root)}
    done = subprocess.run(
        [sys.executable, "-m", "compose.cli.main", "image", "build", "-q", "-t", "alt",
         "-f", str(ctx / "docker" / "Dockerfile.alt"), str(ctx)],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == builder.engine.image_inspect("alt").id
    out = builder.run("alt", "ls", "-a", "/ctx")[1].split()
    assert sorted(out) == [".", "..", ".dockerignore", "app.txt", "docker", "keep.log"]


def test_run_bind_mounts_from_context_and_stage(builder: Builder) -> None:
    builder.write({"scripts/gen.sh": "echo generated-$1\n"})
    dockerfile = f"""FROM {BASE} AS tools
RUN mkdir /tools && echo tool-v1 > /tools/version
FROM {BASE}
RUN --mount=type=bind,source=scripts,target=/s sh /s/gen.sh one > /gen.txt
RUN --mount=type=bind,from=tools,source=/tools,target=/t,rw \\
    cat /t/version > /tool.txt && echo scribble > /t/scribble
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs.txt
"""
    image = builder.build(dockerfile)
    out = builder.run(image.id, "sh", "-c", "cat /gen.txt /tool.txt /tmpfs.txt; "
                      "ls -d /s /t /scratch 2>/dev/null | wc -l")[1]
    assert out.split() == ["generated-one", "tool-v1", "x", "0"]  # no mount-point stubs
    builder.write({"scripts/gen.sh": "echo changed-$1\n"})
    builder.build(dockerfile)
    assert builder.status("gen.sh one") == ["START", "DONE"]  # bind content is in the key
    assert builder.status("echo tool-v1") == ["START", "CACHED"]


def test_network_modes_extra_hosts_and_shm(builder: Builder) -> None:
    image = builder.build(f"""FROM {BASE}
RUN --network=none ip -o link | wc -l > /links-none
RUN readlink /proc/self/ns/net > /netns-default
RUN grep myhost /etc/hosts > /hosts.txt && df -k /dev/shm | tail -1 | awk '{{print $2}}' > /shm
""", extra_hosts=("myhost:10.1.2.3",), shm_size=8 * 1024 * 1024)
    out = builder.run(image.id, "cat", "/links-none", "/netns-default", "/hosts.txt",
                      "/shm")[1].split("\n")
    assert out[0] == "1"  # loopback only
    assert out[1] == os.readlink("/proc/self/ns/net")  # default: the host's network
    assert out[2].split() == ["10.1.2.3", "myhost"] and out[3] == "8192"
    none = builder.build(f"FROM {BASE}\nRUN ip -o link | wc -l > /n\n", network="none")
    assert builder.run(none.id, "cat", "/n")[1] == "1\n"


def test_build_cache_prune_removes_intermediate_layers(builder: Builder,
                                                       engine_root: Path) -> None:
    dockerfile = f"FROM {BASE}\nRUN echo one > /one\nRUN echo two > /two\n"
    first = builder.build(dockerfile, tags=("prune:1",))
    layers = engine_root / "layers"

    def stored() -> set[str]:
        return {p.name for p in layers.iterdir() if not p.name.startswith(".")}

    before = stored()
    with pytest.raises(BuildError):  # a failed build leaves its first layer in the cache
        builder.build(f"FROM {BASE}\nRUN echo orphan > /orphan\nRUN exit 1\n")
    assert len(stored()) == len(before) + 1
    freed = builder.engine._build_cache_prune()  # type: ignore[attr-defined]
    assert freed > 0 and stored() == before and not (engine_root / "build-cache").exists()
    assert builder.run("prune:1", "cat", "/one", "/two") == (0, "one\ntwo\n")
    again = builder.build(dockerfile)
    assert again.id != first.id and builder.status("RUN echo one") == ["START", "DONE"]


def test_inline_dockerfile_and_additional_context(builder: Builder, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "lib.txt").write_text("shared lib\n")
    image = builder.engine.image_build(BuildSpec(
        context=str(builder.ctx), dockerfile_inline=f"FROM {BASE}\nCOPY --from=libs lib.txt /\n",
        additional_contexts=(("libs", str(shared)),), no_cache_filter=("0",)))
    assert builder.run(image.id, "cat", "/lib.txt")[1] == "shared lib\n"
    with pytest.raises(BuildError, match="Dockerfile:1: unknown instruction: NOPE"):
        builder.engine.image_build(BuildSpec(context=str(builder.ctx),
                                             dockerfile_inline="NOPE x\n"))


def test_opaque_directory_and_whiteouts_across_layers(builder: Builder) -> None:
    builder.write({"later.txt": "later\n"})
    image = builder.build(f"""FROM {BASE}
RUN mkdir -p /data/sub && echo old > /data/old && echo keep > /data/sub/keep
RUN rm -rf /data && mkdir /data && echo new > /data/new
COPY later.txt /data/
RUN rm /data/new
""")
    code, out = builder.run(image.id, "sh", "-c", "find /data | sort")
    assert (code, out) == (0, "/data\n/data/later.txt\n")
