"""pytest plugin: the whole run must leave nothing behind on the host.

At session start it snapshots what our engine can leave on a host (network links, named
netns, iptables/nft lines of ours and the built-in chains' policies, cgroup directories
of our parents, mounts, engine processes, the host-wide run directories). During the run
it learns what belongs to this session: the data roots its tests use (all under pytest's
basetemp), the container and network ids in their event journals, the cgroup parents the
fixtures set. At session end, after every fixture has been torn down, whatever is new
and ours is listed, swept (only what is clearly this session's) and fails the run.

Other sessions may run on the same host at the same time (engineers' partial runs). A
new resource that cannot be traced to this session is listed as "foreign"; it fails the
run only when no other test session was seen (as in CI) or with PYCOMPOSE_LEAKCHECK=strict;
what is traced to another live data root (its monitor, its registered bridge) is skipped.
PYCOMPOSE_LEAKCHECK=off disables the check; it never runs without root.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import hostscan, rootsweep

SETTLE_SECONDS = 5.0  # monitors and responders exit asynchronously after a remove
CONCURRENCY_EVERY = 3.0
SESSION_PROGRAMS = ("pytest", "py.test", "pycompose", "compose.cli.main")
DEFAULT_CGROUP_PARENT = "pycompose"
PLUGIN_NAME = "pycompose-leakcheck"
TAGGED = re.compile(r'pycompose:(\S+?)"')
# Python's own helper processes; they exit with the pytest process.
PYTHON_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
FOREIGN_SHOWN = 20


@dataclass
class Snapshot:
    links: dict[str, str]
    netns: set[str]
    rules: set[str]
    cgroups: set[str]
    mounts: set[str]
    procs: set[str]  # "pid:start"
    run: set[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(hostscan.links(), hostscan.netns(),
                   hostscan.iptables_lines() | hostscan.nft_lines(), hostscan.cgroup_dirs(),
                   {p for p, _ in hostscan.mounts()},
                   {p.key for p in hostscan.processes().values()}, hostscan.run_entries())


@dataclass
class Leak:
    kind: str
    what: str
    why: str  # how it was traced to this session, or "" when it could not be
    sweep: Any = None  # a callable that removes it (only for this session's leaks)


@dataclass
class Ownership:
    """What this session's tests created, learnt while they run."""

    basetemp: str
    roots: dict[str, str] = field(default_factory=dict)  # data root -> first test using it
    containers: dict[str, str] = field(default_factory=dict)  # id -> the test that made it
    networks: dict[str, str] = field(default_factory=dict)
    cgroup_parents: dict[str, str] = field(default_factory=dict)

    def learn_root(self, root: str, test: str = "") -> None:
        self.roots.setdefault(root, test)
        test = self.roots[root]
        events = Path(root, "events.jsonl")
        try:
            lines = events.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("type") == "container":
                self.containers.setdefault(str(record.get("id")), test)
            elif record.get("type") == "network":
                self.networks.setdefault(str(record.get("id")), test)
        for cid in rootsweep.container_ids(Path(root)):
            self.containers.setdefault(cid, test)
        for net in Path(root, "networks").glob("*.json"):
            self.networks.setdefault(net.stem, test)

    @property
    def bridges(self) -> dict[str, str]:
        return {f"pc-{n[:12]}": test for n, test in self.networks.items()}

    def veths(self) -> dict[str, str]:
        from engine.network.bridge import veth_name_for

        return {veth_name_for(c, n): test for c, test in self.containers.items()
                for n in self.networks}


