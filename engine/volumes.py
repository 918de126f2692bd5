"""The engine service for named volumes (Docker's `local` driver).

Layout: `<root>/volumes/<name>/meta.json` ({"name", "driver", "created", "labels",
"options", "copied_up"}) and `<root>/volumes/<name>/_data` (the content, or the mount
point of a `type`/`device` volume). `driver_opts` as Docker's local driver: `type=none,
o=bind, device=/host/path` binds a host directory (it is used in place, nothing is
mounted); any other `type` (tmpfs, ...) is mounted on `_data` at first use and unmounted
when the volume is removed. `_volume_source` is the hook the runtime calls before a
container starts: it creates the volume if needed and copies the image's content at the
mount target into it once, when it is empty (unless `nocopy`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.api import (
    Conflict,
    EngineRuntimeError,
    InvalidArgument,
    Mount,
    NotFound,
    Volume,
    VolumeSpec,
)
from engine.store import Store

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
LOCAL_OPTS = ("type", "o", "device")
LOCK = "volumes"

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2
MOUNT_FLAGS = {"ro": 0x1, "nosuid": 0x2, "nodev": 0x4, "noexec": 0x8, "noatime": 0x400}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def anonymous_name(container_id: str, target: str) -> str:
    return hashlib.sha256(f"{container_id}:{target}".encode()).hexdigest()


def is_mountpoint(path: Path) -> bool:
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(_unescape_mountinfo(line.split()[4]) == target for line in f)
    except OSError:
        return False


def _unescape_mountinfo(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as `\\ooo` octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mount(source: str, target: Path, fstype: str, options: str) -> None:
    flags = 0
    data = []
    for opt in [o for o in options.split(",") if o]:
        if opt in MOUNT_FLAGS:
            flags |= MOUNT_FLAGS[opt]
        else:
            data.append(opt)
    rc = _libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags,
                     ",".join(data).encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise EngineRuntimeError(f"failed to mount local volume: mount {source}:{target}, "
                                 f"type {fstype}, data {options!r}: {os.strerror(err)}")


def _umount(target: Path) -> None:
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise EngineRuntimeError(f"cannot unmount volume at {target}: {os.strerror(err)}")


class VolumeService:
    """Mixin of engine.local.LocalEngine."""

    store: Store

    # ------------------------------------------------------------------ files

    def _volume_dir(self, name: str) -> Path:
        return self.store.path("volumes", name)

    def _volume_meta(self, name: str) -> dict[str, Any]:
        if not NAME_RE.match(name):
            raise NotFound(f"get {name}: no such volume")
        meta = self.store.read_json(self._volume_dir(name) / "meta.json")
        if not isinstance(meta, dict):
            raise NotFound(f"get {name}: no such volume")
        return meta

    def _volume_record(self, meta: dict[str, Any]) -> Volume:
        return Volume(name=meta["name"], driver=meta.get("driver", "local"),
                      mountpoint=str(self._volume_dir(meta["name"]) / "_data"),
                      created=meta["created"],
                      labels=tuple(sorted(meta.get("labels", {}).items())),
                      options=tuple(sorted(meta.get("options", {}).items())))

    # ------------------------------------------------------------------ API

    def volume_create(self, spec: VolumeSpec) -> Volume:
        if not NAME_RE.match(spec.name):
            raise InvalidArgument(f"create {spec.name}: {spec.name!r} includes invalid "
                                  "characters for a local volume name, only "
                                  "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if spec.driver not in ("local", ""):
            raise InvalidArgument(f"create {spec.name}: volume driver {spec.driver!r} is not "
                                  "supported (the built-in engine offers 'local')")
        options = dict(spec.driver_opts)
        unknown = sorted(set(options) - set(LOCAL_OPTS))
        if unknown:
            raise InvalidArgument(f"create {spec.name}: invalid option key: {unknown[0]!r} "
                                  "(the local driver knows type, o, device)")
        if options.get("type") and options["type"] != "tmpfs" and not options.get("device"):
            raise InvalidArgument(f"create {spec.name}: driver option type="
                                  f"{options['type']} needs a device")
        with self.store.lock(LOCK):
            with contextlib.suppress(NotFound):
                existing = self._volume_meta(spec.name)
                if existing.get("driver", "local") != (spec.driver or "local"):
                    raise Conflict(f"create {spec.name}: a volume with this name already "
                                   f"exists with driver {existing['driver']!r}")
                return self._volume_record(existing)
            base = self._volume_dir(spec.name)
            (base / "_data").mkdir(parents=True, exist_ok=True)
            os.chmod(base / "_data", 0o755)
            meta = {"name": spec.name, "driver": "local", "created": _now(),
                    "labels": dict(spec.labels), "options": options, "copied_up": False}
            self.store.write_json(base / "meta.json", meta)
        self.store.emit("volume", "create", spec.name, driver="local")
        return self._volume_record(meta)

    def volume_inspect(self, name: str) -> Volume:
        return self._volume_record(self._volume_meta(name))

    def volume_list(self, labels: dict[str, str | None] | None = None) -> list[Volume]:
        found: list[Volume] = []
        base = self.store.path("volumes")
        if not base.is_dir():
            return found
        for entry in sorted(base.iterdir()):
            meta = self.store.read_json(entry / "meta.json")
            if not isinstance(meta, dict):
                continue
            have = meta.get("labels", {})
            if labels and not all(k in have and (v is None or have[k] == v)
                                  for k, v in labels.items()):
                continue
            found.append(self._volume_record(meta))
        return found

    def _volume_users(self, name: str) -> list[str]:
        """Containers (running or not) that mount the volume, anonymous ones included."""
        hook = getattr(self, "_containers_using_volume", None)
        users = list(hook(name)) if hook is not None else []
        listing = getattr(self, "container_list", None)
        for c in listing(all=True) if listing is not None else []:
            for m in c.spec.mounts:
                if m.type == "volume" and c.id not in users and \
                        (m.source or anonymous_name(c.id, m.target)) == name:
                    users.append(c.id)
        return users

    def volume_remove(self, name: str, force: bool = False) -> None:
        with self.store.lock(LOCK):
            try:
                meta = self._volume_meta(name)
            except NotFound:
                if force:
                    return
                raise
            users = self._volume_users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - "
                               f"[{', '.join(u[:12] for u in users)}]")
            self._volume_destroy(meta)
        self.store.emit("volume", "destroy", name, driver="local")

    def _volume_destroy(self, meta: dict[str, Any]) -> None:
        base = self._volume_dir(meta["name"])
        data = base / "_data"
        if is_mountpoint(data):
            _umount(data)
        if is_mountpoint(data):
            raise EngineRuntimeError(f"remove {meta['name']}: {data} is still mounted; "
                                     "nothing was deleted")
        shutil.rmtree(base)

    def volume_prune(self, all: bool = False) -> list[str]:
        removed = []
        with self.store.lock(LOCK):
            for vol in self.volume_list():
                labels = dict(vol.labels)
                if not all and ANONYMOUS_LABEL not in labels:
                    continue
                if self._volume_users(vol.name):
                    continue
                self._volume_destroy(self._volume_meta(vol.name))
                removed.append(vol.name)
        for name in removed:
            self.store.emit("volume", "destroy", name, driver="local")
        return removed

    # ------------------------------------------------------------------ the runtime's hook

    def _volume_source(self, mount: Mount, container_id: str, image_id: str) -> str:
        """The host path to bind at `mount.target` for a `volume` mount."""
        name = mount.source or anonymous_name(container_id, mount.target)
        labels = () if mount.source else ((ANONYMOUS_LABEL, ""),)
        self.volume_create(VolumeSpec(name=name, labels=labels))
        with self.store.lock(LOCK):
            meta = self._volume_meta(name)
            base = self._volume_data_path(meta)
            wants_copy = not mount.nocopy and not meta.get("copied_up") and bool(image_id)
            if wants_copy and _is_empty(base) and \
                    self._volume_copy_up(image_id, mount.target, base):
                meta["copied_up"] = True
                self.store.write_json(self._volume_dir(name) / "meta.json", meta)
        path = base
        if mount.subpath:
            path = _inside(base, mount.subpath)
        self.store.emit("volume", "mount", name, container=container_id,
                        destination=mount.target, read_write=str(not mount.read_only).lower())
        return str(path)

    def _volume_data_path(self, meta: dict[str, Any]) -> Path:
        """Where the content is: a bound host dir, a mount on _data, or _data itself."""
        options = meta.get("options", {})
        data = self._volume_dir(meta["name"]) / "_data"
        fstype = options.get("type", "")
        mount_opts = options.get("o", "")
        if not fstype and not options.get("device"):
            return data
        if "bind" in mount_opts.split(","):
            device = Path(options.get("device", ""))
            if not device.is_dir():
                raise EngineRuntimeError(f"failed to mount local volume {meta['name']}: "
                                         f"bind source {device}: no such directory")
            return device
        if not is_mountpoint(data):
            _mount(options.get("device") or fstype, data, fstype, mount_opts)
        return data

    def _volume_copy_up(self, image_id: str, target: str, dest: Path) -> bool:
        """Copy the image's content at `target` into `dest`; False if it has none there."""
        layers = getattr(self, "_image_layer_dirs", None)
        if layers is None:
            return False
        rel = target.strip("/")
        found = False
        for layer in layers(image_id):
            found = _apply_layer_subtree(Path(layer), rel, dest) or found
        return found


