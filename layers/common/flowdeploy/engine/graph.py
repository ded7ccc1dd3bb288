"""A flow document as a checked graph of commands.

Building a FlowGraph is the validation run when a flow is saved and when it is deployed:
every problem is a 400 naming the node and port, so a deployed flow cannot fail to start
for a reason that was visible in its document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowdeploy.engine.command import REGISTRY, Command, Config, ConfigError
from flowdeploy.errors import BadRequest
from flowdeploy.values import IValue


class FlowInvalid(BadRequest):
    """A flow document the engine cannot run."""


@dataclass(slots=True)
class GraphNode:
    id: str
    command: Command
    # input port -> (source node id, source output port)
    incoming: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (output port, target node id, target input port)
    outgoing: list[tuple[str, str, str]] = field(default_factory=list)
    # input ports with no edge, filled from the node's config
    preset: dict[str, IValue] = field(default_factory=dict)
    # connected input ports the node may start without (their source produced nothing)
    optional: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"node {self.id!r} ({self.command.name})"


@dataclass(slots=True)
class FlowGraph:
    flow_id: int | None
    nodes: dict[str, GraphNode]
    _labels: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def labels(self, command: str) -> dict[str, list[str]]:
        """label -> node ids of this flow's `flow_input` or `flow_output` nodes (computed once)."""
        found = self._labels.get(command)
        if found is None:
            found = {}
            for node in self.nodes.values():
                if node.command.name == command:
                    try:
                        label: str = getattr(node.command, "label")  # noqa: B009
                    except ConfigError:
                        continue  # that node's own check reports it
                    found.setdefault(label, []).append(node.id)
            self._labels[command] = found
        return found

    def output_nodes(self, label: str) -> list[str]:
        return self.labels("flow_output").get(label, [])

    @classmethod
    def build(cls, document: Mapping[str, Any], flow_id: int | None = None) -> FlowGraph:
        """Check `document` (nodes, edges) and return its graph; FlowInvalid if it cannot run."""
        nodes = _nodes(document.get("nodes") or [])
        graph = cls(flow_id, nodes)
        _connect(nodes, document.get("edges") or [])
        for node in nodes.values():
            _fill_inputs(node)
        for node in nodes.values():
            try:
                node.command.check(graph, node.id)
            except ConfigError as error:
                raise FlowInvalid(f"{node.label}: {error}") from None
        _reject_cycles(nodes)
        return graph


def _nodes(documents: list[Any]) -> dict[str, GraphNode]:
    nodes: dict[str, GraphNode] = {}
    for document in documents:
        node_id = str(document.get("id"))
        data = document.get("data") or {}
        name = data.get("node_id")
        command = REGISTRY.get(name) if isinstance(name, str) else None
        if command is None:
            known = ", ".join(sorted(REGISTRY))
            raise FlowInvalid(f"node {node_id!r}: unknown command {name!r}; known: {known}")
        if node_id in nodes:
            raise FlowInvalid(f"node {node_id!r}: duplicate node id")
        config = data.get("config") or {}
        if not isinstance(config, dict):
            raise FlowInvalid(f"node {node_id!r} ({name}): config must be an object")
        nodes[node_id] = GraphNode(node_id, command(Config(config)))
    return nodes


def _connect(nodes: dict[str, GraphNode], edges: list[Any]) -> None:
    for index, edge in enumerate(edges):
        source_id, target_id = str(edge.get("source")), str(edge.get("target"))
        out_port, in_port = str(edge.get("sourceHandle")), str(edge.get("targetHandle"))
        where = f"edge {index} ({source_id}.{out_port} -> {target_id}.{in_port})"
        source, target = nodes.get(source_id), nodes.get(target_id)
        if source is None:
            raise FlowInvalid(f"{where}: source node {source_id!r} does not exist")
        if target is None:
            raise FlowInvalid(f"{where}: target node {target_id!r} does not exist")
        if not source.command.has_output(out_port):
            raise FlowInvalid(f"{where}: {source.label} has no output port {out_port!r}")
        if target.command.input_port(in_port) is None:
            raise FlowInvalid(f"{where}: {target.label} has no input port {in_port!r}")
        port = target.command.input_port(in_port)
        if in_port in target.incoming:
            other, _ = target.incoming[in_port]
            raise FlowInvalid(
                f"{target.label}: input {in_port!r} has two edges, from {other!r} and {source_id!r}"
            )
        target.incoming[in_port] = (source_id, out_port)
        # Interflow ports are all "optional" to the graph, but the called flow needs them.
        if port is not None and not port.required and not target.command.dynamic_ports:
            target.optional = target.optional | {in_port}
        source.outgoing.append((out_port, target_id, in_port))


