"""Space Operator's flow documents: ports declared with ids (both shapes), edges by port id,
passthrough edges, mock nodes, upstream's definitions of flow_input, flow_output, const and
branch, and never a mix of the two formats."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from flowdeploy.engine import FlowGraph, FlowInvalid, build_flow_set
from tests.unit.engine.flows import edge, flow, node, run
from tests.unit.engine.upstream import crate_flow, document


def port(port_id: str, name: str, **flags: Any) -> dict[str, Any]:
    return {"id": port_id, "name": name, **flags}


def spo_node(
    node_id: str,
    command: str,
    inputs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    outputs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    config: dict[str, Any] | None = None,
    *,
    shape: str = "ports",
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"node_id": command, "config": config or {}}
    if shape == "ports":
        data["ports"] = {"inputs": list(inputs), "outputs": list(outputs)}
    else:
        data["inputs"], data["outputs"] = list(inputs), list(outputs)
    return {"id": node_id, "type": "native", "data": data, **extra}


def spo_edge(source: str, out_id: str, target: str, in_id: str) -> dict[str, str]:
    return {"source": source, "sourceHandle": out_id, "target": target, "targetHandle": in_id}


def sum_flow(shape: str) -> dict[str, Any]:
    """Two flow inputs into upstream's add (our `add` does not exist there: use branch)."""
    return flow(
        spo_node("a", "flow_input", outputs=[port("pa", "amount")], shape=shape),
        spo_node(
            "s",
            "to_string",
            [port("ps", "stringify", required=True)],
            [port("pr", "result", type="string")],
            shape=shape,
        ),
        spo_node("o", "flow_output", [port("po", "text", required=True)], shape=shape),
        edges=[spo_edge("a", "pa", "s", "ps"), spo_edge("s", "pr", "o", "po")],
    )


@pytest.mark.parametrize("shape", ["ports", "inputs"])
def test_both_shapes_of_port_declarations_run_the_same(shape: str) -> None:
    outcome = run(sum_flow(shape), {"amount": {"U": "7"}})
    assert (outcome.status, outcome.outputs) == ("succeeded", {"text": {"S": "7"}})


def test_a_flow_input_is_named_by_its_port_and_defaults_to_form_label() -> None:
    document = sum_flow("ports")
    document["nodes"][0]["data"]["config"] = {"label": "ignored", "form_label": 9}
    assert run(document).outputs == {"text": {"S": "9"}}
    assert run(document, {"amount": {"U": "1"}}).outputs == {"text": {"S": "1"}}


def test_a_flow_output_without_a_label_takes_its_port_name() -> None:
    # upstream's branch.json: flow_output has no config, its input port is "result"
    outcome = run(crate_flow("branch"))
    assert (outcome.status, outcome.outputs) == ("succeeded", {"result": {"U": "42"}})


def test_upstreams_branch_sends_a_rejected_value_to_rejected() -> None:
    document = crate_flow("branch")
    operator = next(n for n in document["nodes"] if n["data"]["config"].get("value") == {"S": "gt"})
    operator["data"]["config"]["value"] = {"S": "lt"}
    outcome = run(document)
    assert (outcome.status, outcome.outputs) == ("succeeded", {})
    assert "skipped" in outcome.memory.statuses().values()


def test_a_passthrough_edge_carries_the_input_value_on() -> None:
    # wait passes value and wait_for through, as Transfer SOL's wait node does
    outcome = run(
        flow(
            spo_node(
                "v",
                "const",
                outputs=[port("cv", "output")],
                config={"type": "String", "value": {"S": "kept"}},
            ),
            spo_node(
                "t",
                "const",
                outputs=[port("ct", "output")],
                config={"type": "JSON", "value": "[1]"},
            ),
            spo_node(
                "w",
                "wait",
                [
                    port("wv", "value", passthrough=True, required=True),
                    port("wf", "wait_for", passthrough=True, required=True),
                ],
            ),
            spo_node("o", "flow_output", [port("po", "passed", required=True)]),
            edges=[
                spo_edge("v", "cv", "w", "wv"),
                spo_edge("t", "ct", "w", "wf"),
                spo_edge("w", "passthrough-wv", "o", "po"),
            ],
        )
    )
    assert outcome.outputs == {"passed": {"S": "kept"}}


def test_upstreams_consts_flow_gives_each_constant_its_type() -> None:
    outcome = run(document("Consts"))
    assert outcome.status == "succeeded", outcome.error
    made = {r.node_id[:6]: r.outputs["output"].to_json() for r in outcome.memory.nodes if r.outputs}
    assert {"B": False} in made.values() and {"I1": "0"} in made.values()
    assert {"M": {}} in made.values(), "type JSON with text {} is a map"
    assert {"S": "asdf"} in made.values()


def test_mock_nodes_and_their_edges_are_ignored_as_upstream_does() -> None:
    document = sum_flow("ports")
    document["nodes"].append({"id": "m", "type": "mock", "data": {"node_id": "chart"}})
    document["edges"].append(spo_edge("s", "pr", "m", "anything"))
    assert run(document, {"amount": {"U": "2"}}).outputs == {"text": {"S": "2"}}


