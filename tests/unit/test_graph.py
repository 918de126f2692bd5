"""The dependency graph: orders, levels, cycles, selections and pictures."""

from __future__ import annotations

from typing import Any

import pytest

from compose.errors import CycleError, UsageError
from compose.graph import ServiceGraph, find_cycle


def services(**deps: list[str]) -> dict[str, Any]:
    return {name: {"image": f"img-{name}",
                   "depends_on": {d: {"condition": "service_started", "required": True}
                                  for d in ds}}
            for name, ds in deps.items()}


STACK = services(web=["api", "cache"], api=["db"], cache=[], db=[], worker=["db"])


def test_levels_start_order_and_stop_order() -> None:
    graph = ServiceGraph(STACK)
    assert graph.levels() == [["cache", "db"], ["api", "worker"], ["web"]]
    assert graph.order() == ["cache", "db", "api", "worker", "web"]
    assert graph.stop_levels() == [["web"], ["api", "worker"], ["cache", "db"]]
    assert graph.stop_order() == ["web", "api", "worker", "cache", "db"]


def test_selection_with_and_without_dependencies() -> None:
    graph = ServiceGraph(STACK)
    assert graph.select(["web"]) == ["cache", "db", "api", "web"]
    assert graph.select(["web"], with_dependencies=False) == ["web"]
    assert graph.dependents("db") == {"api", "worker", "web"}
    assert graph.dependencies("api") == {"db"}
    assert graph.subgraph(["api"]).order() == ["db", "api"]
    with pytest.raises(UsageError, match="no such service: nope"):
        graph.select(["nope"])


def test_cycle_is_named_deterministically() -> None:
    deps = {"service1": ["service2"], "service2": ["service3"], "service3": ["service1"]}
    assert find_cycle(deps) == ["service1", "service2", "service3", "service1"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"b": ["a"], "a": ["c"], "c": ["b"], "d": []}) == ["a", "c", "b", "a"]
    assert find_cycle({"a": ["b", "missing"], "b": []}) is None
    with pytest.raises(CycleError, match="dependency cycle detected: api -> web -> api"):
        ServiceGraph(services(web=["api"], api=["web"]))


# Checked against `docker compose config` v2.40.3: it names exactly these cycles.
REFERENCE_CYCLES = [
    ({"a": ["b"], "b": ["c"], "c": ["b"]}, "b -> c -> b"),
    ({"z": ["y"], "y": ["x"], "x": ["z"]}, "x -> z -> y -> x"),
    ({"b": ["a"], "a": ["c"], "c": ["b"], "d": []}, "a -> c -> b -> a"),
    ({"a": ["b", "c"], "b": ["d"], "c": ["a"], "d": ["c"]}, "a -> b -> d -> c -> a"),
]


@pytest.mark.parametrize(("deps", "expected"), REFERENCE_CYCLES)
def test_cycles_named_as_the_reference_names_them(deps: dict[str, list[str]],
                                                  expected: str) -> None:
    assert " -> ".join(find_cycle(deps) or []) == expected


def test_long_chain_has_no_recursion_limit() -> None:
    deps = {f"s{i:04d}": [f"s{i + 1:04d}"] for i in range(3000)}
    deps["s3000"] = []
    assert find_cycle(deps) is None
    deps["s3000"] = ["s0000"]
    cycle = find_cycle(deps)
    assert cycle is not None and cycle[0] == cycle[-1] == "s0000" and len(cycle) == 3002


def test_edges_to_unknown_services_are_ignored() -> None:
    graph = ServiceGraph(services(web=["gone"]))
    assert graph.order() == ["web"] and graph.edges() == []


def test_dot_output_matches_compose_alpha_viz_form() -> None:
    graph = ServiceGraph(services(web=["db"], db=[]))
    assert graph.to_dot("proj") == (
        'digraph "proj" {\n'
        "\tlayout=dot;\n"
        '\t"db" [style="filled" label=<<font point-size="15">db</font>>];\n'
        '\t"web" [style="filled" label=<<font point-size="15">web</font>>];\n'
        "\n"
        '\t"web" -> "db";\n'
        "}\n")


def test_dot_details() -> None:
    tree = services(web=[])
    tree["web"]["ports"] = [{"mode": "ingress", "target": 80, "published": "8080",
                             "protocol": "tcp"}]
    tree["web"]["networks"] = {"front": None}
    text = ServiceGraph(tree).to_dot("p", image=True, ports=True, networks=True, indent="  ")
    assert ('  "web" [style="filled" label=<<font point-size="15">web</font>'
            '<font point-size="10"><br/><br/><b>Networks:</b><br/>front</font>'
            '<font point-size="10"><br/><br/><b>Ports:</b><br/>8080:80 (tcp, ingress)</font>'
            '<font point-size="10"><br/><br/><b>Image:</b><br/>img-web</font>>];') in text


def test_mermaid_output() -> None:
    text = ServiceGraph(services(web=["db"], db=[])).to_mermaid(image=True)
    assert text == ('flowchart TD\n    s0["db<br/><b>Image:</b> img-db"]\n'
                    '    s1["web<br/><b>Image:</b> img-web"]\n    s1 --> s0\n')


def test_graph_from_model_project() -> None:
    from compose.model import Project

    project = Project.from_tree({"name": "p", "services": STACK})
    assert project.graph().order() == ServiceGraph(STACK).order()


def test_viz_command_prints_dot_and_mermaid(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from compose.cli import main as cli
    from compose.cli.context import Context

    loaded = SimpleNamespace(name="proj", data={"name": "proj", "services": STACK})
    monkeypatch.setattr(Context, "load", lambda self, *a, **k: loaded)
    assert cli.dispatch(["viz", "--spaces", "--indentation-size", "2"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "proj" {\n  layout=dot;\n')
    assert '  "web" -> "api";\n' in dot and '  "api" -> "db";\n' in dot
    assert cli.dispatch(["viz", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")


def test_restart_with_and_conditions() -> None:
    tree = services(web=["db"], api=["db"], db=[])
    tree["web"]["depends_on"]["db"].update(condition="service_healthy", restart=True)
    graph = ServiceGraph(tree)
    assert graph.restart_with("db") == ["web"]
    assert graph.condition("web", "db") == "service_healthy"
    assert graph.condition("api", "db") == "service_started"
    assert graph.dependents_direct("db") == {"api", "web"}
    from compose.model import Project

    model_graph = Project.from_tree({"name": "p", "services": tree}).graph()
    assert model_graph.restart_with("db") == ["web"]
    assert model_graph.condition("web", "db") == "service_healthy"