def _fill_inputs(node: GraphNode) -> None:
    for port in node.command.inputs:
        if port.name in node.incoming:
            continue
        try:
            value = node.command.config.value(port.name)
        except ConfigError as error:
            raise FlowInvalid(f"{node.label}: {error}") from None
        if value is not None:
            node.preset[port.name] = value
        elif port.required:
            raise FlowInvalid(f"{node.label}: input {port.name!r} needs an edge or a config value")


def _reject_cycles(nodes: dict[str, GraphNode]) -> None:
    waiting = {node_id: len(node.incoming) for node_id, node in nodes.items()}
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    while ready:
        node = nodes[ready.pop()]
        for _, target, _ in node.outgoing:
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    stuck = [node_id for node_id, count in waiting.items() if count > 0]
    if stuck:
        shown = ", ".join(repr(node_id) for node_id in stuck[:5])
        raise FlowInvalid(f"edges form a cycle: nodes {shown} can never start")


# -- A deployment's flows together ---------------------------------------------


def build_flow_set(flows: Mapping[int, Mapping[str, Any]], entry: int) -> dict[int, FlowGraph]:
    """Every flow's graph, with interflow calls checked: the called flow is in the set, the
    ports match its flow_input/flow_output labels, and no flow calls itself (even through
    others). Messages start with the flow id."""
    graphs: dict[int, FlowGraph] = {}
    for flow_id, document in flows.items():
        try:
            graphs[flow_id] = FlowGraph.build(document, flow_id)
        except FlowInvalid as error:
            raise FlowInvalid(f"flow {flow_id}: {error.message}") from None
    for graph in graphs.values():
        for node in graph.nodes.values():
            if node.command.name != "interflow":
                continue
            _check_call(graph, node, graphs)
    _reject_recursion(graphs, entry)
    return graphs


def calls(graph: FlowGraph) -> Iterator[tuple[GraphNode, int]]:
    for node in graph.nodes.values():
        flow_id = getattr(node.command, "flow_id", None)
        if node.command.name == "interflow" and isinstance(flow_id, int):
            yield node, flow_id


def _check_call(graph: FlowGraph, node: GraphNode, graphs: Mapping[int, FlowGraph]) -> None:
    where = f"flow {graph.flow_id}: {node.label}"
    target_id: int = getattr(node.command, "flow_id")  # noqa: B009 - checked by build
    target = graphs.get(target_id)
    if target is None:
        raise FlowInvalid(f"{where}: calls flow {target_id}, which is not in the deployment")
    inputs, outputs = target.labels("flow_input"), target.labels("flow_output")
    for port in node.incoming:
        if port not in inputs:
            raise FlowInvalid(
                f"{where}: input {port!r} is not a flow_input of flow {target_id} "
                f"(it has: {', '.join(sorted(inputs)) or 'none'})"
            )
    for port, _, _ in node.outgoing:
        if port not in outputs:
            raise FlowInvalid(
                f"{where}: output {port!r} is not a flow_output of flow {target_id} "
                f"(it has: {', '.join(sorted(outputs)) or 'none'})"
            )


def _reject_recursion(graphs: Mapping[int, FlowGraph], entry: int) -> None:
    callees = {fid: sorted({callee for _, callee in calls(g)}) for fid, g in graphs.items()}
    state: dict[int, str] = {}
    # Iterative depth-first search; `path` is the chain of calls being explored.
    for root in [entry, *callees]:
        if root in state:
            continue
        path: list[int] = [root]
        iterators = [iter(callees.get(root, []))]
        state[root] = "open"
        while iterators:
            callee = next(iterators[-1], None)
            if callee is None:
                state[path.pop()] = "done"
                iterators.pop()
                continue
            if state.get(callee) == "open":
                cycle = [*path[path.index(callee) :], callee]
                chain = " -> ".join(f"flow {fid}" for fid in cycle)
                raise FlowInvalid(f"interflow recursion: {chain}")
            if callee not in state:
                state[callee] = "open"
                path.append(callee)
                iterators.append(iter(callees.get(callee, [])))
