"""The image store on a real data root: import, resolve, save/load, tag/rm/prune, races."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import multiprocessing
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api import Conflict, InvalidArgument, NotFound
from engine.local import LocalEngine

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _remove_tmp(tmp_path: Path) -> Iterator[None]:
    """Unpacked layers hold device nodes and setuid files: never leave them behind."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def engine(engine_root: Path) -> LocalEngine:
    return LocalEngine(engine_root)


@pytest.fixture
def busybox(engine: LocalEngine, busybox_tar: Path) -> str:
    return engine.image_import(str(busybox_tar), "busybox", ('CMD ["sh"]',)).id


def _layer_count(engine: LocalEngine) -> int:
    layers = engine.store.path("layers")
    return len([p for p in layers.iterdir() if not p.name.startswith(".")])


def test_import_and_resolve(engine: LocalEngine, busybox: str) -> None:
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox:latest",
                "index.docker.io/library/busybox", busybox, busybox[7:], busybox[7:19],
                "sha256:" + busybox[7:15]):
        assert engine._image_resolve(ref).id == busybox, ref
    image = engine.image_inspect("busybox")
    assert image.repo_tags == ("busybox:latest",)
    assert image.config["Cmd"] == ["sh"]
    assert busybox == "sha256:" + hashlib.sha256(
        engine.store.path("blobs", "sha256", busybox[7:]).read_bytes()).hexdigest()
    (layer,) = engine._image_layer_dirs(busybox)
    assert (layer / "bin" / "busybox").is_file()
    assert layer.parent.stat().st_mode & 0o777 == 0o700  # device nodes stay root-only
    assert (layer / "bin" / "sh").is_symlink()
    assert engine._image_config(busybox)["rootfs"]["diff_ids"] == list(image.diff_ids)
    doc = image.inspect()
    assert doc["Id"] == busybox and doc["RootFS"]["Layers"] == list(image.diff_ids)
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Size"] == image.size > 1_000_000
    for missing in ("nope", "busybox:other", "ffffffffffff"):
        with pytest.raises(NotFound, match="No such image"):
            engine._image_resolve(missing)
    with pytest.raises(InvalidArgument):
        engine._image_resolve("Bad Ref")


def test_import_gzip_shares_the_layer(engine: LocalEngine, busybox: str,
                                      busybox_tar: Path) -> None:
    gz = gzip.compress(busybox_tar.read_bytes(), 1)
    other = engine.image_import(io.BytesIO(gz), "localhost:5000/bb:gz")
    assert other.id != busybox
    assert other.diff_ids == engine.image_inspect(busybox).diff_ids
    assert _layer_count(engine) == 1
    history = engine.image_history("localhost:5000/bb:gz")
    assert history[0]["Id"] == other.id and history[0]["Comment"] == "Imported from -"
    assert history[0]["Tags"] == ["localhost:5000/bb:gz"]


def test_import_rejects_bad_input_without_leftovers(engine: LocalEngine,
                                                    tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        engine.image_import(io.BytesIO(b"not a tarball at all" * 100), "bad")
    with pytest.raises(InvalidArgument):
        engine.image_import(str(tmp_path / "missing.tar"), "bad")
    with pytest.raises(InvalidArgument):
        engine.image_import(io.BytesIO(b""), "bad", ("RUN rm -rf /",))
    with pytest.raises(InvalidArgument):
        engine.image_import(io.BytesIO(b""), "UPPER")
    assert engine.image_list() == []
    layers = engine.store.path("layers")
    assert not layers.exists() or not list(layers.iterdir())


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_save_load_round_trip(engine: LocalEngine, busybox: str, tmp_path: Path,
                              fmt: str) -> None:
    engine.image_tag("busybox", "localhost:5000/team/bb:v1")
    archive = tmp_path / f"out-{fmt}.tar"
    engine.image_save(["busybox", "localhost:5000/team/bb:v1"], str(archive), format=fmt)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    if fmt == "docker":
        assert {"manifest.json", "repositories", f"{busybox[7:]}.json"} <= names
    else:
        assert {"oci-layout", "index.json", f"blobs/sha256/{busybox[7:]}"} <= names

    other = LocalEngine(tmp_path / f"root-{fmt}")
    loaded = other.image_load(str(archive))
    assert [im.id for im in loaded] == [busybox] * (1 if fmt == "docker" else 2)
    got = other.image_inspect("busybox")
    assert got.id == busybox
    assert set(got.repo_tags) == {"busybox:latest", "localhost:5000/team/bb:v1"}
    (layer,) = other._image_layer_dirs(busybox)
    assert (layer / "bin" / "busybox").stat().st_size > 1_000_000
    # a compressed archive from a stream loads too
    stream = io.BytesIO(gzip.compress(archive.read_bytes(), 1))
    assert LocalEngine(tmp_path / f"gz-{fmt}").image_load(stream)[0].id == busybox


def _oci_layout(config: bytes, layer: bytes, media: str, name: str) -> bytes:
    def blob(data: bytes) -> tuple[str, bytes]:
        return "sha256:" + hashlib.sha256(data).hexdigest(), data

    cdig, _ = blob(config)
    ldig, _ = blob(layer)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cdig, "size": len(config)},
                           "layers": [{"mediaType": media, "digest": ldig,
                                       "size": len(layer)}]}).encode()
    mdig, _ = blob(manifest)
    nested = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig,
         "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}}],
        "mediaType": "application/vnd.oci.image.index.v1+json"}).encode()
    ndig, _ = blob(nested)
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": ndig,
         "size": len(nested), "annotations": {"io.containerd.image.name": name}}]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", index), (f"blobs/sha256/{cdig[7:]}", config),
                           (f"blobs/sha256/{ldig[7:]}", layer),
                           (f"blobs/sha256/{mdig[7:]}", manifest),
                           (f"blobs/sha256/{ndig[7:]}", nested)]:
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def _tiny_layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 5
        tar.addfile(ti, io.BytesIO(b"hello"))
    return out.getvalue()


