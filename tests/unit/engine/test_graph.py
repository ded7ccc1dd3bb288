"""Flow validation: every document the engine cannot run is refused, naming node and port."""

from __future__ import annotations

from typing import Any

import pytest

from flowdeploy.engine import FlowGraph, FlowInvalid, build_flow_set
from tests.unit.engine.flows import edge, flow, node

ADD = [node("x", "const", value=1), node("s", "add", b=1)]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (flow(node("n", "teleport")), "node 'n': unknown command 'teleport'; known: add, "),
        (
            flow(*ADD, edges=[edge("x", "s", "nope", "a")]),
            "edge 0 (x.nope -> s.a): node 'x' (const) has no output port 'nope'",
        ),
        (
            flow(*ADD, edges=[edge("x", "s", "output", "c")]),
            "edge 0 (x.output -> s.c): node 's' (add) has no input port 'c'",
        ),
        (
            flow(*ADD, edges=[edge("x", "ghost", "output", "a")]),
            "edge 0 (x.output -> ghost.a): target node 'ghost' does not exist",
        ),
        (
            flow(*ADD, edges=[edge("ghost", "s", "output", "a")]),
            "edge 0 (ghost.output -> s.a): source node 'ghost' does not exist",
        ),
        (
            flow(node("s", "add")),
            "node 's' (add): input 'a' needs an edge or a config value",
        ),
        (
            flow(
                node("x", "const", value=1),
                node("y", "const", value=2),
                node("s", "add", b=1),
                edges=[edge("x", "s", into="a"), edge("y", "s", into="a")],
            ),
            "node 's' (add): input 'a' has two edges, from 'x' and 'y'",
        ),
        (
            flow(
                node("p", "add", b=1),
                node("q", "add", b=1),
                edges=[edge("p", "q", "result", "a"), edge("q", "p", "result", "a")],
            ),
            "edges form a cycle: nodes 'p', 'q' can never start",
        ),
        (flow(node("i", "flow_input")), "node 'i' (flow_input): config 'label': is required"),
        (
            flow(node("c", "const", value={"U": "-1"})),
            "node 'c' (const): config 'value': U value \"-1\" is not a decimal u64 string",
        ),
        (
            flow(
                node("x", "const", value=1),
                node("a", "flow_output", label="o"),
                node("b", "flow_output", label="o"),
                edges=[edge("x", "a"), edge("x", "b")],
            ),
            "node 'a' (flow_output): config 'label': output 'o' is also produced by 'b'",
        ),
        (
            flow(node("x", "compare", a=1, b=2, operator="=<")),
            "node 'x' (compare): input 'operator': use one of ==, !=, <, <=, >, >=",
        ),
        (flow(node("i", "interflow")), "node 'i' (interflow): config 'flow_id': is required"),
    ],
)
def test_a_flow_that_cannot_run_is_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(FlowInvalid) as refused:
        FlowGraph.build(document)
    assert refused.value.message.startswith(message), refused.value.message


def test_config_the_command_does_not_use_is_left_alone() -> None:
    FlowGraph.build(flow(node("c", "const", value=1, position={"x": [1, {"deep": None}]})))


CHILD = flow(
    node("x", "flow_input", label="x"),
    node("y", "flow_output", label="y"),
    edges=[edge("x", "y")],
)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        (
            [edge("c", "call", into="z"), edge("call", "out", "y")],
            "flow 1: node 'call' (interflow): input 'z' is not a flow_input of flow 2 (it has: x)",
        ),
        (
            [edge("c", "call", into="x"), edge("call", "out", "w")],
            "flow 1: node 'call' (interflow): output 'w' is not a flow_output of flow 2 "
            "(it has: y)",
        ),
    ],
)
def test_interflow_ports_must_match_the_called_flow(
    edges: list[dict[str, Any]], message: str
) -> None:
    parent = flow(
        node("c", "const", value=1),
        node("call", "interflow", flow_id=2),
        node("out", "flow_output", label="o"),
        edges=edges,
    )
    with pytest.raises(FlowInvalid) as refused:
        build_flow_set({1: parent, 2: CHILD}, 1)
    assert refused.value.message == message


def test_a_deployment_problem_names_the_flow() -> None:
    with pytest.raises(FlowInvalid) as refused:
        build_flow_set(
            {1: flow(node("call", "interflow", flow_id=2)), 2: flow(node("s", "add"))}, 1
        )
    assert (
        refused.value.message == "flow 2: node 's' (add): input 'a' needs an edge or a config value"
    )