def _inside(base: Path, sub: str) -> Path:
    path = Path(os.path.realpath(base / sub.lstrip("/")))
    real_base = Path(os.path.realpath(base))
    if path != real_base and real_base not in path.parents:
        raise InvalidArgument(f"volume subpath {sub!r} escapes the volume")
    if not path.exists():
        raise InvalidArgument(f"volume subpath {sub!r} does not exist in the volume")
    return path


def _is_empty(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


# ---------------------------------------------------------------------- copy-up


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _clear(path: Path) -> None:
    for entry in os.scandir(path):
        _remove(Path(entry.path))


def _remove(path: Path) -> None:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _apply_layer_subtree(layer: Path, rel: str, dest: Path) -> bool:
    """Apply one layer's view of `rel` onto `dest` (overlay semantics: whiteouts and
    opaque directories hide what lower layers put there). True if the layer has `rel`."""
    node = layer
    for part in [p for p in rel.split("/") if p]:
        node = node / part
        try:
            st = os.lstat(node)
        except FileNotFoundError:
            return False
        if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
            _clear(dest)  # the path is deleted or replaced by a non-directory here
            return False
    if _is_opaque(node):
        _clear(dest)
    _copy_tree(node, dest)
    return True


def _copy_tree(src: Path, dest: Path) -> None:
    """Merge src into dest without ever following a symlink in dest."""
    for entry in os.scandir(src):
        s = Path(entry.path)
        d = dest / entry.name
        st = os.lstat(s)
        existing = None
        with contextlib.suppress(FileNotFoundError):
            existing = os.lstat(d)
        if _is_whiteout(st):
            if existing is not None:
                _remove(d)
            continue
        if stat.S_ISDIR(st.st_mode):
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                _remove(d)
                existing = None
            if existing is None:
                os.mkdir(d)
            elif _is_opaque(s):
                _clear(d)
            _copy_tree(s, d)
        else:
            if existing is not None:
                _remove(d)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(s, d, st.st_mode)
            else:
                continue  # devices, fifos and sockets are not copied into volumes
        os.lchown(d, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(d, stat.S_IMODE(st.st_mode))
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_file(src: Path, dest: Path, mode: int) -> None:
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd_out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         stat.S_IMODE(mode) | 0o200)
        try:
            while os.sendfile(fd_out, fd_in, None, 1 << 24):
                pass
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
