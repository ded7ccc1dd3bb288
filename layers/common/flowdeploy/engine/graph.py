"""A flow document as a checked graph of commands.

Building a FlowGraph is the validation run when a flow is saved and when it is deployed:
every problem is a 400 naming the node and port, so a deployed flow cannot fail to start
for a reason that was visible in its document. Both document formats (`documents`) build
the same graph; the format only decides which declaration each command name gets.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowdeploy.engine.command import (
    NODE_TYPES,
    REGISTRIES,
    SPACE_OPERATOR,
    Command,
    Config,
    ConfigError,
)
from flowdeploy.engine.convert import ConversionError
from flowdeploy.engine.documents import Document, DocumentInvalid, read
from flowdeploy.engine.ports import compatible
from flowdeploy.errors import BadRequest
from flowdeploy.values import IValue

# Script runtimes of Space Operator this service does not have (Deno nodes it runs).
SCRIPT_PREFIXES = ("bun_",)
SCRIPT_NODE_TYPES = frozenset({"bun", "WASM"})


class FlowInvalid(BadRequest):
    """A flow document the engine cannot run."""


def is_script_node(command: str, node_type: str = "native") -> bool:
    return node_type in SCRIPT_NODE_TYPES or command.startswith(SCRIPT_PREFIXES)


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
    # output ports the command may leave out (a missing one is "no value" downstream)
    optional_outputs: frozenset[str] = frozenset()
    # input ports whose value is also an output of the same name
    passthrough: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    # downstream of a foreach: it may run more than once
    in_loop: bool = False
    # input ports fed from inside a loop (their values queue up, one per element)
    looped_ports: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"node {self.id!r} ({self.command.name})"


@dataclass(slots=True)
class FlowGraph:
    flow_id: int | None
    nodes: dict[str, GraphNode]
    format: str = "flowdeploy"
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
        try:
            read_document = read(document)
        except DocumentInvalid as error:
            raise FlowInvalid(error.message) from None
        nodes = _nodes(read_document)
        graph = cls(flow_id, nodes, read_document.format)
        _connect(nodes, read_document)
        for node in nodes.values():
            _fill_inputs(node)
            _finish(node)
        for node in nodes.values():
            try:
                for config_field in node.command.config_fields:
                    node.command.config.field(config_field)
                node.command.check(graph, node.id)
            except ConfigError as error:
                raise FlowInvalid(f"{node.label}: {error}") from None
        _reject_cycles(nodes)
        _mark_loops(nodes)
        return graph


def _nodes(document: Document) -> dict[str, GraphNode]:
    registry = REGISTRIES[document.format]
    nodes: dict[str, GraphNode] = {}
    for spec in document.nodes:
        name = spec.command
        if spec.node_type in SCRIPT_NODE_TYPES:
            raise FlowInvalid(_unknown(spec.id, name, spec.node_type, document.format))
        command = NODE_TYPES.get(spec.node_type) if document.format == SPACE_OPERATOR else None
        if command is None:
            command = registry.get(name) if isinstance(name, str) else None
        if command is None:
            raise FlowInvalid(_unknown(spec.id, name, spec.node_type, document.format))
        if spec.id in nodes:
            raise FlowInvalid(f"node {spec.id!r}: duplicate node id")
        if not isinstance(spec.config, dict):
            raise FlowInvalid(f"node {spec.id!r} ({name}): config must be an object")
        instance = command(Config(spec.config), spec.declared)
        if isinstance(name, str):
            instance.node_name = name
        nodes[spec.id] = GraphNode(spec.id, instance)
    return nodes


def _unknown(node_id: str, name: object, node_type: str, document_format: str) -> str:
    known = ", ".join(sorted(REGISTRIES[document_format]))
    if document_format != SPACE_OPERATOR:
        return f"node {node_id!r}: unknown command {name!r}; known: {known}"
    if isinstance(name, str) and is_script_node(name, node_type):
        return (
            f"node {node_id!r}: command {name!r} is a {node_type} node; not supported: "
            f"{node_type} nodes (JavaScript runs here in Deno nodes, of type deno)"
        )
    return f"node {node_id!r}: unknown command {name!r} (Space Operator format); known: {known}"


def _connect(nodes: dict[str, GraphNode], document: Document) -> None:
    for edge in document.edges:
        where = edge.where
        source, target = nodes.get(edge.source), nodes.get(edge.target)
        if source is None:
            raise FlowInvalid(f"{where}: source node {edge.source!r} does not exist")
        if target is None:
            raise FlowInvalid(f"{where}: target node {edge.target!r} does not exist")
        out_port, in_port = edge.out_port, edge.in_port
        if edge.passthrough:
            passed = source.command.input_port(out_port)
            produced = passed if passed is not None and passed.passthrough else None
        else:
            produced = source.command.output_port(out_port)
        if produced is None:
            kind = "passthrough input" if edge.passthrough else "output port"
            raise FlowInvalid(f"{where}: {source.label} has no {kind} {out_port!r}")
        port = target.command.input_port(in_port)
        if port is None:
            raise FlowInvalid(f"{where}: {target.label} has no input port {in_port!r}")
        if in_port in target.incoming:
            other, _ = target.incoming[in_port]
            raise FlowInvalid(
                f"{target.label}: input {in_port!r} has two edges, "
                f"from {other!r} and {edge.source!r}"
            )
        if not compatible(produced.type, port.types):
            raise FlowInvalid(
                f"{where}: {source.label} output {out_port!r} gives {produced.type}, but "
                f"{target.label} input {in_port!r} takes {' or '.join(port.types)}"
            )
        target.incoming[in_port] = (edge.source, out_port)
        # Interflow ports are all "optional" to the graph, but the called flow needs them.
        if not port.required and not target.command.passes_inputs_on:
            target.optional = target.optional | {in_port}
        source.outgoing.append((out_port, edge.target, in_port))


def _fill_inputs(node: GraphNode) -> None:
    for port in node.command.inputs:
        if port.name in node.incoming:
            continue
        try:
            value = node.command.config.value(port.name)
        except ConfigError as error:
            raise FlowInvalid(f"{node.label}: {error}") from None
        if value is not None:
            if port.rule is not None:
                try:
                    port.rule(value)
                except ConversionError as error:
                    raise FlowInvalid(f"{node.label}: input {port.name!r}: {error}") from None
            node.preset[port.name] = value
        elif port.required:
            raise FlowInvalid(f"{node.label}: input {port.name!r} needs an edge or a config value")


_STATIC: dict[type[Command], tuple[frozenset[str], tuple[str, ...]]] = {}


def _static_ports(command: type[Command]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(optional outputs, passthrough inputs) of a command with fixed ports (computed once)."""
    found = _STATIC.get(command)
    if found is None:
        found = _STATIC[command] = (
            frozenset(port.name for port in command.outputs if not port.required),
            tuple(port.name for port in command.inputs if port.passthrough),
        )
    return found


