"""Engine overhead: what the scheduler adds to the commands' own work, per node.

In-process, with node records buffered as RunFunction buffers them (its recorder writes
them in batches in the background). The baseline, in the same run, calls the same
commands' `run` directly in a plain loop: overhead per node = (run − direct) / nodes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench.report import Row, median, print_rows

CHAIN = 10_000
WIDTH = 1_000
LOOP = 10_000
WAITS = 100
WAIT_SECONDS = 0.2
REPEATS = 3


def _chain() -> dict[str, Any]:
    from bench.inprocess import chain

    nodes, edges = chain(CHAIN)
    return {"nodes": nodes, "edges": edges}


def _fan() -> dict[str, Any]:
    """const → WIDTH `add` nodes → a binary tree of `add`s summing them → flow_output."""
    from tests.unit.engine.flows import edge, node

    nodes = [node("src", "const", value=1)]
    edges = []
    level = []
    for i in range(WIDTH):
        nodes.append(node(f"f{i}", "add", b=i))
        edges.append(edge("src", f"f{i}", into="a"))
        level.append(f"f{i}")
    depth = 0
    while len(level) > 1:
        following = []
        for j in range(0, len(level) - 1, 2):
            name = f"s{depth}_{j}"
            nodes.append(node(name, "add"))
            edges.append(edge(level[j], name, "result", "a"))
            edges.append(edge(level[j + 1], name, "result", "b"))
            following.append(name)
        if len(level) % 2:
            following.append(level[-1])
        level, depth = following, depth + 1
    nodes.append(node("out", "flow_output", label="sum"))
    edges.append(edge(level[0], "out", "result", "input"))
    return {"nodes": nodes, "edges": edges}


def _waits(count: int) -> dict[str, Any]:
    from tests.unit.engine.flows import node

    return {"nodes": [node(f"w{i}", "wait", seconds=WAIT_SECONDS) for i in range(count)]}


async def _run(document: dict[str, Any]) -> tuple[float, float, Any]:
    """(seconds to build the graph, seconds to execute, the recorder)."""
    from flowdeploy.engine import Run, build_flow_set
    from tests.unit.engine.flows import Memory

    started = time.perf_counter()
    graphs = build_flow_set({1: document}, 1)
    built = time.perf_counter()
    memory = Memory()
    # Past FLOW_MAX_NODE_RUNS (10,000) on purpose: the loop runs 10,004 nodes.
    result = await Run(graphs, memory, deadline_seconds=600, max_node_runs=10**6).execute(1, {})
    assert result.status == "succeeded", result.error
    return built - started, time.perf_counter() - built, memory


class _Context:
    """Just enough of a node's context for the commands measured here."""

    node_id = "direct"
    times = 0
    flow_inputs: dict[str, Any] = {}  # noqa: RUF012
    remaining_seconds = 600.0
    http_allow_private = False

    def emit_flow_output(self, label: str, value: Any) -> None:
        pass

    def log(self, level: str, content: str) -> None:
        pass


async def _direct(memory: Any, document: dict[str, Any]) -> float:
    """The same commands with the same inputs, called in a loop: the work without the engine."""
    from flowdeploy.engine import build_flow_set

    graph = build_flow_set({1: document}, 1)[1]
    calls = [
        (graph.nodes[record.node_id].command, dict(record.inputs or {})) for record in memory.nodes
    ]
    context = _Context()
    started = time.perf_counter()
    for command, inputs in calls:
        await command.run(context, inputs)
    return time.perf_counter() - started


def _overhead(name: str, document: dict[str, Any], budget_us: float) -> list[Row]:
    runs, directs, builds = [], [], []
    nodes = len(document["nodes"])
    for _ in range(REPEATS):
        build, execute, memory = asyncio.run(_run(document))
        node_runs = len(memory.nodes)  # in a loop, a node runs once per element
        direct = asyncio.run(_direct(memory, document))
        runs.append(execute)
        directs.append(direct)
        builds.append(build)
    per_node = (median(runs) - median(directs)) / node_runs * 1e6
    return [
        Row(
            "engine",
            f"{name}: overhead per node",
            f"{per_node:.0f} µs",
            f"≤ {budget_us:.0f} µs",
            per_node <= budget_us,
            f"run {median(runs) * 1000:.0f} ms − commands alone {median(directs) * 1000:.0f} ms; "
            f"graph build {median(builds) / nodes * 1e6:.0f} µs/node",
        )
    ]


def measure() -> list[Row]:
    import tests.conftest  # noqa: F401 - the unit tests' environment

    rows = _overhead(f"{CHAIN:,}-node chain of add", _chain(), 100)
    chain_us = float(rows[0].value.split()[0])
    rows += _overhead(
        f"{WIDTH:,}-wide fan-out/fan-in ({2 * WIDTH + 1} nodes)", _fan(), 2 * chain_us
    )
    rows[-1] = Row(
        rows[-1].section,
        rows[-1].measure,
        rows[-1].value,
        "≤ 2× the chain's",
        float(rows[-1].value.split()[0]) <= 2 * max(chain_us, 1),
        rows[-1].note,
    )
    from tests.unit.engine.flows import plus_one_loop

    loop = plus_one_loop(LOOP)
    rows += _overhead(f"{LOOP:,}-element foreach → add → collect (per node run)", loop, 100)
    one = median([asyncio.run(_run(_waits(1)))[1] for _ in range(REPEATS)])
    many = median([asyncio.run(_run(_waits(WAITS)))[1] for _ in range(REPEATS)])
    rows.append(
        Row(
            "engine",
            f"{WAITS} parallel wait {WAIT_SECONDS} s vs one",
            f"{many / one:.2f}×",
            "≤ 1.5×",
            many / one <= 1.5,
            f"{many * 1000:.0f} ms vs {one * 1000:.0f} ms",
        )
    )
    return rows


if __name__ == "__main__":
    sys.exit(print_rows(measure()))
