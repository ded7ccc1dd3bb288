"""What one run of a deployment must do, known at deploy: how deep its nested flows go and
how many nodes it runs. Over a limit is a 400 naming the limit and the flows."""

from __future__ import annotations

from typing import Any

import pytest

from flowdeploy.engine import FlowInvalid, build_flow_set
from flowdeploy.engine.bounds import check_bounds
from tests.unit.engine.flows import flow, node


def calls(*targets: int, extra: int = 0) -> dict[str, Any]:
    """A flow of one interflow node per target, plus `extra` const nodes."""
    nodes = [node(f"call{i}", "interflow", flow_id=target) for i, target in enumerate(targets)]
    nodes += [node(f"c{i}", "const", value=i) for i in range(extra)]
    return flow(*nodes)


LEAF = flow(node("c", "const", value=1))


def check(flows: dict[int, dict[str, Any]], *, depth: int = 256, node_runs: int = 10_000) -> None:
    check_bounds(build_flow_set(flows, 1), 1, max_depth=depth, max_node_runs=node_runs)


def refusal(flows: dict[int, dict[str, Any]], **limits: int) -> str:
    with pytest.raises(FlowInvalid) as refused:
        check(flows, **limits)
    return refused.value.message


def issue_16_set() -> dict[int, dict[str, Any]]:
    """Five small flows: 10 interflow nodes per level, 4 levels, one node at the bottom."""
    flows = {level: calls(*[level + 1] * 10) for level in range(1, 5)}
    return {**flows, 5: LEAF}


def test_five_flows_of_ten_calls_per_level_run_21110_nodes_and_are_refused() -> None:
    assert refusal(issue_16_set()) == (
        "flow 1 runs 21,110 nodes, more than the limit of 10,000 node runs per run "
        "(FLOW_MAX_NODE_RUNS; a nested flow counts each time it is called): "
        "flow 1 = 10 nodes + 10 calls of flow 2 (2,110 each); "
        "flow 2 = 10 nodes + 10 calls of flow 3 (210 each); "
        "flow 3 = 10 nodes + 10 calls of flow 4 (20 each); "
        "flow 4 = 10 nodes + 10 calls of flow 5 (1 each); flow 5 = 1 node"
    )


def test_the_same_set_within_a_higher_limit_passes() -> None:
    check(issue_16_set(), node_runs=21_110)


def test_every_call_of_a_flow_counts_and_the_heaviest_are_named_first() -> None:
    flows = {1: calls(2, 3, 3, extra=1), 2: calls(4, 4), 3: LEAF, 4: LEAF}
    message = refusal(flows, node_runs=9)
    assert message.startswith("flow 1 runs 10 nodes, more than the limit of 9 node runs")
    assert message.endswith(
        "flow 1 = 4 nodes + 1 call of flow 2 (4 each) + 2 calls of flow 3 (1 each); "
        "flow 2 = 2 nodes + 2 calls of flow 4 (1 each); flow 4 = 1 node"
    )


def test_a_chain_deeper_than_the_nesting_limit_is_refused_naming_it() -> None:
    chain = {i: calls(i + 1) for i in range(1, 258)}
    chain[258] = LEAF
    assert refusal(chain) == (
        "nested flows go 257 levels deep, deeper than the nesting limit of 256 levels "
        "(FLOW_MAX_NESTING): flow 1 -> flow 2 -> flow 3 -> ... (252 more) -> flow 256 -> "
        "flow 257 -> flow 258"
    )
    del chain[257]
    chain[256] = calls(258)
    check(chain)  # 256 levels: as deep as a run may go


def test_a_flow_that_calls_itself_deploys_its_recursion_is_bounded_as_it_runs() -> None:
    check({1: calls(1, 1, extra=3)}, depth=1, node_runs=5)
    check({1: calls(2), 2: calls(1)}, depth=1, node_runs=2)


def test_levels_around_a_recursion_still_count() -> None:
    # 1 -> 2 <-> 3 -> 4 -> 5: the shortest way through the recursion is one level (2 -> 3).
    flows = {1: calls(2), 2: calls(3), 3: calls(2, 4), 4: calls(5), 5: LEAF}
    check(flows, depth=4)
    assert refusal(flows, depth=3) == (
        "nested flows go 4 levels deep, deeper than the nesting limit of 3 levels "
        "(FLOW_MAX_NESTING): flow 1 -> flow 2 -> flow 3 -> flow 4 -> flow 5"
    )


def test_a_recursive_flow_called_often_counts_once_per_call() -> None:
    # Collatz-like: flow 2 calls itself (counted as it runs) and is called 10 times.
    flows = {1: calls(*[2] * 10), 2: calls(2, extra=4)}
    check(flows, node_runs=60)
    assert refusal(flows, node_runs=59).startswith("flow 1 runs 60 nodes")


def test_counts_that_multiply_past_any_limit_are_said_shortly() -> None:
    flows = {i: calls(*[i + 1] * 10) for i in range(1, 21)}
    flows[21] = LEAF
    message = refusal(flows)
    assert message.startswith("flow 1 runs over 10^20 nodes, more than the limit of 10,000")
    assert "flow 2 (over 10^19 each)" in message and len(message) < 1_000