def _finish(node: GraphNode) -> None:
    command = node.command
    if command.dynamic_ports:
        optional = frozenset(port.name for port in command.output_ports() if not port.required)
        passing = tuple(port.name for port in command.input_ports() if port.passthrough)
    else:
        optional, passing = _static_ports(type(command))
    node.optional_outputs = optional
    if passing:
        node.passthrough = tuple(
            name for name in passing if name in node.incoming or name in node.preset
        )
    node.sources = tuple({source for source, _ in node.incoming.values()})
    node.targets = tuple({target for _, target, _ in node.outgoing})


def _mark_loops(nodes: dict[str, GraphNode]) -> None:
    pending = [
        target for node in nodes.values() if node.command.splits_arrays for target in node.targets
    ]
    while pending:
        node = nodes[pending.pop()]
        if not node.in_loop:
            node.in_loop = True
            pending.extend(node.targets)
    for node in nodes.values():
        looped = {
            port
            for port, (source, _) in node.incoming.items()
            if nodes[source].in_loop or nodes[source].command.splits_arrays
        }
        if looped:
            node.looped_ports = frozenset(looped)


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
    """Every flow's graph, with nested-flow calls checked: the called flow is in the set and
    the ports match its flow_input/flow_output labels. A flow may call itself (directly or
    through others): such recursion is bounded when the run goes deeper than the nesting
    limit. Messages start with the flow id."""
    graphs: dict[int, FlowGraph] = {}
    for flow_id, document in flows.items():
        try:
            graphs[flow_id] = FlowGraph.build(document, flow_id)
        except FlowInvalid as error:
            raise FlowInvalid(f"flow {flow_id}: {error.message}") from None
    if entry not in graphs:
        raise FlowInvalid(f"flow {entry} is not in the deployment")
    for graph in graphs.values():
        for node, flow_id in calls(graph):
            _check_call(graph, node, flow_id, graphs)
    return graphs


def calls(graph: FlowGraph) -> Iterator[tuple[GraphNode, int]]:
    """(node, called flow id) of every node that runs another flow."""
    for node in graph.nodes.values():
        flow_id = getattr(node.command, "called_flow", None)
        if isinstance(flow_id, int):
            yield node, flow_id


def _check_call(
    graph: FlowGraph, node: GraphNode, target_id: int, graphs: Mapping[int, FlowGraph]
) -> None:
    where = f"flow {graph.flow_id}: {node.label}"
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
    if not getattr(node.command, "outputs_are_labels", True):
        return
    for port, _, _ in node.outgoing:
        if port not in outputs:
            raise FlowInvalid(
                f"{where}: output {port!r} is not a flow_output of flow {target_id} "
                f"(it has: {', '.join(sorted(outputs)) or 'none'})"
            )