class LeakCheck:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.before: Snapshot | None = None
        self.own: Ownership | None = None
        self.others: set[str] = set()
        self.last_concurrency_check = 0.0
        self.leaks: list[Leak] = []
        self.foreign: list[Leak] = []
        self.swept: list[str] = []
        self.fixture_sweeps: list[str] = []
        self.seconds = 0.0

    @property
    def strict(self) -> bool:
        return os.environ.get("PYCOMPOSE_LEAKCHECK") == "strict" or not self.others

    # ---------------------------------------------------------------- learning

    def _notice_other_sessions(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_concurrency_check < CONCURRENCY_EVERY:
            return
        self.last_concurrency_check = now
        procs = hostscan.processes()
        me = os.getpid()
        mine = hostscan.ancestors(me)
        for p in procs.values():
            if p.pid in mine or p.comm.startswith("pyc-"):
                continue
            if not _is_session(p.cmdline):
                continue
            if hostscan.descends_from(p, me, procs):
                continue
            self.others.add(f"{p.pid} {p.cmdline[:80]}")

    def _learn_item(self, item: pytest.Item) -> None:
        assert self.own is not None
        test = item.nodeid
        root = os.environ.get("PYCOMPOSE_ROOT")
        if root:
            self.own.learn_root(root, test)
        parent = os.environ.get("PYCOMPOSE_CGROUP_PARENT")
        if parent:
            self.own.cgroup_parents.setdefault(parent.strip("/"), test)
        for value in getattr(item, "funcargs", {}).values():
            try:
                root_attr = getattr(getattr(value, "store", None), "root", None)
                env = getattr(value, "env", None)
            except Exception:  # a fixture value with an unusual __getattr__
                continue
            if root_attr is not None:
                self.own.learn_root(str(root_attr), test)
            if isinstance(env, dict) and env.get("PYCOMPOSE_ROOT"):
                self.own.learn_root(str(env["PYCOMPOSE_ROOT"]), test)
            if isinstance(env, dict) and env.get("PYCOMPOSE_CGROUP_PARENT"):
                self.own.cgroup_parents.setdefault(
                    str(env["PYCOMPOSE_CGROUP_PARENT"]).strip("/"), test)
        tmp = getattr(item, "funcargs", {}).get("tmp_path")
        if isinstance(tmp, Path):
            for events in list(tmp.glob("events.jsonl")) + list(tmp.glob("*/events.jsonl")) \
                    + list(tmp.glob("*/*/events.jsonl")):
                self.own.learn_root(str(events.parent), test)

    # ---------------------------------------------------------------- hooks

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        started = time.monotonic()
        basetemp = str(self.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
        self.own = Ownership(basetemp)
        self.before = Snapshot.take()
        self._notice_other_sessions(force=True)
        self.seconds += time.monotonic() - started

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        started = time.monotonic()
        self._learn_item(item)
        self.seconds += time.monotonic() - started

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Any:
        started = time.monotonic()
        self._learn_item(item)  # before the fixtures delete their roots
        self._notice_other_sessions()
        self.seconds += time.monotonic() - started
        yield

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.before is None or self.own is None:
            return
        started = time.monotonic()
        for root in list(self.own.roots):
            if os.path.isdir(root):
                self.own.learn_root(root)
        self._notice_other_sessions(force=True)
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            leaks, foreign = self.find()
            if not leaks and (not foreign or not self.strict) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.leaks, self.foreign = leaks, foreign
        for leak in leaks:
            if leak.sweep is not None:
                try:
                    leak.sweep()
                    self.swept.append(f"{leak.kind} {leak.what}")
                except Exception as exc:  # report and carry on with the others
                    self.swept.append(f"{leak.kind} {leak.what}: sweep failed: {exc}")
        if (leaks or (foreign and self.strict)) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.seconds += time.monotonic() - started

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        if self.before is None:
            return
        if self.fixture_sweeps:
            tr.section("left by tests, removed by the engine_root fixture", sep="-")
            for line in self.fixture_sweeps:
                tr.write_line(f"  {line}")
        tr.write_line(f"leakcheck: {len(self.leaks)} leak(s) of this session, "
                      f"{len(self.foreign)} new resource(s) of unknown origin "
                      f"({self.seconds:.1f}s of checks)")
        if not self.leaks and not self.foreign:
            return
        if self.leaks:
            tr.section("LEAKS: this session left these on the host", sep="=", red=True)
            for leak in self.leaks:
                tr.write_line(f"  {leak.kind:<9} {leak.what}   [{leak.why}]")
            for line in self.swept:
                tr.write_line(f"  swept: {line}")
        if self.foreign:
            verdict = ("counted as leaks: no other test session was seen"
                       if self.strict else "not counted: other sessions ran meanwhile")
            tr.section(f"new host resources not traced to this session ({verdict})",
                       sep="-", red=self.strict, yellow=not self.strict)
            shown = FOREIGN_SHOWN if self.strict else FOREIGN_SHOWN // 4
            for leak in self.foreign[:shown]:
                tr.write_line(f"  {leak.kind:<9} {leak.what}")
            if len(self.foreign) > shown:
                tr.write_line(f"  ... and {len(self.foreign) - shown} more")
            for other in sorted(self.others)[:3]:
                tr.write_line(f"  (other session: {other})")

    # ---------------------------------------------------------------- the check

    def find(self) -> tuple[list[Leak], list[Leak]]:
        assert self.before is not None and self.own is not None
        found: list[Leak] = []
        found += self._processes()
        found += self._cgroups()
        found += self._links()
        found += self._simple("netns", hostscan.netns() - self.before.netns)
        found += self._rules()
        found += self._mounts()
        found += self._run_entries()
        return [f for f in found if f.why], [f for f in found if not f.why]

    def _processes(self) -> list[Leak]:
        assert self.before is not None and self.own is not None
        me = os.getpid()
        spare = hostscan.ancestors(me)
        procs = hostscan.processes()
        out = []
        for p in procs.values():
            if p.key in self.before.procs or p.pid in spare:
                continue
            cgroups = hostscan.proc_cgroups(p.pid)
            ours_cg = [c for c in cgroups if c.strip("/").startswith(hostscan.CGROUP_PARENT_PREFIX)]
            child = hostscan.descends_from(p, me, procs)
            if not (p.comm.startswith("pyc-") or ours_cg or child):
                continue
            if child and any(helper in p.cmdline for helper in PYTHON_HELPERS):
                continue  # ends with this process
            why = ""
            if child:
                why = "a child of this pytest process"
            elif any(hostscan.under(path, self.own.basetemp)
                     for path in hostscan.proc_paths(p.pid)):
                why = "holds a path under this session's basetemp"
            elif any(os.path.basename(c) in self.own.containers for c in ours_cg):
                cid = next(os.path.basename(c) for c in ours_cg
                           if os.path.basename(c) in self.own.containers)
                why = f"in the cgroup of a container made by {self.own.containers[cid]}"
            elif any(c.strip("/").split("/")[0] in self.own.cgroup_parents for c in ours_cg):
                why = "in a cgroup of this session"
            elif self._elsewhere(p.pid, procs):
                continue  # another data root's container: someone else's
            what = f"pid {p.pid} ({p.comm}) {p.cmdline[:100]}"
            sweep = (lambda p=p: rootsweep.kill_processes([p])) if why else None
            out.append(Leak("process", what, why, sweep))
        return out

    def _elsewhere(self, pid: int, procs: dict[int, hostscan.Proc]) -> bool:
        """Whether `pid` is, or runs under, an engine process serving another data root
        (one that is not under this session's basetemp)."""
        assert self.own is not None
        for _ in range(8):
            p = procs.get(pid)
            if p is None or pid <= 1:
                return False
            if p.comm.startswith("pyc-"):
                paths = [x for x in hostscan.proc_paths(pid) if "/containers/" in x
                         or x.endswith("/run/dns")]
                return bool(paths) and not any(
                    hostscan.under(x, self.own.basetemp) for x in paths)
            pid = p.ppid
        return False

    def _others_bridge(self, name: str, owners: dict[str, str]) -> bool:
        """A bridge registered by a data root that is not ours and still exists."""
        assert self.own is not None
        owner = owners.get(name, "")
        return bool(owner) and not hostscan.under(owner, self.own.basetemp) \
            and os.path.isdir(owner)

    def _cgroups(self) -> list[Leak]:
        assert self.before is not None and self.own is not None
        out = []
        procs = hostscan.processes()
        new = sorted(hostscan.cgroup_dirs() - self.before.cgroups,
                     key=lambda p: p.count("/"), reverse=True)
        for path in new:
            if not os.path.isdir(path):
                continue
            rel = path.split("/", 5)[-1]  # <parent>[/<container id>]
            parent, _, child = rel.partition("/")
            if parent == DEFAULT_CGROUP_PARENT and not child:
                continue  # the engine's own parent stays, as dockerd's `docker` group
            why = ""
            if child and child in self.own.containers:
                why = f"container made by {self.own.containers[child]}"
            elif parent in self.own.cgroup_parents:
                why = f"cgroup parent set by {self.own.cgroup_parents[parent]}"
            elif any(self._elsewhere(pid, procs) for pid in hostscan.cgroup_procs(path)):
                continue
            sweep = (lambda path=path: rootsweep.remove_cgroup(path)) if why else None
            out.append(Leak("cgroup", path, why, sweep))
        return out

    def _links(self) -> list[Leak]:
        assert self.before is not None and self.own is not None
        owners = hostscan.bridge_owners()
        bridges = self.own.bridges
        veths = self.own.veths()
        out = []
        for name, master in sorted(hostscan.links().items()):
            if name in self.before.links:
                continue
            why = ""
            owner = owners.get(name, "")
            if owner and hostscan.under(owner, self.own.basetemp):
                why = f"bridge of data root {owner}"
            elif name in bridges:
                why = f"bridge of a network made by {bridges[name]}"
            elif name in veths:
                why = f"veth of a container made by {veths[name]}"
            elif master and (master in bridges or hostscan.under(owners.get(master, "/-"),
                                                                  self.own.basetemp)):
                why = f"attached to this session's bridge {master}"
            elif self._others_bridge(name, owners) or self._others_bridge(master, owners):
                continue
            sweep = None
            if why and name.startswith("pc-"):
                def sweep(name: str = name) -> None:
                    from engine.network.bridge import destroy

                    destroy({"bridge": name})
            elif why:
                def sweep(name: str = name) -> None:
                    hostscan._run(["ip", "link", "del", name])
            out.append(Leak("link", f"{name}" + (f" (master {master})" if master else ""),
                            why, sweep))
        return out

    def _rules(self) -> list[Leak]:
        assert self.before is not None and self.own is not None
        now = hostscan.iptables_lines() | hostscan.nft_lines()
        bridges = self.own.bridges
        tags = {f"pycompose:{c[:12]}": test for c, test in self.own.containers.items()}
        owners = hostscan.bridge_owners()
        out = []
        for line in sorted(now - self.before.rules):
            why = ""
            bridge = next((b for b in bridges if f"pycompose:{b}" in line), None)
            tag = next((t for t in tags if t in line), None)
            sweep = None
            if bridge:
                why = f"bridge of a network made by {bridges[bridge]}"

                def sweep(bridge: str = bridge) -> None:
                    from engine.network import firewall

                    firewall.remove(bridge)
            elif tag:
                why = f"container made by {tags[tag]}"
            elif any(self._others_bridge(b, owners) for b in TAGGED.findall(line)):
                continue
            out.append(Leak("rule", line, why, sweep))
        for line in sorted(self.before.rules - now):
            if " policy " in line:  # a built-in chain's policy changed (e.g. FORWARD)
                out.append(Leak("rule", f"changed: was `{line}`", ""))
        return out

    def _mounts(self) -> list[Leak]:
        assert self.before is not None and self.own is not None
        out = []
        for point, fstype in hostscan.mounts():
            if point in self.before.mounts:
                continue
            why = "under this session's basetemp" if hostscan.under(
                point, self.own.basetemp) else ""
            sweep = (lambda point=point: rootsweep.unmount_under(Path(point))) if why else None
            out.append(Leak("mount", f"{point} ({fstype})", why, sweep))
        return out

    def _run_entries(self) -> list[Leak]:
        assert self.before is not None and self.own is not None
        out = []
        owners = hostscan.bridge_owners()
        for entry in sorted(hostscan.run_entries() - self.before.run):
            why = ""
            name = Path(entry).name
            if Path(entry).parent.parent == hostscan.NET_RUN_DIR:  # .../<kind>/<bridge>
                owner = owners.get(name, "")
                if owner and hostscan.under(owner, self.own.basetemp):
                    why = f"bridge of data root {owner}"
                elif name in self.own.bridges:
                    why = f"bridge of a network made by {self.own.bridges[name]}"
                elif self._others_bridge(name, owners):
                    continue
            out.append(Leak("run-file", entry, why))
        return out

    @staticmethod
    def _simple(kind: str, names: set[str]) -> list[Leak]:
        return [Leak(kind, n, "") for n in sorted(names)]


def _is_session(cmdline: str) -> bool:
    """A pytest run or a pycompose command (`python -m pytest`, `.venv/bin/pycompose`...)."""
    return any(os.path.basename(word) in SESSION_PROGRAMS for word in cmdline.split())


def register(config: pytest.Config) -> None:
    """Called from tests/conftest.py's pytest_configure."""
    if os.geteuid() != 0 or os.environ.get("PYCOMPOSE_LEAKCHECK") == "off":
        return
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(LeakCheck(config), PLUGIN_NAME)


def note_fixture_sweep(config: pytest.Config, where: str, what: list[str]) -> None:
    """A fixture's safety net removed `what` (listed in the summary, not a failure)."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None and what:
        plugin.fixture_sweeps.append(f"{where}: {', '.join(what)}")