def test_scoped_command_names_are_read_as_upstream_reads_them() -> None:
    document = sum_flow("ports")
    document["nodes"][1]["data"]["node_id"] = "@spo/std.to_string.0.1"
    assert run(document, {"amount": {"U": "3"}}).outputs == {"text": {"S": "3"}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["edges"][0].update(sourceHandle="nope"),
            "edge 0 (a -> s): node 'a' declares no output port with id 'nope'",
        ),
        (
            lambda d: d["edges"][0].update(targetHandle="nope"),
            "edge 0 (a -> s): node 's' declares no input port with id 'nope'",
        ),
        (
            lambda d: d["edges"][0].update(target="ghost"),
            "edge 0 (a -> ghost): target node 'ghost' does not exist",
        ),
        (
            lambda d: d["nodes"].append(node("ours", "add")),
            "node 'a' declares its ports with ids (Space Operator's format) but node 'ours' "
            "does not (this service's format): a flow is in one format",
        ),
        (
            lambda d: d["nodes"][1].update(type="bun"),
            "node 's': command 'to_string' is a bun node; not supported: bun nodes (JavaScript "
            "runs here in Deno nodes, of type deno)",
        ),
        (
            lambda d: d["nodes"][1]["data"].update(node_id="concat"),
            "node 's': unknown command 'concat' (Space Operator format); known: api_input, ",
        ),
    ],
)
def test_a_space_operator_document_that_cannot_run_is_refused(change: Any, message: str) -> None:
    document = sum_flow("ports")
    change(document)
    with pytest.raises(FlowInvalid) as refused:
        FlowGraph.build(document)
    assert refused.value.message.startswith(message), refused.value.message


def test_branch_means_ours_in_our_format_and_upstreams_in_theirs() -> None:
    ours = flow(
        node("if", "branch", condition=True, value="v"),
        node("out", "flow_output", label="taken"),
        edges=[edge("if", "out", "true")],
    )
    assert run(ours).outputs == {"taken": {"S": "v"}}
    theirs = crate_flow("branch")
    graph = FlowGraph.build(theirs)
    branch = next(n for n in graph.nodes.values() if n.command.name == "branch")
    assert {p.name for p in branch.command.inputs} == {"value", "operator", "field", "compare_to"}
    with pytest.raises(FlowInvalid, match=r"node 'if' \(branch\) has no input port 'operator'"):
        FlowGraph.build(
            flow(
                node("if", "branch", condition=True),
                node("c", "const", value="gt"),
                edges=[edge("c", "if", into="operator")],
            )
        )


def test_a_flow_that_calls_itself_is_bounded_by_the_nesting_limit_at_run_time() -> None:
    countdown = flow(
        node("n", "flow_input", label="n"),
        node("again", "interflow", flow_id=1),
        edges=[edge("n", "again", into="n")],
    )
    outcome = run(countdown, {"n": {"U": "1"}})
    assert outcome.status == "failed"
    assert outcome.error == (
        "node 'again' (interflow) failed: nested flows go deeper than the nesting limit of 256 "
        "levels (FLOW_MAX_NESTING): flow 1 -> flow 1 -> flow 1 -> ... (252 more) -> flow 1 -> "
        "flow 1 -> flow 1"
    )


def test_a_flow_that_calls_itself_twice_is_bounded_by_the_node_run_limit() -> None:
    twice = flow(
        node("n", "flow_input", label="n"),
        node("left", "interflow", flow_id=1),
        node("right", "interflow", flow_id=1),
        edges=[edge("n", "left", into="n"), edge("n", "right", into="n")],
    )
    outcome = run(twice, {"n": {"U": "1"}}, max_node_runs=50)
    assert outcome.status == "failed"
    assert re.fullmatch(
        r"the run reached the limit of 50 node runs per run \(FLOW_MAX_NODE_RUNS; loops and "
        r"nested flows count each run\); not started: node '((left|right)/)+\w+' \(\w+\)",
        outcome.error or "",
    ), outcome.error
    assert len(outcome.memory.nodes) <= 50


def test_interflow_in_a_space_operator_flow_passes_only_its_connected_ports() -> None:
    caller = flow(
        spo_node("in", "flow_input", outputs=[port("pi", "n")]),
        spo_node(
            "call",
            "interflow",
            [port("fl", "flow", required=True), port("pn", "n", required=True)],
            [port("po", "out")],
            config={"flow_id": {"S": "2"}},
        ),
        spo_node("out", "flow_output", [port("pr", "result", required=True)]),
        edges=[spo_edge("in", "pi", "call", "pn"), spo_edge("call", "po", "out", "pr")],
    )
    callee = flow(
        spo_node("x", "flow_input", outputs=[port("px", "n")]),
        spo_node("t", "to_string", [port("pt", "stringify")], [port("pr", "result")]),
        spo_node("y", "flow_output", [port("py", "out", required=True)]),
        edges=[spo_edge("x", "px", "t", "pt"), spo_edge("t", "pr", "y", "py")],
    )
    outcome = run(caller, {"n": {"U": "5"}}, others={2: callee})
    assert (outcome.status, outcome.outputs) == ("succeeded", {"result": {"S": "5"}})


def test_an_unimported_space_operator_flow_id_is_explained() -> None:
    with pytest.raises(FlowInvalid) as refused:
        build_flow_set({1: copy.deepcopy(document("Interflow Instructions"))}, 1)
    assert "is a Space Operator flow id; import the flow with POST /data/import" in (
        refused.value.message
    )
