"""Named volumes, binds and tmpfs with real containers: persistence across recreation,
copy-up of image content once, live bind mounts, tmpfs gone after a restart, the API."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from engine.api import (
    Conflict,
    ContainerSpec,
    InvalidArgument,
    Mount,
    NotFound,
    VolumeSpec,
)
from engine.volumes import is_mountpoint
from tests.conftest import unique
from tests.root import nethelpers
from tests.root.nethelpers import IMAGE, exec_out, sleeper

pytestmark = pytest.mark.root
net_engine = nethelpers.net_engine
SEEDED = "pyc-net-seeded:test"


def run(engine: Any, mounts: tuple[Mount, ...], script: str, image: str = IMAGE) -> str:
    """Run `script` to completion in a fresh container, remove it, return its output."""
    c = engine.container_create(ContainerSpec(image=image, name=unique("v"), mounts=mounts,
                                              network_mode="none",
                                              command=("sh", "-c", script)))
    engine.container_start(c.id)
    code = engine.container_wait(c.id, timeout=15)
    out = "".join(line.text for line in engine.container_logs(c.id))
    engine.container_remove(c.id)
    assert code == 0, out
    return out


@pytest.fixture
def seeded_image(net_engine: Any, busybox_tar: Path, tmp_path: Path) -> str:
    """busybox plus /srv/seed/{hello.txt,sub/deep.txt} owned by uid 1000."""
    tar = tmp_path / "seeded.tar"
    shutil.copy(busybox_tar, tar)
    seed = tmp_path / "seed"
    (seed / "sub").mkdir(parents=True)
    (seed / "hello.txt").write_text("from the image\n")
    (seed / "sub" / "deep.txt").write_text("deep\n")
    with tarfile.open(tar, "a") as t:
        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 1000
            return info

        t.add(tmp_path / "seed", "srv/seed", filter=owned)
    net_engine.image_import(str(tar), SEEDED)
    return SEEDED


def test_volume_persists_across_container_recreation(net_engine: Any) -> None:
    vol = unique("data")
    mounts = (Mount("volume", "/data", vol),)
    run(net_engine, mounts, "echo kept > /data/file && mkdir /data/dir")
    assert run(net_engine, mounts, "cat /data/file && ls /data") == "kept\ndir\nfile\n"
    assert vol in [v.name for v in net_engine.volume_list()]


def test_copy_up_happens_once_and_not_with_nocopy(net_engine: Any, seeded_image: str) -> None:
    vol = unique("seed")
    mounts = (Mount("volume", "/srv/seed", vol),)
    out = run(net_engine, mounts, "cat /srv/seed/hello.txt /srv/seed/sub/deep.txt && "
              "stat -c '%u %g' /srv/seed/hello.txt && rm /srv/seed/hello.txt && "
              "echo mine > /srv/seed/mine", image=seeded_image)
    assert out == "from the image\ndeep\n1000 1000\n"
    out = run(net_engine, mounts, "ls /srv/seed", image=seeded_image)
    assert out == "mine\nsub\n"  # the deleted file did not come back: copied once
    run(net_engine, mounts, "rm -r /srv/seed/*", image=seeded_image)
    assert run(net_engine, mounts, "ls /srv/seed | wc -l", image=seeded_image).strip() == "0"
    bare = (Mount("volume", "/srv/seed", unique("bare"), nocopy=True),)
    assert run(net_engine, bare, "ls /srv/seed | wc -l", image=seeded_image).strip() == "0"
    anonymous = (Mount("volume", "/srv/seed"),)
    assert "hello.txt" in run(net_engine, anonymous, "ls /srv/seed", image=seeded_image)


def test_bind_mount_sees_host_changes_live(net_engine: Any, tmp_path: Path) -> None:
    host_dir = tmp_path / "bind"
    host_dir.mkdir()
    c = sleeper(net_engine, unique("b"), network_mode="none",
                mounts=(Mount("bind", "/mnt/host", str(host_dir)),))
    (host_dir / "later.txt").write_text("written after start\n")
    assert exec_out(net_engine, c.id, "cat", "/mnt/host/later.txt") == (0, "written after start\n")
    exec_out(net_engine, c.id, "sh", "-c", "echo back > /mnt/host/from-container")
    assert (host_dir / "from-container").read_text() == "back\n"


def test_tmpfs_is_gone_after_restart_but_volume_is_not(net_engine: Any) -> None:
    vol = unique("keep")
    c = sleeper(net_engine, unique("t"), network_mode="none",
                mounts=(Mount("tmpfs", "/scratch"), Mount("volume", "/keep", vol)))
    exec_out(net_engine, c.id, "sh", "-c", "echo x > /scratch/f && echo y > /keep/f")
    assert exec_out(net_engine, c.id, "ls", "/scratch") == (0, "f\n")
    net_engine.container_restart(c.id, timeout=0)
    assert exec_out(net_engine, c.id, "ls", "/scratch") == (0, "")
    assert exec_out(net_engine, c.id, "cat", "/keep/f") == (0, "y\n")


def test_driver_opts_bind_and_tmpfs(net_engine: Any, tmp_path: Path) -> None:
    device = tmp_path / "device"
    device.mkdir()
    bound = net_engine.volume_create(VolumeSpec(
        name=unique("bd"), driver_opts=(("type", "none"), ("o", "bind"),
                                        ("device", str(device)))))
    run(net_engine, (Mount("volume", "/v", bound.name),), "echo via-volume > /v/f")
    assert (device / "f").read_text() == "via-volume\n"
    tmp = net_engine.volume_create(VolumeSpec(
        name=unique("tv"), driver_opts=(("type", "tmpfs"), ("device", "tmpfs"),
                                        ("o", "size=1m,nodev"))))
    mounts = (Mount("volume", "/v", tmp.name),)
    run(net_engine, mounts, "echo in-ram > /v/f")
    assert is_mountpoint(Path(tmp.mountpoint))
    assert run(net_engine, mounts, "cat /v/f && df -k /v | tail -1") .startswith("in-ram\n")
    net_engine.volume_remove(bound.name)
    net_engine.volume_remove(tmp.name)
    assert (device / "f").read_text() == "via-volume\n"  # the user's directory is untouched
    assert not is_mountpoint(Path(tmp.mountpoint)) and not Path(tmp.mountpoint).exists()


def test_volume_api(net_engine: Any) -> None:
    name = unique("api")
    v = net_engine.volume_create(VolumeSpec(name=name, labels=(("tier", "db"),)))
    assert v.driver == "local" and v.mountpoint.endswith(f"volumes/{name}/_data")
    assert net_engine.volume_create(VolumeSpec(name=name)) == v  # idempotent, as Docker
    assert [x.name for x in net_engine.volume_list(labels={"tier": "db"})] == [name]
    assert net_engine.volume_list(labels={"tier": "web"}) == []
    with pytest.raises(InvalidArgument, match="invalid characters"):
        net_engine.volume_create(VolumeSpec(name="a/b"))
    with pytest.raises(InvalidArgument, match="invalid option key"):
        net_engine.volume_create(VolumeSpec(name=unique("x"), driver_opts=(("size", "1"),)))
    with pytest.raises(InvalidArgument, match="not supported"):
        net_engine.volume_create(VolumeSpec(name=unique("x"), driver="nfs"))
    c = sleeper(net_engine, unique("u"), network_mode="none", start=False,
                mounts=(Mount("volume", "/d", name),))
    with pytest.raises(Conflict, match=f"remove {name}: volume is in use"):
        net_engine.volume_remove(name)
    run(net_engine, (Mount("volume", "/anon"),), "true")
    anonymous = [x.name for x in net_engine.volume_list()
                 if "com.docker.volume.anonymous" in dict(x.labels)]
    assert len(anonymous) == 1
    assert net_engine.volume_prune() == anonymous
    net_engine.container_remove(c.id)
    assert net_engine.volume_prune(all=True) == [name]
    with pytest.raises(NotFound, match="no such volume"):
        net_engine.volume_inspect(name)
    net_engine.volume_remove(name, force=True)  # force: a missing volume is not an error


def test_volume_cli(net_engine: Any) -> None:
    import json
    import subprocess

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return nethelpers.pycompose(net_engine, "volume", *argv)

    name = unique("cv")
    assert cli("create", "--label", "a=b", name).stdout == f"{name}\n"
    assert cli("ls").stdout == f"DRIVER    VOLUME NAME\nlocal     {name}\n"
    (info,) = json.loads(cli("inspect", name).stdout)
    assert info["Labels"] == {"a": "b"} and info["Mountpoint"].endswith(f"{name}/_data")
    assert cli("ls", "-q", "--filter", "dangling=true").stdout == f"{name}\n"
    bad = cli("create", "-o", "size=1", unique("x"))
    assert bad.returncode == 1 and "invalid option key" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    pruned = cli("prune", "-f", "--all")
    assert pruned.stdout == f"Deleted Volumes:\n{name}\n\nTotal reclaimed space: 0B\n"
    missing = cli("rm", name)
    assert missing.returncode == 1 and "no such volume" in missing.stderr
    events = [(e["action"], e["id"]) for e in net_engine.store.read_events()
              if e["type"] == "volume"]
    assert events == [("create", name), ("destroy", name)]


def test_anonymous_volume_in_use_is_not_pruned(net_engine: Any) -> None:
    c = sleeper(net_engine, unique("an"), network_mode="none", start=False,
                mounts=(Mount("volume", "/anon"),))
    net_engine.container_start(c.id)
    net_engine.container_stop(c.id, timeout=0)
    (anonymous,) = [v.name for v in net_engine.volume_list()]
    assert net_engine.volume_prune(all=True) == []  # its (stopped) container still exists
    with pytest.raises(Conflict, match="in use"):
        net_engine.volume_remove(anonymous)
    net_engine.container_remove(c.id)
    assert net_engine.volume_prune() == [anonymous]
