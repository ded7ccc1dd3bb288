"""The scheduler: readiness, concurrency, skipping, failure, interflow, deadline and stop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flowdeploy.engine import REGISTRY, Command, Port, Run, RunResult, build_flow_set
from flowdeploy.engine.command import NodeContext, ReturnTransaction
from flowdeploy.values import IValue
from tests.unit.engine.flows import Memory, Outcome, edge, flow, node, run, run_async


def D(text: str) -> dict[str, str]:
    return {"D": text}


def test_a_fan_out_and_fan_in_computes_once_per_node() -> None:
    # x feeds three adds; a chain of adds sums them back into one output.
    nodes = [node("x", "flow_input", label="x")]
    edges = []
    for i in range(3):
        nodes.append(node(f"p{i}", "add", b={"D": str(i)}))
        edges.append(edge("x", f"p{i}", into="a"))
    nodes += [node("s1", "add"), node("s2", "add"), node("out", "flow_output", label="sum")]
    edges += [
        edge("p0", "s1", "result", "a"),
        edge("p1", "s1", "result", "b"),
        edge("s1", "s2", "result", "a"),
        edge("p2", "s2", "result", "b"),
        edge("s2", "out", "result", "input"),
    ]
    outcome = run(flow(*nodes, edges=edges), {"x": D("10")})
    assert outcome.outputs == {"sum": D("33")}
    assert sorted(outcome.memory.statuses().items()) == sorted(
        (n["id"], "succeeded") for n in nodes
    )
    assert len(outcome.memory.nodes) == len(nodes)


def test_independent_nodes_run_concurrently() -> None:
    waits = [node(f"w{i}", "wait", seconds=D("0.2")) for i in range(50)]
    started = time.monotonic()
    outcome = run(flow(*waits))
    elapsed = time.monotonic() - started
    assert outcome.status == "succeeded"
    assert elapsed < 2, f"50 waits of 0.2 s took {elapsed:.2f} s"


def test_a_slow_node_does_not_hold_back_the_others() -> None:
    outcome = run(
        flow(
            node("slow", "wait", seconds=D("0.3")),
            node("c", "const", value="fast"),
            node("log", "log"),
            edges=[edge("c", "log", into="message")],
        )
    )
    order = [record.node_id for record in outcome.memory.nodes]
    assert order.index("log") < order.index("slow")


def test_only_the_taken_branch_runs_the_other_is_skipped() -> None:
    outcome = run(
        flow(
            node("n", "flow_input", label="n"),
            node("big", "compare", b=100, operator=">"),
            node("if", "branch"),
            node("yes", "concat", b=" is big"),
            node("no", "concat", b=" is small"),
            node("then", "log"),
            node("out-yes", "flow_output", label="yes"),
            node("out-no", "flow_output", label="no"),
            edges=[
                edge("n", "big", into="a"),
                edge("big", "if", "result", "condition"),
                edge("n", "if", into="value"),
                edge("if", "yes", "true", "a"),
                edge("if", "no", "false", "a"),
                edge("no", "then", "result", "message"),
                edge("yes", "out-yes", "result"),
                edge("no", "out-no", "result"),
            ],
        ),
        {"n": {"U": "7"}},
    )
    assert (outcome.status, outcome.error) == ("succeeded", None)
    assert outcome.outputs == {"no": {"S": "7 is small"}}
    statuses = outcome.memory.statuses()
    assert {statuses["yes"], statuses["out-yes"]} == {"skipped"}
    assert {statuses["no"], statuses["then"], statuses["out-no"]} == {"succeeded"}


def test_a_node_error_fails_the_run_and_nothing_else_starts() -> None:
    outcome = run(
        flow(
            node("pause", "wait", seconds=D("0.05"), value=1),
            node("zero", "div", b=0),
            node("after", "log"),
            node("c", "const", value="kept"),
            node("out", "flow_output", label="early"),
            node("slow", "wait", seconds=D("0.5")),
            node("later", "log", message="never"),
            edges=[
                edge("pause", "zero", "value", "a"),
                edge("zero", "after", "result", "message"),
                edge("c", "out"),
                edge("slow", "later", "value", "level"),
            ],
        )
    )
    assert outcome.status == "failed"
    assert outcome.error == "node 'zero' (div) failed: cannot compute 1 / 0: division by zero"
    statuses = outcome.memory.statuses()
    assert statuses["zero"] == "failed"
    assert statuses["slow"] == "canceled"
    assert "after" not in statuses and "later" not in statuses
    assert outcome.outputs == {"early": {"S": "kept"}}, "outputs produced before are kept"
    [line] = outcome.memory.logs
    assert (line.level, line.node_id) == ("error", "zero")


def test_a_node_failure_is_the_runs_error() -> None:
    outcome = run(
        flow(
            node("in", "flow_input", label="url"),
            node("n", "http_request"),
            edges=[edge("in", "n", into="url")],
        ),
        {"url": {"S": "ftp://example.com/"}},
    )
    assert outcome.status == "failed"
    assert outcome.error == (
        "node 'n' (http_request) failed: input 'url': must be an http:// or https:// URL, "
        "got 'ftp://example.com/'"
    )


CHILD = flow(
    node("x", "flow_input", label="x"),
    node("double", "mul", b=2),
    node("y", "flow_output", label="y"),
    edges=[edge("x", "double", into="a"), edge("double", "y", "result")],
)


def test_interflow_runs_the_nested_flow_with_the_nodes_inputs() -> None:
    parent = flow(
        node("in", "flow_input", label="v"),
        node("call", "interflow", flow_id=2),
        node("out", "flow_output", label="doubled"),
        edges=[edge("in", "call", into="x"), edge("call", "out", "y")],
    )
    outcome = run(parent, {"v": D("1.25")}, others={2: CHILD})
    assert (outcome.status, outcome.outputs) == ("succeeded", {"doubled": D("2.50")})
    assert "call/double" in outcome.memory.statuses()
    nested = next(r for r in outcome.memory.nodes if r.node_id == "call/double")
    assert nested.flow_id == 2


def test_a_failure_inside_a_nested_flow_fails_the_run_naming_both_nodes() -> None:
    parent = flow(
        node("in", "flow_input", label="v"),
        node("call", "interflow", flow_id=2),
        edges=[edge("in", "call", into="x")],
    )
    outcome = run(parent, {"v": {"S": "not a number"}}, others={2: CHILD})
    assert outcome.status == "failed"
    assert outcome.error == (
        "node 'call' (interflow) failed: flow 2: node 'double' (mul) failed: "
        'input \'a\': expected a number, got {"S":"not a number"}'
    )


def test_the_deadline_fails_the_run_and_cancels_running_nodes() -> None:
    started = time.monotonic()
    outcome = run(flow(node("w", "wait", seconds=5)), deadline=0.2)
    assert time.monotonic() - started < 2
    assert outcome.status == "failed"
    assert outcome.error == "the run passed its deadline of 0.2 s; still running: w"
    assert outcome.memory.statuses() == {"w": "canceled"}


def test_the_deadline_reaches_into_nested_flows() -> None:
    child = flow(node("w", "wait", seconds=5))
    outcome = run(flow(node("call", "interflow", flow_id=2)), others={2: child}, deadline=0.2)
    assert outcome.status == "failed"
    assert outcome.memory.statuses() == {"call/w": "canceled", "call": "canceled"}


def test_a_stopped_run_ends_stopped() -> None:
    async def scenario() -> tuple[str, str | None]:
        engine: list[Run] = []
        pending = asyncio.create_task(run_async(flow(node("w", "wait", seconds=5)), engine=engine))
        await asyncio.sleep(0.1)
        engine[0].stop("stopped by its owner")
        outcome = await pending
        return outcome.status, outcome.error

    assert asyncio.run(scenario()) == ("stopped", "stopped by its owner")


def test_an_empty_flow_succeeds_with_no_outputs() -> None:
    outcome = run(flow())
    assert (outcome.status, outcome.outputs, outcome.memory.nodes) == ("succeeded", {}, [])


def test_a_command_that_raises_unexpectedly_fails_its_node_not_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(Command):
        name = "broken"
        outputs = (Port("output"),)

        async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
            raise KeyError("oops")

    monkeypatch.setitem(REGISTRY, "broken", Broken)
    outcome = run(flow(node("b", "broken")))
    assert outcome.status == "failed"
    assert outcome.error == "node 'b' (broken) failed: internal error in broken: KeyError: 'oops'"


def test_a_command_that_forgets_an_output_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class Forgetful(Command):
        name = "forgetful"
        outputs = (Port("output"),)

        async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
            return {}

    monkeypatch.setitem(REGISTRY, "forgetful", Forgetful)
    outcome = run(flow(node("f", "forgetful")))
    assert outcome.error == "node 'f' (forgetful) failed: finished without its 'output' output"


def test_a_node_whose_optional_input_gets_nothing_still_runs() -> None:
    outcome = run(
        flow(
            node("if", "branch", condition=False, value="v"),
            node("w", "wait", seconds=0),
            node("out", "flow_output", label="w"),
            edges=[edge("if", "w", "true", "value"), edge("w", "out", "value")],
        )
    )
    assert (outcome.status, outcome.outputs) == ("succeeded", {"w": {"N": 0}})
    assert outcome.memory.statuses()["w"] == "succeeded"


def test_a_returned_transaction_stops_the_run_keeping_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Returning(Command):
        name = "returning"
        inputs = (Port("after", required=False),)
        outputs = (Port("output"),)

        async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
            raise ReturnTransaction("AQID")

    monkeypatch.setitem(REGISTRY, "returning", Returning)
    outcome, result = _run_with_result(
        flow(
            node("early", "const", value="kept"),
            node("out", "flow_output", label="early"),
            node("w", "wait", seconds=0.05),
            node("tx", "returning"),
            node("slow", "wait", seconds=5),
            node("never", "flow_output", label="never"),
            edges=[
                edge("early", "out"),
                edge("w", "tx", "value", "after"),
                edge("tx", "never"),
            ],
        )
    )
    assert (outcome.status, outcome.error) == ("stopped", None)
    assert result.transaction == "AQID"
    # kept, and the transaction among the outputs too, where upstream's clients read it
    assert outcome.outputs == {"early": {"S": "kept"}, "transaction": {"S": "AQID"}}
    statuses = outcome.memory.statuses()
    assert statuses["tx"] == "stopped"
    assert statuses["slow"] == "canceled"
    assert "never" not in statuses


def _run_with_result(document: dict[str, Any]) -> tuple[Outcome, RunResult]:
    graphs = build_flow_set({1: document}, 1)
    memory = Memory()
    result = asyncio.run(Run(graphs, memory, deadline_seconds=10).execute(1, {}))
    return Outcome(result, memory), result
