"""The service dependency graph: start order, parallel levels, stop order, cycles, pictures.

An edge `web -> db` means "web depends on db" (as `depends_on` reads). Every walk is
deterministic: ties are broken by service name. networkx is imported only when a graph
is built; `find_cycle`, used by every `config`, is plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from compose.errors import CycleError

if TYPE_CHECKING:
    import networkx as nx


def find_cycle(depends_on: Mapping[str, Iterable[str]]) -> list[str] | None:
    """The first dependency cycle as a closed path (`["web", "api", "web"]`), or None.

    Services are visited in name order and so are their dependencies, so the same file
    always names the same cycle; dependencies on unknown services are ignored.
    """
    deps = {name: sorted((d for d in depends_on[name] if d in depends_on), key=str)
            for name in depends_on}
    done: set[str] = set()
    for start in sorted(deps, key=str):
        if start in done:
            continue
        trail: list[str] = [start]
        on_trail = {start}
        cursors = [iter(deps[start])]
        while cursors:
            nxt = next(cursors[-1], None)
            if nxt is None:
                cursors.pop()
                finished = trail.pop()
                on_trail.discard(finished)
                done.add(finished)
                continue
            if nxt in on_trail:
                return trail[trail.index(nxt):] + [nxt]
            if nxt in done:
                continue
            trail.append(nxt)
            on_trail.add(nxt)
            cursors.append(iter(deps[nxt]))
    return None


def _depends_on_of(services: Mapping[str, Any]) -> dict[str, list[str]]:
    """service -> names it depends on, from canonical dicts or model Services."""
    out: dict[str, list[str]] = {}
    for name, service in services.items():
        if isinstance(service, Mapping):
            deps = service.get("depends_on") or {}
        else:
            deps = getattr(service, "depends_on", None) or {}
        out[name] = list(deps)
    return out


class ServiceGraph:
    """Dependencies between the services of one project.

    Build it from a canonical tree's `services` mapping (or `Project.services`). Edges to
    services that are not in the mapping are dropped (e.g. `required: false` on a
    disabled service); a cycle raises CycleError naming it.
    """

    def __init__(self, services: Mapping[str, Any]) -> None:
        import networkx as nx

        self.services = services
        self.depends_on = _depends_on_of(services)
        cycle = find_cycle(self.depends_on)
        if cycle:
            raise CycleError("dependency cycle detected: " + " -> ".join(cycle),
                             path=f"services.{cycle[0]}.depends_on")
        self.graph: nx.DiGraph[str] = nx.DiGraph()
        self.graph.add_nodes_from(sorted(self.depends_on))
        for name in sorted(self.depends_on):
            for dep in sorted(self.depends_on[name]):
                if dep in self.depends_on:
                    self.graph.add_edge(name, dep)

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> ServiceGraph:
        """From a whole canonical tree (`{"services": {...}, ...}`)."""
        return cls(tree.get("services") or {})

    # -- orders ----------------------------------------------------------------------
    def levels(self) -> list[list[str]]:
        """Start levels: each level only depends on earlier ones; names sorted within."""
        import networkx as nx

        return [sorted(level)
                for level in nx.topological_generations(self.graph.reverse(copy=False))]

    def order(self) -> list[str]:
        """Start order: dependencies first, ties by name."""
        return [name for level in self.levels() for name in level]

    def stop_levels(self) -> list[list[str]]:
        """Stop levels: dependents stop before what they depend on."""
        return list(reversed(self.levels()))

    def stop_order(self) -> list[str]:
        return [name for level in self.stop_levels() for name in level]

    # -- selections ------------------------------------------------------------------
    def dependencies(self, name: str) -> set[str]:
        """Everything `name` needs, directly or not."""
        import networkx as nx

        self._known(name)
        return set(nx.descendants(self.graph, name))

    def dependents(self, name: str) -> set[str]:
        """Everything that needs `name`, directly or not."""
        import networkx as nx

        self._known(name)
        return set(nx.ancestors(self.graph, name))

    def restart_with(self, name: str) -> list[str]:
        """Services to restart when `name` is restarted or recreated: those whose
        `depends_on` entry for it says `restart: true` (directly), in start order."""
        self._known(name)
        wanted = {other for other in self.dependents_direct(name)
                  if _dependency_field(self.services[other], name, "restart") is True}
        return [n for n in self.order() if n in wanted]

    def dependents_direct(self, name: str) -> set[str]:
        self._known(name)
        return set(self.graph.predecessors(name))

    def condition(self, service: str, dependency: str) -> str:
        """The `depends_on` condition of `service` on `dependency` (service_started...)."""
        value = _dependency_field(self.services[service], dependency, "condition")
        return value if isinstance(value, str) else "service_started"

    def select(self, names: Iterable[str], *, with_dependencies: bool = True) -> list[str]:
        """The services to act on for `up web` (with its dependencies) or `--no-deps`,
        in start order."""
        wanted = set()
        for name in names:
            self._known(name)
            wanted.add(name)
            if with_dependencies:
                wanted |= self.dependencies(name)
        return [name for name in self.order() if name in wanted]

    def subgraph(self, names: Iterable[str], *, with_dependencies: bool = True) -> ServiceGraph:
        selected = self.select(names, with_dependencies=with_dependencies)
        return ServiceGraph({name: self.services[name] for name in selected})

    def edges(self) -> list[tuple[str, str]]:
        """(dependent, dependency) pairs, sorted."""
        return sorted(self.graph.edges())

    def _known(self, name: str) -> None:
        if name not in self.depends_on:
            from compose.errors import UsageError

            raise UsageError(f"no such service: {name}")

    # -- pictures --------------------------------------------------------------------
    def to_dot(self, project: str, *, image: bool = False, ports: bool = False,
               networks: bool = False, indent: str = "\t") -> str:
        """Graphviz DOT in the form of `docker compose alpha viz`, in a stable order."""
        import html  # only pictures need it; `config` checks cycles through this module

        lines = [f'digraph "{project}" {{', f"{indent}layout=dot;"]
        for name in self.order():
            label = f'<font point-size="15">{html.escape(name)}</font>'
            for title, values in self._details(name, image, ports, networks):
                label += (f'<font point-size="10"><br/><br/><b>{title}:</b><br/>'
                          + "<br/>".join(html.escape(v) for v in values) + "</font>")
            lines.append(f'{indent}"{name}" [style="filled" label=<{label}>];')
        lines.append("")
        lines += [f'{indent}"{a}" -> "{b}";' for a, b in self.edges()]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self, *, image: bool = False, ports: bool = False,
                   networks: bool = False) -> str:
        """A Mermaid flowchart, one node per service, arrows from dependent to dependency."""
        ids = {name: f"s{i}" for i, name in enumerate(self.order())}
        lines = ["flowchart TD"]
        for name in self.order():
            label = name
            for title, values in self._details(name, image, ports, networks):
                label += f"<br/><b>{title}:</b> " + ", ".join(values)
            lines.append(f'    {ids[name]}["{label.replace(chr(34), "#quot;")}"]')
        for a, b in self.edges():
            lines.append(f"    {ids[a]} --> {ids[b]}")
        return "\n".join(lines) + "\n"

    def _details(self, name: str, image: bool, ports: bool,
                 networks: bool) -> list[tuple[str, list[str]]]:
        service = self.services[name]
        data: Mapping[str, Any] = service if isinstance(service, Mapping) else \
            service.model_dump(mode="json", by_alias=True, exclude_unset=True)
        out: list[tuple[str, list[str]]] = []
        if networks:
            out.append(("Networks", sorted(data.get("networks") or {}) or
                        ([str(data["network_mode"])] if data.get("network_mode") else [])))
        if ports and data.get("ports"):
            out.append(("Ports", [_port_text(p) for p in data["ports"]]))
        if image and data.get("image"):
            out.append(("Image", [str(data["image"])]))
        return out


def _dependency_field(service: Any, dependency: str, field: str) -> Any:
    deps = service.get("depends_on") if isinstance(service, Mapping) else \
        getattr(service, "depends_on", None)
    entry = (deps or {}).get(dependency)
    if isinstance(entry, Mapping):
        return entry.get(field)
    return getattr(entry, field, None)


def _port_text(port: Any) -> str:
    if not isinstance(port, Mapping):
        return str(port)
    published = port.get("published")
    head = f"{published}:{port.get('target')}" if published else str(port.get("target"))
    if port.get("host_ip"):
        head = f"{port['host_ip']}:{head}"
    return f"{head} ({port.get('protocol', 'tcp')}, {port.get('mode', 'ingress')})"
