"""foreach and collect, as upstream's engine runs them: once per element with `times`,
collect in element order once everything before it is done, nested and uneven loops."""

from __future__ import annotations

from typing import Any

from tests.unit.engine.flows import edge, flow, node, run
from tests.unit.engine.upstream import crate_flow, document


def S(text: str) -> dict[str, str]:
    return {"S": text}


def loop(array: Any, *middle: dict[str, Any], edges: list[dict[str, Any]]) -> dict[str, Any]:
    """const `array` → foreach `each` → … → collect `all` → flow_output `out`."""
    return flow(
        node("list", "const", value=array),
        node("each", "foreach"),
        *middle,
        node("all", "collect"),
        node("out", "flow_output", label="out"),
        edges=[
            edge("list", "each", into="array"),
            *edges,
            edge("all", "out", "array"),
        ],
    )


def test_upstreams_loop_flow_runs_to_string_once_per_element() -> None:
    outcome = run(document("Loop"))
    assert outcome.status == "succeeded", outcome.error
    runs = [r for r in outcome.memory.nodes if r.command == "to_string"]
    assert sorted(r.times for r in runs) == [0, 1, 2, 3]
    [collected] = [r for r in outcome.memory.nodes if r.command == "collect"]
    assert collected.outputs is not None
    assert collected.outputs["array"].to_json() == {"A": [S("1"), S("2"), S("3"), S("4")]}


def test_collect_keeps_element_order_when_later_elements_finish_first() -> None:
    # Each element waits (0.3 - element / 10) s: the last one finishes first.
    document = loop(
        [0, 1, 2, 3],
        node("delay", "div", b=10),
        node("pause", "sub", a={"D": "0.3"}),
        node("w", "wait"),
        edges=[
            edge("each", "delay", "element", "a"),
            edge("delay", "pause", "result", "b"),
            edge("pause", "w", "result", "seconds"),
            edge("each", "w", "element", "value"),
            edge("w", "all", "value", "element"),
        ],
    )
    outcome = run(document)
    assert outcome.outputs == {"out": {"A": [{"U": "0"}, {"U": "1"}, {"U": "2"}, {"U": "3"}]}}
    finished = [r.outputs["value"].to_json() for r in outcome.memory.nodes if r.node_id == "w"]
    assert finished == [{"U": "3"}, {"U": "2"}, {"U": "1"}, {"U": "0"}], "last element first"


def test_an_empty_array_runs_the_loop_body_never_and_collects_an_empty_array() -> None:
    outcome = run(
        loop(
            [],
            node("t", "to_string"),
            edges=[
                edge("each", "t", "element", "stringify"),
                edge("t", "all", "result", "element"),
            ],
        )
    )
    assert (outcome.status, outcome.outputs) == ("succeeded", {"out": {"A": []}})
    assert outcome.memory.statuses()["t"] == "skipped"


def test_a_value_that_is_not_an_array_is_a_loop_of_one() -> None:
    outcome = run(
        loop(
            "solo",
            node("t", "to_string"),
            edges=[
                edge("each", "t", "element", "stringify"),
                edge("t", "all", "result", "element"),
            ],
        )
    )
    assert outcome.outputs == {"out": {"A": [S("solo")]}}


def test_index_counts_the_elements() -> None:
    outcome = run(loop(["a", "b"], edges=[edge("each", "all", "index", "element")]))
    assert outcome.outputs == {"out": {"A": [{"U": "0"}, {"U": "1"}]}}


def test_a_value_from_outside_the_loop_is_reused_for_every_element() -> None:
    outcome = run(
        loop(
            [1, 2, 3],
            node("ten", "const", value=10),
            node("plus", "add"),
            edges=[
                edge("each", "plus", "element", "a"),
                edge("ten", "plus", "output", "b"),
                edge("plus", "all", "result", "element"),
            ],
        )
    )
    assert outcome.outputs == {"out": {"A": [{"D": "11"}, {"D": "12"}, {"D": "13"}]}}


def test_nested_loops_flatten_into_one_collect_as_upstream() -> None:
    # crates/flow/src/flow_graph.rs test_foreach_nested
    outcome = run(crate_flow("2_foreach"))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"output": {"A": [S("0,0"), S("0,1"), S("1,0"), S("1,1")]}}


def test_uneven_loops_run_as_often_as_the_shorter_one_as_upstream() -> None:
    # crates/flow/src/flow_graph.rs test_uneven_loop: 3 elements meet 4 in a wait
    outcome = run(crate_flow("uneven_loop"))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {
        "1": {"A": [{"U": "1"}, {"U": "2"}, {"U": "3"}]},
        "2": {"A": [S("0,0"), S("0,1"), S("1,0")]},
    }
    waits = [r for r in outcome.memory.nodes if r.command == "wait"]
    assert sorted(r.times for r in waits) == [0, 1, 2]


def test_a_flow_output_inside_a_loop_gives_the_array_of_its_values() -> None:
    outcome = run(
        flow(
            node("list", "const", value=["x", "y"]),
            node("each", "foreach"),
            node("out", "flow_output", label="each"),
            edges=[edge("list", "each", into="array"), edge("each", "out", "element")],
        )
    )
    assert outcome.outputs == {"each": {"A": [S("x"), S("y")]}}


def test_a_nested_flow_in_a_loop_runs_once_per_element_each_recorded_apart() -> None:
    child = flow(
        node("x", "flow_input", label="x"),
        node("double", "mul", b=2),
        node("y", "flow_output", label="y"),
        edges=[edge("x", "double", into="a"), edge("double", "y", "result")],
    )
    outcome = run(
        loop(
            [1, 2],
            node("call", "interflow", flow_id=2),
            edges=[
                edge("each", "call", "element", "x"),
                edge("call", "all", "y", "element"),
            ],
        ),
        others={2: child},
    )
    assert outcome.outputs == {"out": {"A": [{"D": "2"}, {"D": "4"}]}}
    nested = {r.node_id for r in outcome.memory.nodes if r.command == "mul"}
    assert nested == {"call/double", "call#1/double"}


def test_a_failure_in_one_element_fails_the_run() -> None:
    outcome = run(
        loop(
            [1, 0],
            node("inverse", "div", a=1),
            edges=[
                edge("each", "inverse", "element", "b"),
                edge("inverse", "all", "result", "element"),
            ],
        )
    )
    assert outcome.status == "failed"
    assert outcome.error == "node 'inverse' (div) failed: cannot compute 1 / 0: division by zero"


def test_a_loop_past_the_node_run_limit_fails_the_run_cleanly_naming_the_limit() -> None:
    plus_one = loop(
        list(range(100)),
        node("plus", "add", b=1),
        edges=[edge("each", "plus", "element", "a"), edge("plus", "all", "result", "element")],
    )
    outcome = run(plus_one, max_node_runs=50)
    assert (outcome.status, outcome.error) == (
        "failed",
        "the run reached the limit of 50 node runs per run (FLOW_MAX_NODE_RUNS; loops and "
        "nested flows count each run); not started: node 'plus' (add)",
    )
    runs = outcome.memory.nodes
    assert len(runs) == 50, "const, foreach and 48 adds ran; nothing past the limit"
    assert {r.status for r in runs} == {"succeeded"}
    assert run(plus_one, max_node_runs=104).status == "succeeded"
