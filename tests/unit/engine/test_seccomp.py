"""The seccomp compiler: Docker's JSON profile -> classic BPF, checked by running the
program in a small interpreter over syscalls the profile allows, denies or filters."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from engine.api import InvalidArgument
from engine.runtime import seccomp
from engine.runtime.caps import DEFAULT_CAPS
from engine.runtime.syscalls_x86_64 import I386_SYSCALLS as NR32
from engine.runtime.syscalls_x86_64 import X86_64_SYSCALLS as NR
from engine.store import Store

ALLOW, EPERM, ENOSYS = seccomp.RET_ALLOW, seccomp.RET_ERRNO | 1, seccomp.RET_ERRNO | 38
X86_64, I386, AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7
KERNEL = (6, 1)


def run_bpf(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = X86_64) -> int:
    """Execute a seccomp filter on struct seccomp_data like the kernel; its return value."""
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("=iIQ6Q", nr, arch, 0, *full)
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a, pc = 0, 0
    for _ in range(len(insns) + 1):
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == seccomp.LD_ABS_W:
            a = struct.unpack_from("=I", data, k)[0]
        elif code == seccomp.ALU_AND_K:
            a &= k
        elif code == seccomp.JMP_JA:
            pc += k
        elif code in (seccomp.JMP_JEQ_K, seccomp.JMP_JGT_K, seccomp.JMP_JGE_K):
            taken = {seccomp.JMP_JEQ_K: a == k, seccomp.JMP_JGT_K: a > k,
                     seccomp.JMP_JGE_K: a >= k}[code]
            pc += jt if taken else jf
        elif code == seccomp.RET_K:
            return int(k)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("the program does not terminate")


@pytest.fixture(scope="module")
def default_prog() -> bytes:
    return seccomp.compile_profile(seccomp.default_profile(), DEFAULT_CAPS, kernel=KERNEL)


def test_program_shape(default_prog: bytes) -> None:
    assert len(default_prog) % 8 == 0
    n = len(default_prog) // 8
    assert 300 < n < seccomp.MAX_INSNS
    first = [struct.unpack_from("=HBBI", default_prog, i * 8) for i in range(5)]
    assert first[0] == (seccomp.LD_ABS_W, 0, 0, 4)  # seccomp_data.arch
    assert first[1][0] == seccomp.JMP_JEQ_K and first[1][3] == X86_64
    assert first[2] == (seccomp.JMP_JEQ_K, 0, 1, I386)  # else to the EPERM below
    assert first[3][0] == seccomp.JMP_JA  # to the i386 section
    assert first[4] == (seccomp.RET_K, 0, 0, EPERM)
    last = struct.unpack_from("=HBBI", default_prog, (n - 1) * 8)
    assert last == (seccomp.RET_K, 0, 0, EPERM)  # defaultAction ERRNO, defaultErrnoRet 1


def test_default_profile_is_dockers() -> None:
    prof = seccomp.default_profile()
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == 1
    assert len(prof["syscalls"]) == 31
    assert len(prof["syscalls"][0]["names"]) == 361  # unconditional allow list
    assert "Apache" in (Path(seccomp.__file__).with_name("NOTICE-seccomp")).read_text()


def test_allow_deny_and_foreign_arch(default_prog: bytes) -> None:
    for name in ("read", "write", "execve", "capset", "prctl", "setresuid", "close_range",
                 "mseal", "fchmodat2", "chroot", "arch_prctl", "ptrace"):
        assert run_bpf(default_prog, NR[name]) == ALLOW, name
    for name in ("keyctl", "add_key", "unshare", "mount", "setns", "bpf", "reboot",
                 "kexec_load", "userfaultfd", "open_by_handle_at", "io_uring_setup"):
        assert run_bpf(default_prog, NR[name]) == EPERM, name
    assert run_bpf(default_prog, NR["read"], arch=AARCH64) == EPERM


def test_i386_section(default_prog: bytes) -> None:
    """32-bit programs (and int 0x80) use the i386 numbers, with the same rules."""
    for name in ("read", "socketcall", "chown32", "_llseek", "modify_ldt", "mseal"):
        assert run_bpf(default_prog, NR32[name], arch=I386) == ALLOW, name
    for name in ("keyctl", "unshare", "mount", "kexec_load"):
        assert run_bpf(default_prog, NR32[name], arch=I386) == EPERM, name
    assert NR32["keyctl"] != NR["keyctl"]
    assert run_bpf(default_prog, NR32["clone3"], arch=I386) == ENOSYS
    assert run_bpf(default_prog, 1000, arch=I386) == ENOSYS
    assert run_bpf(default_prog, NR32["personality"], (0x0400000,), arch=I386) == EPERM
    assert run_bpf(default_prog, NR32["personality"], (0xFFFFFFFF,), arch=I386) == ALLOW
    assert run_bpf(default_prog, NR32["clone"], (0x10000011,), arch=I386) == EPERM
    assert "socketcall" not in NR and "uretprobe" not in NR32


def test_enosys_for_clone3_new_and_x32_syscalls(default_prog: bytes) -> None:
    assert run_bpf(default_prog, NR["clone3"]) == ENOSYS  # profile's errnoRet 38
    largest = max(NR[n] for r in seccomp.default_profile()["syscalls"]
                  for n in r["names"] if n in NR)
    assert run_bpf(default_prog, largest + 1) == ENOSYS  # runc's stub
    assert run_bpf(default_prog, 1000) == ENOSYS
    assert run_bpf(default_prog, seccomp.X32_SYSCALL_BIT | NR["read"]) == ENOSYS
    assert run_bpf(default_prog, largest) == ALLOW


def test_argument_filters(default_prog: bytes) -> None:
    pers = NR["personality"]
    for ok in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run_bpf(default_prog, pers, (ok,)) == ALLOW, hex(ok)
    assert run_bpf(default_prog, pers, (0x0400000,)) == EPERM  # READ_IMPLIES_EXEC
    assert run_bpf(default_prog, pers, (0xFFFFFFFF_FFFFFFFF,)) == EPERM  # full 64 bits
    clone = NR["clone"]
    assert run_bpf(default_prog, clone, (0x01200011,)) == ALLOW  # fork()'s flags
    for ns_flag in (0x10000000, 0x20000000, 0x00020000, 0x04000000, 0x40000000):
        assert run_bpf(default_prog, clone, (ns_flag | 17,)) == EPERM, hex(ns_flag)
    socket = NR["socket"]
    assert run_bpf(default_prog, socket, (2,)) == ALLOW
    assert run_bpf(default_prog, socket, (40,)) == EPERM  # AF_VSOCK
    assert run_bpf(default_prog, socket, (40 | 1 << 32,)) == ALLOW  # NE on 64 bits


def test_capability_dependent_rules() -> None:
    admin = seccomp.compile_profile(seccomp.default_profile(), DEFAULT_CAPS | {"CAP_SYS_ADMIN"},
                                    kernel=KERNEL)
    for name in ("mount", "unshare", "setns", "clone3", "sethostname"):
        assert run_bpf(admin, NR[name]) == ALLOW, name
    assert run_bpf(admin, NR["clone"], (0x10000000 | 17,)) == ALLOW  # mask rule excluded
    no_chroot = seccomp.compile_profile(seccomp.default_profile(),
                                        DEFAULT_CAPS - {"CAP_SYS_CHROOT"}, kernel=KERNEL)
    assert run_bpf(no_chroot, NR["chroot"]) == EPERM
    ptrace = seccomp.compile_profile(seccomp.default_profile(), DEFAULT_CAPS | {"CAP_SYS_PTRACE"},
                                     kernel=KERNEL)
    assert run_bpf(ptrace, NR["kcmp"]) == ALLOW
    old_kernel = seccomp.compile_profile(seccomp.default_profile(), DEFAULT_CAPS, kernel=(4, 4))
    assert run_bpf(old_kernel, NR["ptrace"]) == EPERM  # includes.minKernel 4.8


def test_comparison_operators() -> None:
    def prog(op: str, value: int, two: int = 0) -> bytes:
        return seccomp.compile_profile({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["dup"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]},
            set(), kernel=KERNEL)

    big = 1 << 33
    cases = {"SCMP_CMP_GT": lambda x: x > big, "SCMP_CMP_GE": lambda x: x >= big,
             "SCMP_CMP_LT": lambda x: x < big, "SCMP_CMP_LE": lambda x: x <= big,
             "SCMP_CMP_EQ": lambda x: x == big, "SCMP_CMP_NE": lambda x: x != big}
    for op, want in cases.items():
        p = prog(op, big)
        for x in (0, 5, big - 1, big, big + 1, big | 0xFFFFFFFF, 1 << 40):
            assert (run_bpf(p, NR["dup"], (0, x)) == ALLOW) == want(x), (op, x)
    masked = prog("SCMP_CMP_MASKED_EQ", 0xF0, 0x30)
    assert run_bpf(masked, NR["dup"], (0, 0x3F)) == ALLOW
    assert run_bpf(masked, NR["dup"], (0, 0x4F)) == EPERM


def test_same_index_conditions_are_alternatives_and_actions() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
        {"names": ["chown32", "no_such_call"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"name": "uname", "action": "SCMP_ACT_LOG"}]}
    p = seccomp.compile_profile(profile, set(), kernel=KERNEL)
    assert run_bpf(p, NR["kill"], (1, 9)) == seccomp.RET_ERRNO | 13
    assert run_bpf(p, NR["kill"], (1, 15)) == seccomp.RET_ERRNO | 13
    assert run_bpf(p, NR["kill"], (1, 2)) == ALLOW
    assert run_bpf(p, NR["uname"]) == seccomp.RET_LOG
    assert run_bpf(p, 1000) == ALLOW  # default allow: no ENOSYS stub
    assert run_bpf(p, seccomp.X32_SYSCALL_BIT | NR["kill"]) == ENOSYS  # no x32 bypass


def test_profile_choice(tmp_path: Path) -> None:
    assert seccomp.profile_for(()) == seccomp.default_profile()
    assert seccomp.profile_for(("seccomp=unconfined",)) is None
    assert seccomp.profile_for(("seccomp:unconfined",)) is None
    assert seccomp.profile_for((), privileged=True) is None
    custom = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    f = tmp_path / "p.json"
    f.write_text(json.dumps(custom))
    assert seccomp.profile_for((f"seccomp={f}",)) == custom
    assert seccomp.profile_for(("seccomp=" + json.dumps(custom),)) == custom
    with pytest.raises(InvalidArgument, match="opening seccomp profile"):
        seccomp.profile_for((f"seccomp={tmp_path / 'missing.json'}",))
    f.write_text("{not json")
    with pytest.raises(InvalidArgument, match="decoding seccomp profile"):
        seccomp.profile_for((f"seccomp={f}",))
    with pytest.raises(InvalidArgument, match="SCMP_ACT_NOTIFY"):
        seccomp.profile_for(("seccomp=" + json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                             "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}),))
    with pytest.raises(InvalidArgument, match="unsupported argument operator"):
        seccomp.compile_profile({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}, set())


def test_cache_key_and_cache(tmp_path: Path) -> None:
    prof = seccomp.default_profile()
    key = seccomp.cache_key(prof, DEFAULT_CAPS, "x86_64", KERNEL)
    assert key == seccomp.cache_key(dict(reversed(prof.items())), set(DEFAULT_CAPS),
                                    "x86_64", KERNEL)
    assert key != seccomp.cache_key(prof, DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, "x86_64", KERNEL)
    assert key != seccomp.cache_key(prof, DEFAULT_CAPS, "x86_64", (4, 4))
    assert key != seccomp.cache_key({**prof, "defaultErrnoRet": 38}, DEFAULT_CAPS, "x86_64",
                                    KERNEL)
    store = Store(tmp_path)
    first = seccomp.program_for(store, (), False, DEFAULT_CAPS)
    assert first is not None
    cached = list((tmp_path / "seccomp").glob("*.bpf"))
    assert len(cached) == 1 and cached[0].read_bytes() == first
    cached[0].write_bytes(b"\x06\x00\x00\x00\x00\x00\xff\x7f")  # served from the cache
    assert seccomp.program_for(store, (), False, DEFAULT_CAPS) == cached[0].read_bytes()
    assert seccomp.program_for(store, ("seccomp=unconfined",), False, DEFAULT_CAPS) is None
    assert seccomp.program_for(store, (), True, DEFAULT_CAPS) is None


def test_non_x86_64_host_skips_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(seccomp.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(seccomp, "_warned_arch", False)
    assert seccomp.program_for(None, (), False, DEFAULT_CAPS) is None
    assert seccomp.program_for(None, (), False, DEFAULT_CAPS) is None
    assert [r.levelname for r in caplog.records if "seccomp" in r.getMessage()] == ["WARNING"]
