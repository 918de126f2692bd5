"""Seccomp for containers: Docker's JSON profile format compiled to a classic BPF program.

Which profile (`profile_for`): Docker's default (`seccomp_default.json`, moby's
`profiles/seccomp/default.json`, Apache-2.0, see NOTICE-seccomp) unless `security_opt`
says `seccomp=unconfined` (none), `seccomp=<path to JSON>` or `seccomp=<JSON text>`;
`privileged: true` disables seccomp, as Docker does.

The compiler (`compile_profile`) is stdlib only and targets x86_64 hosts: a linear program
that dispatches on the architecture (x86_64, its i386 compat ABI; anything else gets EPERM),
returns ENOSYS for x32 numbers and for any number above the largest one the profile names
(runc's stub, so new libc code paths fall back instead of failing), then one block per
syscall. Rules are filtered by `includes`/`excludes` (caps, arches, minKernel) as moby
does; rules with `args` compare the full 64-bit values; several conditions on one argument
index become separate rules (runc). Names a section's table lacks are skipped there.

Programs are compiled once per (profile, caps, arch, kernel, compiler version) and cached
as bytes under `<data root>/seccomp/` (`program_for`). `install` loads one in the calling
process with a single prctl(PR_SET_SECCOMP); it needs CAP_SYS_ADMIN since no_new_privs
stays off (Docker leaves it off), so callers load it before dropping capabilities.
On a host that is not x86_64, seccomp is skipped with a one-time warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api import InvalidArgument
from engine.runtime.syscalls_x86_64 import I386_SYSCALLS, X86_64_SYSCALLS

if TYPE_CHECKING:
    from engine.store import Store

COMPILER_VERSION = "2"
DEFAULT_PROFILE_PATH = Path(__file__).with_name("seccomp_default.json")
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000
EPERM, ENOSYS = 1, 38
MAX_INSNS = 4096  # BPF_MAXINSNS

# Classic BPF opcodes (linux/filter.h).
LD_ABS_W = 0x20
ALU_AND_K = 0x54
JMP_JA = 0x05
JMP_JEQ_K = 0x15
JMP_JGT_K = 0x25
JMP_JGE_K = 0x35
RET_K = 0x06

# struct seccomp_data: nr at 0, arch at 4, instruction_pointer at 8, args[6] at 16.
OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

GO_ARCH = {"x86_64": "amd64"}
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2

log = logging.getLogger(__name__)
_warned_arch = False


def _action(name: str, errno_ret: int | None, default_errno: int) -> int:
    if name == "SCMP_ACT_ALLOW":
        return RET_ALLOW
    if name == "SCMP_ACT_ERRNO":
        return RET_ERRNO | ((default_errno if errno_ret is None else errno_ret) & 0xFFFF)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return RET_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return RET_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return RET_TRAP
    if name == "SCMP_ACT_TRACE":
        return RET_TRACE | ((errno_ret or 0) & 0xFFFF)
    if name == "SCMP_ACT_LOG":
        return RET_LOG
    raise InvalidArgument(f"seccomp profile: unsupported action {name!r}")


class _Asm:
    """A classic BPF program with symbolic jump targets, resolved by `assemble`."""

    def __init__(self) -> None:
        self.insns: list[tuple[int, Any, Any, int]] = []  # (code, jt, jf, k); jt/jf labels
        self.labels: dict[str, int] = {}
        self._n = 0

    def new_label(self) -> str:
        self._n += 1
        return f"L{self._n}"

    def place(self, label: str) -> None:
        self.labels[label] = len(self.insns)

    def emit(self, code: int, k: int = 0, jt: str | None = None, jf: str | None = None) -> None:
        self.insns.append((code, jt, jf, k & 0xFFFFFFFF))

    def load(self, offset: int) -> None:
        self.emit(LD_ABS_W, offset)

    def ret(self, value: int) -> None:
        self.emit(RET_K, value)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.insns):
            if code == JMP_JA:
                k = self._offset(pc, jt, limit=0xFFFFFFFF)
                jt = jf = 0
            elif code & 0x07 == 0x05:  # conditional jump
                jt, jf = self._offset(pc, jt), self._offset(pc, jf)
            else:
                jt = jf = 0
            out += struct.pack("=HBBI", code, jt, jf, k)
        if len(out) // 8 > MAX_INSNS:
            raise InvalidArgument(f"seccomp profile compiles to {len(out) // 8} instructions, "
                                  f"more than the kernel's limit of {MAX_INSNS}")
        return bytes(out)

    def _offset(self, pc: int, label: str | None, limit: int = 255) -> int:
        if label is None:
            return 0
        off = self.labels[label] - pc - 1
        if not 0 <= off <= limit:
            raise InvalidArgument(f"seccomp profile: a jump of {off} instructions does not fit")
        return off


def _emit_condition(asm: _Asm, cond: dict[str, Any], fail: str) -> None:
    """Fall through when syscall argument `index` satisfies `cond`, else jump to `fail`."""
    index = int(cond.get("index", 0))
    if not 0 <= index < 6:
        raise InvalidArgument(f"seccomp profile: argument index {index} out of range")
    value, two = int(cond.get("value", 0)), int(cond.get("valueTwo", 0))
    op = cond.get("op", "")
    lo_off, hi_off = OFF_ARGS + 8 * index, OFF_ARGS + 8 * index + 4
    v_lo, v_hi = value & 0xFFFFFFFF, value >> 32 & 0xFFFFFFFF
    ok = asm.new_label()
    if op == "SCMP_CMP_EQ":
        asm.load(hi_off)
        asm.emit(JMP_JEQ_K, v_hi, None, fail)
        asm.load(lo_off)
        asm.emit(JMP_JEQ_K, v_lo, None, fail)
    elif op == "SCMP_CMP_NE":
        low = asm.new_label()
        asm.load(hi_off)
        asm.emit(JMP_JEQ_K, v_hi, low, ok)
        asm.place(low)
        asm.load(lo_off)
        asm.emit(JMP_JEQ_K, v_lo, fail, ok)
    elif op == "SCMP_CMP_MASKED_EQ":
        t_lo, t_hi = two & 0xFFFFFFFF, two >> 32 & 0xFFFFFFFF
        asm.load(hi_off)
        asm.emit(ALU_AND_K, v_hi)
        asm.emit(JMP_JEQ_K, t_hi, None, fail)
        asm.load(lo_off)
        asm.emit(ALU_AND_K, v_lo)
        asm.emit(JMP_JEQ_K, t_lo, None, fail)
    elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        asm.load(hi_off)
        asm.emit(JMP_JGT_K, v_hi, ok, None)
        asm.emit(JMP_JEQ_K, v_hi, None, fail)
        asm.load(lo_off)
        asm.emit(JMP_JGT_K if op == "SCMP_CMP_GT" else JMP_JGE_K, v_lo, ok, fail)
    elif op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        asm.load(hi_off)
        asm.emit(JMP_JGT_K, v_hi, fail, None)
        asm.emit(JMP_JEQ_K, v_hi, None, ok)
        asm.load(lo_off)
        asm.emit(JMP_JGE_K if op == "SCMP_CMP_LT" else JMP_JGT_K, v_lo, fail, ok)
    else:
        raise InvalidArgument(f"seccomp profile: unsupported argument operator {op!r}")
    asm.place(ok)


def _kernel_at_least(wanted: str, kernel: tuple[int, int]) -> bool:
    try:
        parts = tuple(int(p) for p in wanted.split(".")[:2])
    except ValueError:
        raise InvalidArgument(f"seccomp profile: invalid minKernel {wanted!r}")
    return kernel >= (parts + (0,))[:2]


def host_kernel() -> tuple[int, int]:
    release = platform.release().split("-")[0].split(".")
    try:
        return int(release[0]), int(release[1])
    except (IndexError, ValueError):
        return (0, 0)


def _applies(rule: dict[str, Any], caps: set[str], go_arch: str,
             kernel: tuple[int, int]) -> bool:
    """moby's seccomp setupSeccomp filter: includes (all of) and excludes (any of)."""
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or ()):
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], kernel):
        return False
    if exc.get("arches") and go_arch in exc["arches"]:
        return False
    if any(c in caps for c in exc.get("caps") or ()):
        return False
    return not (exc.get("minKernel") and _kernel_at_least(exc["minKernel"], kernel))