def test_load_oci_gzip_layer_nested_index(engine: LocalEngine) -> None:
    layer = _tiny_layer()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["x"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    archive = _oci_layout(config, gzip.compress(layer),
                          "application/vnd.oci.image.layer.v1.tar+gzip",
                          "registry.local/app:2")
    (image,) = engine.image_load(io.BytesIO(archive))
    assert image.id == "sha256:" + hashlib.sha256(config).hexdigest()
    assert engine.image_inspect("registry.local/app:2").id == image.id
    assert (engine._image_layer_dirs(image.id)[0] / "hello.txt").read_bytes() == b"hello"


def test_load_rejects_tampering_and_commits_nothing(engine: LocalEngine) -> None:
    layer = _tiny_layer()
    wrong = "sha256:" + "0" * 64
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [wrong]}}).encode()
    archive = _oci_layout(config, layer, "application/vnd.oci.image.layer.v1.tar", "x/y:1")
    with pytest.raises(InvalidArgument, match="diff_id"):
        engine.image_load(io.BytesIO(archive))
    assert engine.image_list() == []
    assert not any(p for p in engine.store.path("layers").iterdir()
                   if not p.name.startswith(".trash"))
    tampered = bytearray(archive)
    idx = bytes(tampered).find(b'"rootfs"')
    tampered[idx + 1] = ord("R")  # config bytes no longer match their digest
    with pytest.raises(InvalidArgument, match="digest"):
        engine.image_load(io.BytesIO(bytes(tampered)))
    with pytest.raises(InvalidArgument, match="neither manifest.json nor index.json"):
        engine.image_load(io.BytesIO(_tiny_layer()))


def test_tag_and_remove_semantics(engine: LocalEngine, busybox: str) -> None:
    engine.image_tag("busybox", "mytag:1")
    engine.image_tag(busybox[7:19], "localhost:5000/other")
    with pytest.raises(InvalidArgument):
        engine.image_tag("busybox", "busybox@sha256:" + "a" * 64)
    with pytest.raises(NotFound):
        engine.image_tag("missing", "x")
    assert set(engine.image_inspect(busybox).repo_tags) == {
        "busybox:latest", "mytag:1", "localhost:5000/other:latest"}
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        engine.image_remove(busybox[7:19])
    assert engine.image_remove("mytag:1") == ["Untagged: mytag:1"]
    assert engine.image_remove("localhost:5000/other") == ["Untagged: localhost:5000/other:latest"]
    layer = engine._image_layer_dirs(busybox)[0]
    assert engine.image_remove("busybox") == ["Untagged: busybox:latest", f"Deleted: {busybox}"]
    assert not layer.exists()
    assert engine._image_blobs.all() == []
    with pytest.raises(NotFound):
        engine.image_remove("busybox")


def test_force_remove_by_id_with_several_tags(engine: LocalEngine, busybox: str) -> None:
    engine.image_tag("busybox", "a:1")
    lines = engine.image_remove(busybox, force=True)
    assert sorted(lines[:2]) == ["Untagged: a:1", "Untagged: busybox:latest"]
    assert lines[2] == f"Deleted: {busybox}"
    assert engine.image_list() == []


