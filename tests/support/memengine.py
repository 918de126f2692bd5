"""An in-memory engine implementing the whole `engine.api.Engine` protocol, for tests.

It keeps ids, names, labels, states, networks, volumes, images and an event journal,
and raises NotFound/Conflict where the built-in engine does. Nothing runs: tests move
containers along with `set_health`, `set_exited` and `add_log`, and `on_start` /
`exec_handler` let a test script what "running" a container does.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import IO, Any

from engine.api import (
    BuildSpec,
    Conflict,
    Container,
    ContainerSpec,
    ContainerState,
    EndpointSpec,
    Event,
    ExecSpec,
    Health,
    Image,
    InvalidArgument,
    LogLine,
    Network,
    NetworkAttachment,
    NetworkSpec,
    NotFound,
    Progress,
    ProgressFn,
    PublishedPort,
    RegistryError,
    Stats,
    Volume,
    VolumeSpec,
)

_counter = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _id(seed: str) -> str:
    return hashlib.sha256(f"{seed}{next(_counter)}".encode()).hexdigest()


def _normalize(ref: str) -> str:
    name = ref if ":" in ref.rsplit("/", 1)[-1] or "@" in ref else ref + ":latest"
    if "/" not in name:
        name = "library/" + name
    first = name.split("/", 1)[0]
    if "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


def _matches(labels: dict[str, str], wanted: dict[str, str | None] | None) -> bool:
    for key, value in (wanted or {}).items():
        if key not in labels or (value is not None and labels[key] != value):
            return False
    return True


class MemEngine:
    """A faithful, inspectable, thread-safe stand-in for the built-in engine."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.images: dict[str, Image] = {}  # id -> image
        self.containers: dict[str, Container] = {}
        self.networks: dict[str, Network] = {}
        self.volumes: dict[str, Volume] = {}
        self.journal: list[Event] = []
        self.logs: dict[str, list[LogLine]] = {}
        self.calls: list[tuple[str, str]] = []  # (method, ref) in call order
        self.pullable: set[str] = set()  # normalised refs image_pull can fetch
        self.exec_handler: Callable[[Container, ExecSpec], int] = lambda c, s: 0
        self.on_start: Callable[[MemEngine, Container], None] = lambda e, c: None
        self.build_failures: set[str] = set()  # tags whose build fails
        self.build_generation = 0  # bump to make the next builds produce new image ids
        self.copied: list[tuple[str, str, str]] = []
        self.stats: dict[str, Stats] = {}  # container id -> what container_stats reports
        self.stdin: dict[str, bytes] = {}  # container id -> what attach relayed to its stdin
        self.on_stdin: Callable[[MemEngine, Container, bytes], None] = lambda e, c, d: None

    # ------------------------------------------------------------------ test helpers

    def add_image(self, ref: str, config: dict[str, Any] | None = None,
                  ident: str | None = None) -> Image:
        image = Image(id=ident or "sha256:" + _id(ref), repo_tags=(ref,), repo_digests=(),
                      created=_now(), size=1024, config=config or {"Cmd": ["sh"]})
        with self.lock:
            self._untag(ref)
            known = self.images.get(image.id)
            if known is not None:
                image = replace(known, repo_tags=tuple(dict.fromkeys((*known.repo_tags, ref))))
            self.images[image.id] = image
        return image

    def set_health(self, ref: str, status: str) -> None:
        with self.lock:
            c = self._container(ref)
            self._put(replace(c, state=replace(c.state, health=Health(status))))  # type: ignore[arg-type]
            self._emit("container", f"health_status: {status}", c)

    def set_exited(self, ref: str, code: int = 0) -> None:
        with self.lock:
            c = self._container(ref)
            self._put(replace(c, state=replace(c.state, status="exited", exit_code=code,
                                               pid=0, finished_at=_now())))
            self._emit("container", "die", c, exitCode=str(code))

    def add_log(self, ref: str, text: str, stream: str = "stdout") -> None:
        with self.lock:
            c = self._container(ref)
            self.logs.setdefault(c.id, []).append(LogLine(_now(), stream, text))  # type: ignore[arg-type]
            self.lock.notify_all()

    def names(self, all: bool = True) -> list[str]:
        return sorted(c.name for c in self.container_list(all=all))

    # ------------------------------------------------------------------ internals

    def _emit(self, type_: str, action: str, obj: Any, **attrs: str) -> None:
        ident = getattr(obj, "id", "") or getattr(obj, "name", "")
        attributes = dict(getattr(obj, "labels", {}) if type_ == "container"
                          else dict(getattr(obj, "labels", ())))
        attributes["name"] = getattr(obj, "name", ident)
        attributes.update(attrs)
        self.journal.append(Event(time.time(), type_, action, ident,  # type: ignore[arg-type]
                                  tuple(attributes.items())))
        self.lock.notify_all()

    def _put(self, c: Container) -> None:
        self.containers[c.id] = c
        self.lock.notify_all()

    def _container(self, ref: str) -> Container:
        for c in self.containers.values():
            if ref in (c.id, c.name) or (len(ref) >= 12 and c.id.startswith(ref)):
                return c
        raise NotFound(f"No such container: {ref}")

    def _image(self, ref: str) -> Image:
        if ref in self.images:
            return self.images[ref]
        wanted = _normalize(ref)
        for image in self.images.values():
            if any(_normalize(t) == wanted for t in image.repo_tags) or \
                    image.id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:")):
                return image
        raise NotFound(f"No such image: {ref}")

    def _untag(self, ref: str) -> None:
        wanted = _normalize(ref)
        for image in list(self.images.values()):
            tags = tuple(t for t in image.repo_tags if _normalize(t) != wanted)
            if tags != image.repo_tags:
                self.images[image.id] = replace(image, repo_tags=tags)

    def _set_status(self, c: Container, status: str, **more: Any) -> Container:
        new = replace(c, state=replace(c.state, status=status, **more))  # type: ignore[arg-type]
        self._put(new)
        return new

    # ------------------------------------------------------------------ images

    def image_list(self) -> list[Image]:
        with self.lock:
            return list(self.images.values())

    def image_inspect(self, ref: str) -> Image:
        with self.lock:
            return self._image(ref)

    def image_import(self, tarball: str | IO[bytes], ref: str | None = None,
                     changes: tuple[str, ...] = ()) -> Image:
        return self.add_image(ref or "imported:latest")

    def image_load(self, archive: str | IO[bytes]) -> list[Image]:
        return [self.add_image("loaded:latest")]

    def image_save(self, refs: list[str], out: str | IO[bytes]) -> None:
        for ref in refs:
            self.image_inspect(ref)

    def image_tag(self, ref: str, new_ref: str) -> None:
        with self.lock:
            image = self._image(ref)
            self._untag(new_ref)
            image = self.images[image.id]
            self.images[image.id] = replace(image, repo_tags=(*image.repo_tags, new_ref))

    def image_remove(self, ref: str, force: bool = False) -> list[str]:
        with self.lock:
            image = self._image(ref)
            users = [c.name for c in self.containers.values() if c.image_id == image.id]
            if users and not force:
                raise Conflict(f"image {ref} is used by container {users[0]}")
            del self.images[image.id]
            self._emit("image", "delete", image)
            self.calls.append(("image_remove", ref))
            return [image.id]

    def image_prune(self, all: bool = False) -> list[str]:
        with self.lock:
            used = {c.image_id for c in self.containers.values()}
            gone = [i for i, img in self.images.items()
                    if i not in used and (all or not img.repo_tags)]
            for i in gone:
                del self.images[i]
            return gone

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        self.image_inspect(ref)
        return [{"CreatedBy": "mem"}]

    def image_pull(self, ref: str, progress: ProgressFn | None = None) -> Image:
        self.calls.append(("image_pull", ref))
        if _normalize(ref) not in {_normalize(p) for p in self.pullable}:
            raise RegistryError(f"pull access denied for {ref}: repository does not exist")
        if progress is not None:
            progress(Progress("sha256:0123456789abcdef", "Pull complete"))
        return self.add_image(ref)

    def image_push(self, ref: str, progress: ProgressFn | None = None) -> str:
        return self.image_inspect(ref).id

    def image_build(self, spec: BuildSpec, progress: ProgressFn | None = None) -> Image:
        from engine.api import BuildError

        self.calls.append(("image_build", spec.tags[0] if spec.tags else spec.context))
        if progress is not None:
            progress(Progress("#1", "DONE", text="FROM busybox"))
        if set(spec.tags) & self.build_failures:
            raise BuildError("Dockerfile:1: RUN false: exit code 1")
        # Same spec and sources -> same image id, as a build cache hit gives; tests bump
        # build_generation to stand for a changed Dockerfile or context.
        ident = "sha256:" + hashlib.sha256(repr((spec, self.build_generation)).encode()).hexdigest()
        image = self.add_image(spec.tags[0] if spec.tags else "built:latest", ident=ident)
        for tag in spec.tags[1:]:
            self.image_tag(image.id, tag)
        return image

    # ------------------------------------------------------------------ containers

    def container_create(self, spec: ContainerSpec) -> Container:
        with self.lock:
            self.calls.append(("container_create", spec.name or ""))
            image = self._image(spec.image)
            ident = _id(spec.name or "anon")
            name = spec.name or f"mem_{ident[:8]}"
            if any(c.name == name for c in self.containers.values()):
                raise Conflict(f'container name "{name}" is already in use')
            for ep in spec.networks:
                self._network(ep.network)
            for m in spec.mounts:
                if m.type == "volume" and m.source and m.source not in self.volumes:
                    self.volume_create(VolumeSpec(m.source))
            c = Container(ident, name, _now(), spec.image, image.id, spec,
                          ContainerState("created"))
            self._put(c)
            self._emit("container", "create", c)
            return c

    def _network(self, ref: str) -> Network:
        for n in self.networks.values():
            if ref in (n.id, n.name):
                return n
        raise NotFound(f"network {ref} not found")

    def container_start(self, ref: str) -> None:
        with self.lock:
            c = self._container(ref)
            self.calls.append(("container_start", c.name))
            if c.state.status in ("running", "paused"):
                return
            attachments = []
            for i, ep in enumerate(c.spec.networks):
                net = self._network(ep.network)
                attachments.append(NetworkAttachment(net.name, net.id, f"10.99.0.{i + 2}", 24,
                                                     "10.99.0.1", "02:42:0a:63:00:02",
                                                     ep.aliases))
                self.networks[net.id] = replace(net, containers=(*net.containers, c.id))
            ports = tuple(PublishedPort(p.container_port, p.protocol, p.host_ip or "0.0.0.0",
                                        int(p.host_port or 30000 + p.container_port))
                          for p in c.spec.ports)
            health = Health("starting") if c.spec.healthcheck and \
                c.spec.healthcheck.test != ("NONE",) else None
            c = replace(c, networks=tuple(attachments), ports=ports,
                        state=ContainerState("running", pid=4242, started_at=_now(),
                                             health=health,
                                             restart_count=c.state.restart_count))
            self._put(c)
            self._emit("container", "start", c)
        self.on_start(self, c)

    def container_stop(self, ref: str, timeout: float | None = None) -> None:
        with self.lock:
            c = self._container(ref)
            self.calls.append(("container_stop", c.name))
            if not c.state.running:
                return
            self._set_status(c, "exited", exit_code=143, pid=0, finished_at=_now())
            self._emit("container", "stop", c)

    def container_kill(self, ref: str, signal: str = "SIGKILL") -> None:
        with self.lock:
            c = self._container(ref)
            self.calls.append(("container_kill", c.name))
            if not c.state.running:
                raise Conflict(f"container {c.name} is not running")
            code = 137 if signal in ("SIGKILL", "KILL", "9") else 143
            self._set_status(c, "exited", exit_code=code, pid=0, finished_at=_now())
            self._emit("container", "kill", c, signal=signal)

    def container_restart(self, ref: str, timeout: float | None = None) -> None:
        self.container_stop(ref, timeout)
        with self.lock:
            c = self._container(ref)
            self._put(replace(c, state=replace(c.state,
                                               restart_count=c.state.restart_count + 1)))
        self.calls.append(("container_restart", c.name))
        self.container_start(ref)

    def container_remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        with self.lock:
            c = self._container(ref)
            if c.state.running and not force:
                raise Conflict(f"cannot remove container {c.name}: container is running")
            self.calls.append(("container_remove", c.name))
            del self.containers[c.id]
            for net in list(self.networks.values()):
                if c.id in net.containers:
                    self.networks[net.id] = replace(
                        net, containers=tuple(i for i in net.containers if i != c.id))
            self._emit("container", "destroy", c)

    def container_list(self, all: bool = False,
                       labels: dict[str, str | None] | None = None) -> list[Container]:
        with self.lock:
            return [c for c in self.containers.values()
                    if (all or c.state.running) and _matches(c.labels, labels)]

    def container_inspect(self, ref: str) -> Container:
        with self.lock:
            return self._container(ref)

    def container_wait(self, ref: str, condition: str = "not-running",
                       timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while True:
                c = self._container(ref)
                if not c.state.running:
                    return c.state.exit_code
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"container {c.name} still running")
                self.lock.wait(left if left is not None else 0.5)

    def container_logs(self, ref: str, follow: bool = False, tail: int | None = None,
                       since: float | None = None,
                       until: float | None = None) -> Iterator[LogLine]:
        c = self.container_inspect(ref)
        sent = 0
        with self.lock:
            lines = list(self.logs.get(c.id, []))
        if tail is not None:
            sent = max(0, len(lines) - tail)
        while True:
            with self.lock:
                lines = list(self.logs.get(c.id, []))
                current = self.containers.get(c.id)
            yield from (line for line in lines[sent:]
                        if (since is None or _epoch(line.time) >= since) and
                        (until is None or _epoch(line.time) <= until))
            sent = len(lines)
            if not follow or current is None or not current.state.running:
                return
            with self.lock:
                self.lock.wait(0.05)

    def container_exec(self, ref: str, spec: ExecSpec) -> int:
        c = self.container_inspect(ref)
        if c.state.status != "running":
            raise Conflict(f"container {c.name} is not running")
        self.calls.append(("container_exec", c.name))
        return self.exec_handler(c, spec)

    def container_attach(self, ref: str, stdin: IO[Any] | None, stdout: IO[Any],
                         stderr: IO[Any], tty: bool) -> int:
        """Relay stdin (with stdin_open: kept in `self.stdin`, passed to `on_stdin` as it
        comes) and the container's output from its start until it exits; its code."""
        c = self.container_inspect(ref)
        if c.state.status in ("created", "dead"):
            raise Conflict(f"You cannot attach to a stopped container {c.name}, "
                           "start it first")
        self.calls.append(("container_attach", c.name))
        if stdin is not None and c.spec.stdin_open:
            threading.Thread(target=self._relay_stdin, args=(c, stdin), daemon=True).start()
        for line in self.container_logs(c.id, follow=True):
            out = stdout if line.stream == "stdout" else stderr
            out.write(line.text)
            out.flush()
        return self.container_wait(c.id)

    def _relay_stdin(self, c: Container, stdin: IO[Any]) -> None:
        read = getattr(stdin, "read1", stdin.read)
        while True:
            data = read(65536)
            if not data:
                return
            chunk = data.encode() if isinstance(data, str) else bytes(data)
            with self.lock:
                self.stdin[c.id] = self.stdin.get(c.id, b"") + chunk
            self.on_stdin(self, c, chunk)

    def container_top(self, ref: str) -> tuple[list[str], list[list[str]]]:
        c = self.container_inspect(ref)
        if not c.state.running:
            raise Conflict(f"container {c.name} is not running")
        cmd = " ".join((c.spec.entrypoint or ()) + (c.spec.command or ()))
        return ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], \
            [["root", str(c.state.pid), "1", "0", "00:00", "?", "00:00:00", cmd]]

    def container_stats(self, ref: str) -> Stats:
        c = self.container_inspect(ref)
        with self.lock:
            if c.id in self.stats:
                return self.stats[c.id]
        return Stats(0.0, 1 << 20, 1 << 30, 1)

    def set_stats(self, ref: str, stats: Stats) -> None:
        """What `container_stats` reports for this container from now on."""
        with self.lock:
            self.stats[self._container(ref).id] = stats

    def container_pause(self, ref: str) -> None:
        with self.lock:
            c = self._container(ref)
            if c.state.status != "running":
                raise Conflict(f"container {c.name} is not running" if c.state.status != "paused"
                               else f"container {c.name} is already paused")
            self._set_status(c, "paused")
            self._emit("container", "pause", c)

    def container_unpause(self, ref: str) -> None:
        with self.lock:
            c = self._container(ref)
            if c.state.status != "paused":
                raise Conflict(f"container {c.name} is not paused")
            self._set_status(c, "running")
            self._emit("container", "unpause", c)

    def container_copy_to(self, ref: str, src: str, dest: str) -> None:
        self.container_inspect(ref)
        self.copied.append((ref, src, dest))

    def container_copy_from(self, ref: str, src: str, dest: str) -> None:
        self.container_inspect(ref)
        self.copied.append((ref, src, dest))

    def container_diff(self, ref: str) -> list[tuple[str, str]]:
        self.container_inspect(ref)
        return []

    def container_export(self, ref: str, out: str | IO[bytes]) -> None:
        self.container_inspect(ref)

    # ------------------------------------------------------------------ networks

    def network_create(self, spec: NetworkSpec) -> Network:
        with self.lock:
            if any(n.name == spec.name for n in self.networks.values()):
                raise Conflict(f"network with name {spec.name} already exists")
            if spec.driver not in ("bridge",):
                raise InvalidArgument(f"network driver {spec.driver!r} is not supported")
            subnet = spec.ipam[0].subnet if spec.ipam and spec.ipam[0].subnet else \
                f"10.99.{len(self.networks)}.0/24"
            net = Network(_id(spec.name), spec.name, spec.driver, _now(), subnet or "",
                          subnet.rsplit(".", 1)[0] + ".1", spec.internal, spec.attachable,
                          spec.labels, spec.driver_opts)
            self.networks[net.id] = net
            self.calls.append(("network_create", spec.name))
            self._emit("network", "create", net)
            return net

    def network_remove(self, ref: str) -> None:
        with self.lock:
            net = self._network(ref)
            if net.containers:
                raise Conflict(f"network {net.name} has active endpoints")
            del self.networks[net.id]
            self.calls.append(("network_remove", net.name))
            self._emit("network", "destroy", net)

    def network_list(self, labels: dict[str, str | None] | None = None) -> list[Network]:
        with self.lock:
            return [n for n in self.networks.values() if _matches(dict(n.labels), labels)]

    def network_inspect(self, ref: str) -> Network:
        with self.lock:
            return self._network(ref)

    def network_connect(self, ref: str, container: str, endpoint: EndpointSpec) -> None:
        with self.lock:
            net, c = self._network(ref), self._container(container)
            if c.id in net.containers:
                raise Conflict(f"container {c.name} is already attached to {net.name}")
            self.networks[net.id] = replace(net, containers=(*net.containers, c.id))

    def network_disconnect(self, ref: str, container: str, force: bool = False) -> None:
        with self.lock:
            net, c = self._network(ref), self._container(container)
            if c.id not in net.containers and not force:
                raise NotFound(f"container {c.name} is not attached to {net.name}")
            self.networks[net.id] = replace(
                net, containers=tuple(i for i in net.containers if i != c.id))

    def network_prune(self) -> list[str]:
        with self.lock:
            gone = [n.name for n in self.networks.values() if not n.containers]
            for name in gone:
                self.network_remove(name)
            return gone

    # ------------------------------------------------------------------ volumes

    def volume_create(self, spec: VolumeSpec) -> Volume:
        with self.lock:
            if spec.name in self.volumes:
                return self.volumes[spec.name]
            vol = Volume(spec.name, spec.driver, f"/mem/volumes/{spec.name}/_data", _now(),
                         spec.labels, spec.driver_opts)
            self.volumes[spec.name] = vol
            self.calls.append(("volume_create", spec.name))
            self._emit("volume", "create", vol)
            return vol

    def volume_remove(self, name: str, force: bool = False) -> None:
        with self.lock:
            if name not in self.volumes:
                raise NotFound(f"no such volume: {name}")
            users = [c.name for c in self.containers.values()
                     if any(m.type == "volume" and m.source == name for m in c.spec.mounts)]
            if users and not force:
                raise Conflict(f"volume {name} is in use by {users[0]}")
            vol = self.volumes.pop(name)
            self.calls.append(("volume_remove", name))
            self._emit("volume", "destroy", vol)

    def volume_list(self, labels: dict[str, str | None] | None = None) -> list[Volume]:
        with self.lock:
            return [v for v in self.volumes.values() if _matches(dict(v.labels), labels)]

    def volume_inspect(self, name: str) -> Volume:
        with self.lock:
            if name not in self.volumes:
                raise NotFound(f"no such volume: {name}")
            return self.volumes[name]

    def volume_prune(self, all: bool = False) -> list[str]:
        with self.lock:
            used = {m.source for c in self.containers.values() for m in c.spec.mounts}
            gone = [n for n in self.volumes if n not in used]
            for n in gone:
                del self.volumes[n]
            return gone

    # ------------------------------------------------------------------ system

    def events(self, since: float | None = None, until: float | None = None,
               follow: bool = False) -> Iterator[Event]:
        seen = 0
        while True:
            with self.lock:
                batch = self.journal[seen:]
                seen = len(self.journal)
            for event in batch:
                if (since is None or event.time >= since) and \
                        (until is None or event.time <= until):
                    yield event
            if not follow or (until is not None and time.time() > until):
                return
            with self.lock:
                self.lock.wait(0.05)

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {"Containers": len(self.containers), "Images": len(self.images),
                    "Driver": "memory", "Name": "memengine"}