def _split_args(args: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One AND-ed rule, or (several conditions on one index) one rule per condition."""
    indexes = [int(a.get("index", 0)) for a in args]
    if len(set(indexes)) < len(indexes):
        return [[a] for a in args]
    return [list(args)]


Rules = tuple[dict[int, list[tuple[list[dict[str, Any]], int]]], dict[int, int]]


def _collect(applied: list[tuple[dict[str, Any], int]], table: dict[str, int]) -> Rules:
    """Per syscall number of `table`: conditional rules [(conditions, action)] and the
    action of an unconditional rule."""
    conditional: dict[int, list[tuple[list[dict[str, Any]], int]]] = {}
    unconditional: dict[int, int] = {}
    for rule, action in applied:
        names = list(rule.get("names") or ()) + ([rule["name"]] if rule.get("name") else [])
        for name in names:
            nr = table.get(name)
            if nr is None:
                continue  # not a syscall of this ABI (32-bit only, other arch, unknown)
            if rule.get("args"):
                for conds in _split_args(rule["args"]):
                    conditional.setdefault(nr, []).append((conds, action))
            else:
                unconditional.setdefault(nr, action)
    return conditional, unconditional


def _emit_section(asm: _Asm, rules: Rules, default: int, x32_check: bool) -> None:
    """The checks for one ABI; A holds seccomp_data.arch on entry, every path ends in ret."""
    conditional, unconditional = rules
    named = set(conditional) | set(unconditional)
    asm.load(OFF_NR)
    enosys, body = asm.new_label(), asm.new_label()
    if x32_check:
        asm.emit(JMP_JGE_K, X32_SYSCALL_BIT, enosys, None)
    if default != RET_ALLOW and named:
        asm.emit(JMP_JGT_K, max(named), enosys, None)
    asm.emit(JMP_JA, jt=body)
    asm.place(enosys)
    asm.ret(RET_ERRNO | ENOSYS)
    asm.place(body)

    # Unconditional syscalls, grouped by action: chains of jeq to one shared ret.
    by_action: dict[int, list[int]] = {}
    for nr, action in sorted(unconditional.items()):
        if nr not in conditional and action != default:
            by_action.setdefault(action, []).append(nr)
    for action, nrs in by_action.items():
        for start in range(0, len(nrs), 200):
            hit, miss = asm.new_label(), asm.new_label()
            for nr in nrs[start:start + 200]:
                asm.emit(JMP_JEQ_K, nr, hit, None)
            asm.emit(JMP_JA, jt=miss)
            asm.place(hit)
            asm.ret(action)
            asm.place(miss)

    # Syscalls with argument rules: A holds nr until a block is entered, and every block
    # ends in a ret, so the next jeq still compares the number.
    for nr in sorted(conditional):
        block, after = asm.new_label(), asm.new_label()
        asm.emit(JMP_JEQ_K, nr, block, None)
        asm.emit(JMP_JA, jt=after)
        asm.place(block)
        for conds, action in conditional[nr]:
            next_rule = asm.new_label()
            for cond in conds:
                _emit_condition(asm, cond, next_rule)
            asm.ret(action)
            asm.place(next_rule)
        asm.ret(unconditional.get(nr, default))
        asm.place(after)
    asm.ret(default)


def compile_profile(profile: dict[str, Any], caps: Iterable[str], *, arch: str = "x86_64",
                    kernel: tuple[int, int] | None = None) -> bytes:
    """Docker's JSON seccomp profile -> a BPF program (sock_filter array) for `arch`.

    On x86_64 the program has two sections, like libseccomp's filter for x86_64 with its
    sub-architecture x86: native syscalls and i386 (int 0x80, 32-bit programs). Which
    rules apply is decided for the native arch, as moby does; each section then resolves
    the names in its own table. x32 syscalls get ENOSYS; any other arch gets EPERM.
    """
    if arch != "x86_64":
        raise InvalidArgument(f"seccomp: architecture {arch} is not supported")
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls") or [], list):
        raise InvalidArgument("seccomp profile: not a JSON object with a syscalls list")
    capset = set(caps)
    kernel = kernel or host_kernel()
    go_arch = GO_ARCH[arch]
    default_errno = int(profile.get("defaultErrnoRet") or EPERM)
    default = _action(str(profile.get("defaultAction", "")), None, default_errno)
    applied = [(rule, _action(str(rule.get("action", "")), rule.get("errnoRet"), default_errno))
               for rule in profile.get("syscalls") or [] if _applies(rule, capset, go_arch, kernel)]

    asm = _Asm()
    native, compat, foreign = asm.new_label(), asm.new_label(), asm.new_label()
    asm.load(OFF_ARCH)
    asm.emit(JMP_JEQ_K, AUDIT_ARCH_X86_64, native, None)
    asm.emit(JMP_JEQ_K, AUDIT_ARCH_I386, None, foreign)
    asm.emit(JMP_JA, jt=compat)
    asm.place(foreign)
    asm.ret(RET_ERRNO | EPERM)
    asm.place(native)
    _emit_section(asm, _collect(applied, X86_64_SYSCALLS), default, x32_check=True)
    asm.place(compat)
    _emit_section(asm, _collect(applied, I386_SYSCALLS), default, x32_check=False)
    return asm.assemble()


def load_profile_text(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"decoding seccomp profile ({origin}) failed: {exc}") from None
    if not isinstance(data, dict) or "defaultAction" not in data:
        raise InvalidArgument(f"decoding seccomp profile ({origin}) failed: "
                              "a JSON object with defaultAction is expected")
    if data.get("listenerPath") or any(
            (r or {}).get("action") == "SCMP_ACT_NOTIFY" for r in data.get("syscalls") or []):
        raise InvalidArgument(f"seccomp profile ({origin}): SCMP_ACT_NOTIFY is not supported")
    return data


def default_profile() -> dict[str, Any]:
    return load_profile_text(DEFAULT_PROFILE_PATH.read_text(), "default")


def profile_for(security_opt: Iterable[str], privileged: bool = False) -> dict[str, Any] | None:
    """The profile a container gets, or None for no seccomp (unconfined, privileged)."""
    choice = "builtin"
    for opt in security_opt:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key.strip() == "seccomp":
            if not value.strip():
                raise InvalidArgument(f"invalid --security-opt: {opt!r}")
            choice = value.strip()
    if choice == "unconfined" or privileged:
        return None
    if choice == "builtin":
        return default_profile()
    if choice.startswith("{"):
        return load_profile_text(choice, "inline")
    try:
        text = Path(choice).read_text()
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({choice}) failed: "
                              f"{exc.strerror or exc}") from None
    return load_profile_text(text, choice)


def cache_key(profile: dict[str, Any], caps: Iterable[str], arch: str,
              kernel: tuple[int, int]) -> str:
    digest = hashlib.sha256()
    for part in (COMPILER_VERSION, arch, f"{kernel[0]}.{kernel[1]}", ",".join(sorted(set(caps))),
                 json.dumps(profile, sort_keys=True, separators=(",", ":"))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def program_for(store: Store | None, security_opt: Iterable[str], privileged: bool,
                caps: Iterable[str]) -> bytes | None:
    """The compiled filter for a container (cached under the data root), or None."""
    global _warned_arch
    profile = profile_for(security_opt, privileged)
    if profile is None:
        return None
    arch = platform.machine()
    if arch != "x86_64":
        if not _warned_arch:
            log.warning("seccomp is not supported on %s: containers run without it", arch)
            _warned_arch = True
        return None
    caps = set(caps)
    kernel = host_kernel()
    if store is None:
        return compile_profile(profile, caps, arch=arch, kernel=kernel)
    path = store.path("seccomp", cache_key(profile, caps, arch, kernel) + ".bpf")
    try:
        program = path.read_bytes()
        if program and len(program) % 8 == 0:
            return program
    except OSError:
        pass
    program = compile_profile(profile, caps, arch=arch, kernel=kernel)
    from engine.store.store import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, program)
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)


def install(program: bytes) -> None:
    """Load `program` as a seccomp filter of the calling thread (inherited across exec)."""
    if not program or len(program) % 8:
        raise ValueError("a seccomp program is a non-empty array of 8-byte instructions")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog),
                   ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"loading the seccomp filter failed: {os.strerror(err)}")