def test_remove_refuses_image_in_use(engine: LocalEngine, busybox: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_containers_using_image",
                        lambda image_id: ["c0ffee" * 10] if image_id == busybox else [],
                        raising=False)
    with pytest.raises(Conflict, match="must force"):
        engine.image_remove("busybox")
    with pytest.raises(Conflict, match="stopped container c0ffeec0ffee"):
        engine.image_remove(busybox)
    assert engine.image_prune(all=True) == []
    assert engine.image_remove("busybox", force=True) == ["Untagged: busybox:latest"]
    assert engine._image_layer_dirs(busybox)  # content kept for the container
    assert engine.image_inspect(busybox).repo_tags == ()


def test_shared_layers_survive_and_prune(engine: LocalEngine, busybox: str,
                                         busybox_tar: Path) -> None:
    newer = engine.image_import(str(busybox_tar), "busybox").id  # busybox moves: old dangles
    assert newer != busybox
    assert engine.image_inspect(busybox).repo_tags == ()
    assert [im.id for im in engine.image_list()] == [newer, busybox]
    assert engine.image_prune() == [busybox]
    assert engine._image_layer_dirs(newer)[0].is_dir()  # shared layer kept
    assert engine.image_prune() == []
    lines, freed = engine._image_prune_report(all=True)
    assert lines[-1] == f"Deleted: {newer}" and freed > 1_000_000
    assert engine.image_list() == [] and _layer_count(engine) == 0


def test_events_are_journaled(engine: LocalEngine, busybox: str) -> None:
    engine.image_tag("busybox", "x:1")
    engine.image_remove("x:1")
    actions = [(e.type, e.action) for e in engine.events()]
    assert ("image", "import") in actions and ("image", "tag") in actions
    assert ("image", "untag") in actions
    tagged = [e for e in engine.events() if e.action == "tag"]
    assert dict(tagged[-1].attributes)["name"] == "x:1" and tagged[-1].id == busybox


def _worker(root: str, tarball: str, name: str, rounds: int) -> None:
    engine = LocalEngine(root)
    for i in range(rounds):
        image = engine.image_import(tarball, f"{name}:{i}")
        engine.image_tag(image.id, f"shared:{name}-{i}")
    for i in range(30):  # tight read-modify-write loop: loses updates without the lock
        engine.image_tag(f"{name}:0", f"hammer:{name}-{i}")


