"""rootfs.prepare on an image whose /dev or /proc is a symlink to a host path: every
write (device nodes, sysctls, masks) lands inside the container's rootfs, never on the host."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import pytest

from engine.runtime import rootfs
from engine.runtime import syscalls as sc

pytestmark = pytest.mark.root


def _prepare_in_child(plan: rootfs.RootfsPlan, errors: Path) -> int:
    """Run prepare in a forked child with its own mount namespace; its exit status."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sc.unshare(sc.CLONE_NEWNS)
            rootfs.prepare(plan)
        except BaseException:
            errors.write_text(traceback.format_exc())
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _image(tmp: Path, link: str, victim: Path) -> Path:
    """A lower layer where `link` is an absolute symlink to `victim`, which the image
    also has (so it resolves inside the rootfs too, like `dev -> /tmp`)."""
    lower = tmp / "lower"
    for d in ("proc", "sys", "dev", str(victim).lstrip("/")):
        if d != link:
            (lower / d).mkdir(parents=True, exist_ok=True)
    os.symlink(str(victim), lower / link)  # the host would follow it out of the rootfs
    return lower


def _plan(tmp: Path, lower: Path, **kw: object) -> rootfs.RootfsPlan:
    for d in ("upper", "work", "merged"):
        (tmp / d).mkdir()
    return rootfs.RootfsPlan(merged=str(tmp / "merged"), lowerdirs=(str(lower),),
                             upper=str(tmp / "upper"), work=str(tmp / "work"),
                             **kw)  # type: ignore[arg-type]


def test_image_dev_symlink_does_not_put_device_nodes_on_the_host(tmp_path: Path) -> None:
    victim = tmp_path / "host-victim"
    victim.mkdir()
    lower = _image(tmp_path, "dev", victim)
    errors = tmp_path / "errors.txt"
    code = _prepare_in_child(_plan(tmp_path, lower), errors)
    assert code == 0, errors.read_text() if errors.exists() else code
    assert sorted(os.listdir(victim)) == []


def test_image_proc_symlink_does_not_redirect_sysctls_to_the_host(tmp_path: Path) -> None:
    victim = tmp_path / "host-victim"
    (victim / "sys" / "kernel").mkdir(parents=True)
    (victim / "sys" / "kernel" / "domainname").write_text("untouched\n")
    lower = _image(tmp_path, "proc", victim)
    errors = tmp_path / "errors.txt"
    plan = _plan(tmp_path, lower, sysctls=(("kernel.domainname", "pct-review"),),
                 mount_sys=False)
    pid = os.fork()
    if pid == 0:  # a UTS namespace of its own so the sysctl never touches the host's
        try:
            sc.unshare(sc.CLONE_NEWUTS)
        finally:
            code = _prepare_in_child(plan, errors)
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, errors.read_text() if errors.exists() else code
    assert (victim / "sys" / "kernel" / "domainname").read_text() == "untouched\n"
