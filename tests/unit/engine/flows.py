"""Small factories for flow documents and an in-memory way to run them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flowdeploy.engine import LogLine, NodeRun, Run, RunResult, build_flow_set
from flowdeploy.engine.scheduler import MAX_NODE_RUNS
from flowdeploy.engine.services import RunServices
from flowdeploy.values import IValue, decode_map, encode_map


def node(node_id: str, command: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "data": {"node_id": command, "config": config}}


def edge(source: str, target: str, out: str = "output", into: str = "input") -> dict[str, Any]:
    return {"source": source, "sourceHandle": out, "target": target, "targetHandle": into}


def flow(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"nodes": list(nodes), "edges": edges or []}


class Memory:
    """A Recorder that keeps everything in lists."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int, dict[str, IValue]]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.nodes: list[NodeRun] = []
        self.logs: list[LogLine] = []

    def node_started(self, node_id: str, times: int, inputs: Mapping[str, IValue]) -> None:
        self.started.append((node_id, times, dict(inputs)))

    def node(self, run: NodeRun) -> None:
        self.nodes.append(run)

    def log(self, line: LogLine) -> None:
        self.logs.append(line)

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        self.events.append((kind, dict(data)))

    async def room(self) -> None:
        return  # lists have room

    def status(self, node_id: str) -> str:
        return next(run.status for run in self.nodes if run.node_id == node_id)

    def statuses(self) -> dict[str, str]:
        return {run.node_id: run.status for run in self.nodes}


class Outcome:
    def __init__(self, result: RunResult, memory: Memory) -> None:
        self.status = result.status
        self.error = result.error
        self.outputs = encode_map(result.outputs)
        self.not_run = result.not_run
        self.memory = memory


def run(
    document: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    others: dict[int, dict[str, Any]] | None = None,
    deadline: float = 10,
    allow_private: bool = True,
    services: RunServices | None = None,
    max_node_runs: int = MAX_NODE_RUNS,
) -> Outcome:
    """Run flow 1 (`document`), with flows `others` available to interflow nodes."""
    return asyncio.run(
        run_async(
            document,
            inputs,
            others=others,
            deadline=deadline,
            allow_private=allow_private,
            services=services,
            max_node_runs=max_node_runs,
        )
    )


async def run_async(
    document: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    *,
    others: dict[int, dict[str, Any]] | None = None,
    deadline: float = 10,
    allow_private: bool = True,
    engine: list[Run] | None = None,
    services: RunServices | None = None,
    max_node_runs: int = MAX_NODE_RUNS,
) -> Outcome:
    graphs = build_flow_set({1: document, **(others or {})}, 1)
    memory = Memory()
    flow_run = Run(
        graphs,
        memory,
        deadline_seconds=deadline,
        http_allow_private=allow_private,
        services=services,
        max_node_runs=max_node_runs,
    )
    if engine is not None:
        engine.append(flow_run)
    result = await flow_run.execute(1, decode_map(inputs or {}, "inputs"))
    return Outcome(result, memory)


def one_node(
    command: str, inputs: dict[str, Any], services: RunServices | None = None, **config: Any
) -> Outcome:
    """Run one `command` node whose inputs come from flow inputs of the same names and whose
    outputs all become flow outputs of the same names."""
    from flowdeploy.engine import REGISTRY

    nodes = [node("n", command, **config)]
    edges = []
    for name in inputs:
        nodes.append(node(f"in-{name}", "flow_input", label=name))
        edges.append(edge(f"in-{name}", "n", "output", name))
    for port in REGISTRY[command].outputs:
        nodes.append(node(f"out-{port.name}", "flow_output", label=port.name))
        edges.append(edge("n", f"out-{port.name}", port.name, "input"))
    return run(flow(*nodes, edges=edges), inputs, services=services)


def value(doc: dict[str, Any]) -> IValue:
    return IValue.from_json(doc)


def plus_one_loop(elements: int) -> dict[str, Any]:
    """const [0..elements) → foreach → add 1 → collect → flow_output: elements + 4 node runs."""
    return {
        "nodes": [
            node("list", "const", value=list(range(elements))),
            node("each", "foreach"),
            node("plus", "add", b=1),
            node("all", "collect"),
            node("out", "flow_output", label="all"),
        ],
        "edges": [
            edge("list", "each", into="array"),
            edge("each", "plus", "element", "a"),
            edge("plus", "all", "result", "element"),
            edge("all", "out", "array"),
        ],
    }


class Publishing:
    """RunFunction's recorder without the storage: every event of the run built and kept
    (`stream.kept`)."""

    def __init__(self, run_id: str = "01a23302-0000-7000-8000-000000000000") -> None:
        from flowdeploy.live.run_stream import RunStream

        self.stream = RunStream(run_id, "owner")

    def node_started(self, node_id: str, times: int, inputs: Any) -> None:
        self.stream.node_started(node_id, times, inputs)

    def node(self, run: Any) -> None:
        self.stream.node_finished(run)

    def log(self, line: Any) -> None:
        self.stream.log(line)

    def event(self, kind: str, data: Any) -> None:
        self.stream.publish(kind, data)

    async def room(self) -> None:
        return  # nothing is held