def test_concurrent_imports_and_tags_do_not_corrupt_the_index(engine_root: Path,
                                                               busybox_tar: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # never fork a threaded pytest
    procs = [ctx.Process(target=_worker, args=(str(engine_root), str(busybox_tar), n, 3))
             for n in ("alpha", "beta")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    engine = LocalEngine(engine_root)
    tags = {t for im in engine.image_list() for t in im.repo_tags}
    expected = {f"{n}:{i}" for n in ("alpha", "beta") for i in range(3)}
    expected |= {f"shared:{n}-{i}" for n in ("alpha", "beta") for i in range(3)}
    expected |= {f"hammer:{n}-{i}" for n in ("alpha", "beta") for i in range(30)}
    assert tags == expected
    assert len(engine.image_list()) == 6
    for image in engine.image_list():
        assert engine._image_layer_dirs(image.id)[0].is_dir()
    assert _layer_count(engine) == 1


def test_decompression_bomb_leaves_nothing(engine: LocalEngine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.images import layers

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        ti = tarfile.TarInfo("zeros")
        ti.size = 16 << 20
        tar.addfile(ti, io.BytesIO(b"\0" * ti.size))
    bomb = gzip.compress(out.getvalue(), 9)
    monkeypatch.setattr(layers, "FLOOR", 1 << 20)
    with pytest.raises(InvalidArgument, match="limit"):
        engine.image_import(io.BytesIO(bomb), "bomb")
    assert engine.image_list() == [] and engine._image_blobs.all() == []
    assert [p for p in engine.store.path("layers").iterdir()] == []


def test_real_container_blocks_removal(engine: LocalEngine, busybox: str) -> None:
    from engine.api import ContainerSpec

    container = engine.container_create(ContainerSpec(image="busybox", network_mode="none",
                                                      command=("true",)))
    try:
        assert engine._containers_using_image(busybox) == [container.id]
        with pytest.raises(Conflict, match=f"container {container.id[:12]} is using"):
            engine.image_remove("busybox")
        assert engine.image_prune(all=True) == []
    finally:
        engine.container_remove(container.id, force=True)
    assert engine.image_remove("busybox")[-1] == f"Deleted: {busybox}"


def _rewrite(archive: Path, edit: object) -> bytes:
    """Copy a tar archive, letting `edit(members)` change the {name: (TarInfo, bytes)} map."""
    with tarfile.open(archive) as tar:
        members = {m.name: (m, tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                   for m in tar.getmembers()}
    edit(members)  # type: ignore[operator]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for ti, data in members.values():
            ti.size = len(data) if ti.isreg() else 0
            tar.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return out.getvalue()


def test_load_docker25_combined_layout(engine: LocalEngine, busybox: str,
                                       tmp_path: Path) -> None:
    archive = tmp_path / "oci.tar"
    engine.image_save(["busybox"], str(archive), format="oci")
    diff_id = engine.image_inspect(busybox).diff_ids[0]

    def add_manifest(members: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
        manifest = json.dumps([{"Config": f"blobs/sha256/{busybox[7:]}",
                                "RepoTags": ["combined:1"],
                                "Layers": [f"blobs/sha256/{diff_id[7:]}"]}]).encode()
        members["manifest.json"] = (tarfile.TarInfo("manifest.json"), manifest)

    other = LocalEngine(tmp_path / "other")
    (image,) = other.image_load(io.BytesIO(_rewrite(archive, add_manifest)))
    assert image.id == busybox and image.repo_tags == ("combined:1",)


def test_load_legacy_symlinked_layer(engine: LocalEngine, busybox: str,
                                     tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    engine.image_save(["busybox"], str(archive))

    def symlink_layer(members: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
        manifest = json.loads(members["manifest.json"][1])
        real = manifest[0]["Layers"][0]
        link = tarfile.TarInfo("dup/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, f"../{real}"
        members["dup/layer.tar"] = (link, b"")
        manifest[0]["Layers"] = ["dup/layer.tar"]
        members["manifest.json"] = (members["manifest.json"][0], json.dumps(manifest).encode())

    other = LocalEngine(tmp_path / "other")
    assert other.image_load(io.BytesIO(_rewrite(archive, symlink_layer)))[0].id == busybox


def test_system_info_df_prune_and_events(engine: LocalEngine, busybox: str) -> None:
    import time

    from engine.api import ContainerSpec

    start = time.time()
    container = engine.container_create(ContainerSpec(image="busybox", network_mode="none",
                                                      command=("true",)))
    try:
        info = engine.info()
        assert (info["Containers"], info["ContainersStopped"], info["Images"]) == (1, 1, 1)
        assert info["DockerRootDir"] == str(engine.store.root)
        df = engine._system_df()
        assert (df["images"]["total"], df["images"]["active"]) == (1, 1)
        assert df["images"]["reclaimable"] == 0 and df["images"]["size"] > 1_000_000
        assert df["containers"]["total"] == 1 and df["containers"]["active"] == 0
        report = engine._system_prune(all=True)
    finally:
        if engine._containers_using_image(busybox):
            engine.container_remove(container.id, force=True)
    assert report["containers"] == [container.id]
    assert report["images"][-1] == f"Deleted: {busybox}" and report["reclaimed"] > 1_000_000
    assert engine.image_list() == [] and engine.container_list(all=True) == []
    seen = [(e.type, e.action) for e in engine.events(since=start, until=time.time() + 0.3,
                                                      follow=True)]
    assert ("image", "delete") in seen and ("image", "prune") in seen


@pytest.mark.parametrize("compress", ["gzip", "xz"])
def test_compressed_layers_save_as_oci(engine: LocalEngine, busybox_tar: Path, tmp_path: Path,
                                       compress: str) -> None:
    import lzma

    raw = busybox_tar.read_bytes()
    data = gzip.compress(raw, 1) if compress == "gzip" else lzma.compress(raw, preset=0)
    image = engine.image_import(io.BytesIO(data), f"bb:{compress}")
    (blob,) = engine._image_layer_blobs(image.id)
    assert blob["compression"] == compress and blob["diff_id"] == image.diff_ids[0]
    archive = tmp_path / "oci.tar"
    engine.image_save([f"bb:{compress}"], str(archive), format="oci")
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile(  # type: ignore[union-attr]
            "blobs/sha256/" + index["manifests"][0]["digest"][7:]).read())
    media = manifest["layers"][0]["mediaType"]
    assert media.endswith("+gzip") if compress == "gzip" else media.endswith(".tar")
    other = LocalEngine(tmp_path / "other")
    assert other.image_load(str(archive))[0].id == image.id
    assert other.image_inspect(f"bb:{compress}").diff_ids == image.diff_ids
