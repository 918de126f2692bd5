"""The engine service for events, info, disk usage and system-wide prune.

Mixin `SystemService` of `engine.local.LocalEngine`. It reaches the other parts only
through the engine protocol methods on `self` (and tolerates parts not written yet).
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.api import EngineError, Event
from engine.store import Store

_EVENT_TYPES = ("container", "image", "network", "volume", "builder")


def tree_size(path: Path) -> int:
    """Apparent size of the regular files under `path` (symlinks are not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def cgroup_version() -> str:
    """"2" on a unified host, "1" on v1 and hybrid hosts (as `docker info` says)."""
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pycompose")
    except Exception:  # not installed as a distribution
        return "0.0.0"


class SystemService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    def events(self, since: float | None = None, until: float | None = None,
               follow: bool = False) -> Iterator[Event]:
        """Journal entries as `Event`s, oldest first; with `follow`, wait for new ones."""
        for raw in self.store.read_events(since=since, until=until, follow=follow):
            kind = raw.get("type", "")
            if kind not in _EVENT_TYPES:
                continue
            attrs = raw.get("attributes") or {}
            yield Event(time=float(raw.get("time", 0.0)), type=kind,
                        action=str(raw.get("action", "")), id=str(raw.get("id", "")),
                        attributes=tuple(sorted((str(k), str(v)) for k, v in attrs.items())))

    # ------------------------------------------------------------ helpers

    def _system_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call another part's method, or None while that part does not exist yet."""
        method = getattr(self, name, None)
        if method is None:
            return None
        try:
            return method(*args, **kwargs)
        except (NotImplementedError, AttributeError):
            return None

    def _system_containers(self) -> list[Any]:
        return list(self._system_call("container_list", all=True) or [])

    def info(self) -> dict[str, Any]:
        """A `docker info` shaped summary of the built-in engine and its host."""
        containers = self._system_containers()
        status = [c.state.status for c in containers]
        images = self._system_call("image_list") or []
        mem_total = 0
        try:
            mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            pass
        uname = platform.uname()
        return {
            "ID": "", "Name": socket.gethostname(),
            "Containers": len(containers),
            "ContainersRunning": status.count("running") + status.count("restarting"),
            "ContainersPaused": status.count("paused"),
            "ContainersStopped": len([s for s in status
                                      if s not in ("running", "restarting", "paused")]),
            "Images": len(images),
            "Driver": "overlay2", "DockerRootDir": str(self.store.root),
            "RunDir": str(self.store.run_dir),
            "ServerVersion": _version(), "OSType": "linux", "Architecture": uname.machine,
            "KernelVersion": uname.release, "OperatingSystem": _os_name(),
            "NCPU": os.cpu_count() or 1, "MemTotal": mem_total,
            "CgroupDriver": "cgroupfs", "CgroupVersion": cgroup_version(),
            "LoggingDriver": "json-file", "DefaultRuntime": "pycompose",
        }

    def _system_df(self) -> dict[str, Any]:
        """Disk usage per kind, as `docker system df` reports it."""
        containers = self._system_containers()
        used_images = {c.image_id for c in containers}
        images = self._system_call("image_list") or []
        image_rows = [{"id": im.id, "tags": list(im.repo_tags), "size": im.size,
                       "created": im.created, "containers": sum(
                           1 for c in containers if c.image_id == im.id)} for im in images]
        # Layers are shared: count each once for the total, reclaim only unused ones.
        layers = self._system_layers(images)
        used_layers = {d for im in images if im.id in used_images for d in im.diff_ids}
        images_total = sum(layers.values())
        reclaim_images = sum(s for d, s in layers.items() if d not in used_layers)
        container_rows = []
        for c in containers:
            upper = self.store.path("containers", c.id, "upper")
            container_rows.append({"id": c.id, "name": c.name, "image": c.image,
                                   "status": c.state.status, "size": tree_size(upper)})
        running_ids = {c.id for c in containers if c.state.running}
        volumes = self._system_call("volume_list") or []
        volume_rows = []
        for v in volumes:
            users = self._system_call("_containers_using_volume", v.name) or []
            volume_rows.append({"name": v.name, "links": len(users),
                                "size": tree_size(Path(v.mountpoint))})
        cache = self.store.path("build-cache")
        cache_size = tree_size(cache) if cache.is_dir() else 0
        return {
            "images": {"rows": image_rows, "total": len(images),
                       "active": len([im for im in images if im.id in used_images]),
                       "size": images_total, "reclaimable": reclaim_images},
            "containers": {"rows": container_rows, "total": len(containers),
                           "active": len(running_ids),
                           "size": sum(r["size"] for r in container_rows),
                           "reclaimable": sum(r["size"] for r in container_rows
                                              if r["id"] not in running_ids)},
            "volumes": {"rows": volume_rows, "total": len(volumes),
                        "active": len([r for r in volume_rows if r["links"]]),
                        "size": sum(r["size"] for r in volume_rows),
                        "reclaimable": sum(r["size"] for r in volume_rows if not r["links"])},
            "build_cache": {"total": 0, "active": 0, "size": cache_size,
                            "reclaimable": cache_size},
        }

    def _system_layers(self, images: list[Any]) -> dict[str, int]:
        index = getattr(self, "_image_index", None)
        known = index.read()["layers"] if index is not None else {}
        return {d: int(known.get(d, {}).get("size", 0)) for im in images for d in im.diff_ids}

    def _system_prune(self, all: bool = False, volumes: bool = False) -> dict[str, Any]:
        """`docker system prune`: stopped containers, unused networks, dangling (or all
        unused) images, and with `volumes` unused anonymous volumes. Returns what went."""
        removed_containers = []
        for c in self._system_containers():
            if c.state.running:
                continue
            try:
                self._system_call("container_remove", c.id)
                removed_containers.append(c.id)
            except EngineError:
                continue
        networks = list(self._system_call("network_prune") or [])
        removed_volumes = list(self._system_call("volume_prune") or []) if volumes else []
        image_lines: list[str] = []
        freed = 0
        report = getattr(self, "_image_prune_report", None)
        if report is not None:
            image_lines, freed = report(all)
        return {"containers": removed_containers, "networks": networks,
                "volumes": removed_volumes, "images": image_lines, "reclaimed": freed}


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return "Linux"
