"""The two flow document formats, read into one shape the graph builder takes.

- This service's ("flowdeploy"): `nodes[].data.node_id` / `.config`, and edges naming ports:
  `sourceHandle` is an output port's name, `targetHandle` an input port's name.
- Space Operator's ("spaceoperator"), as its editor saves and exports flows: each node
  declares its ports with ids, under `data.ports.inputs` / `.outputs` (flows_v2) or
  `data.inputs` / `.outputs` (older rows and test files), and edges connect port ids; a
  `sourceHandle` of `passthrough-<input port id>` is that input passed through. Nodes of
  type `mock` are editor placeholders: upstream ignores them and their edges, so do we.

A document is one format or the other: the format is told by its nodes (ports declared
with ids, or not), and a document mixing both kinds of node is refused, so a command's
meaning never depends on a guess per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowdeploy.engine.command import FLOWDEPLOY, SPACE_OPERATOR, Declared
from flowdeploy.engine.ports import FREE, Port
from flowdeploy.errors import BadRequest
from flowdeploy.upstream_names import unscoped

PASSTHROUGH = "passthrough-"
MOCK = "mock"


class DocumentInvalid(BadRequest):
    """A flow document that cannot be read (before any command is looked at)."""


@dataclass(slots=True)
class NodeSpec:
    id: str
    command: object  # data.node_id as sent; the builder checks it names a command
    config: object
    declared: Declared | None
    node_type: str  # Space Operator's node `type`: native, deno, bun, WASM (mock is dropped)


@dataclass(slots=True)
class EdgeSpec:
    where: str  # how messages name the edge
    source: str
    out_port: str
    target: str
    in_port: str
    passthrough: bool = False


@dataclass(slots=True)
class Document:
    format: str
    nodes: list[NodeSpec]
    edges: list[EdgeSpec]


def _data(node: Mapping[str, Any]) -> Mapping[str, Any]:
    data = node.get("data")
    return data if isinstance(data, Mapping) else {}


def _port_lists(data: Mapping[str, Any]) -> tuple[list[Any], list[Any]] | None:
    """The node's declared (inputs, outputs), or None when it declares none."""
    ports = data.get("ports")
    if isinstance(ports, Mapping):
        return list(ports.get("inputs") or []), list(ports.get("outputs") or [])
    inputs, outputs = data.get("inputs"), data.get("outputs")
    if isinstance(inputs, list) or isinstance(outputs, list):
        return list(inputs or []), list(outputs or [])
    return None


def document_format(document: Mapping[str, Any]) -> str:
    """FLOWDEPLOY or SPACE_OPERATOR; DocumentInvalid for a document mixing both."""
    declaring: list[str] = []
    plain: list[str] = []
    for node in document.get("nodes") or []:
        if not isinstance(node, Mapping) or node.get("type") == MOCK:
            continue
        (declaring if _port_lists(_data(node)) is not None else plain).append(str(node.get("id")))
    if declaring and plain:
        raise DocumentInvalid(
            f"node {declaring[0]!r} declares its ports with ids (Space Operator's format) but "
            f"node {plain[0]!r} does not (this service's format): a flow is in one format"
        )
    return SPACE_OPERATOR if declaring else FLOWDEPLOY


def read(document: Mapping[str, Any]) -> Document:
    """The document's nodes and edges, edges naming ports by name."""
    nodes = []
    for node in document.get("nodes") or []:
        data = _data(node)
        declares = "ports" in data or "inputs" in data or "outputs" in data
        if declares and document_format(document) == SPACE_OPERATOR:
            return _read_space_operator(document)
        nodes.append(
            NodeSpec(str(node.get("id")), data.get("node_id"), data.get("config") or {}, None, "")
        )
    return _read_flowdeploy(document, nodes)


def _read_flowdeploy(document: Mapping[str, Any], nodes: list[NodeSpec]) -> Document:
    edges = []
    for index, edge in enumerate(document.get("edges") or []):
        source, target = str(edge.get("source")), str(edge.get("target"))
        out_port, in_port = str(edge.get("sourceHandle")), str(edge.get("targetHandle"))
        where = f"edge {index} ({source}.{out_port} -> {target}.{in_port})"
        edges.append(EdgeSpec(where, source, out_port, target, in_port))
    return Document(FLOWDEPLOY, nodes, edges)


def _flag(port: Mapping[str, Any], key: str) -> bool:
    return port.get(key) is True


def _declared_port(port: object, where: str, output: bool) -> tuple[str, Port]:
    if not isinstance(port, Mapping) or not isinstance(port.get("name"), str):
        raise DocumentInvalid(f"{where}: each port needs a name and an id")
    port_id = port.get("id")
    if not isinstance(port_id, str) or not port_id:
        raise DocumentInvalid(f"{where}: port {port['name']!r} has no id")
    if output:
        kind = port.get("type")
        declared = Port(
            port["name"],
            required=not _flag(port, "optional"),
            types=(kind if isinstance(kind, str) and kind else FREE,),
        )
    else:
        bounds = port.get("type_bounds")
        types = tuple(b for b in bounds if isinstance(b, str)) if isinstance(bounds, list) else ()
        declared = Port(
            port["name"],
            required=_flag(port, "required"),
            types=types or (FREE,),
            passthrough=_flag(port, "passthrough"),
        )
    return port_id, declared


def _read_space_operator(document: Mapping[str, Any]) -> Document:
    nodes: list[NodeSpec] = []
    mocks: set[str] = set()
    # (node id, port id) -> port name, per direction
    inputs: dict[tuple[str, str], str] = {}
    outputs: dict[tuple[str, str], str] = {}
    for node in document.get("nodes") or []:
        node_id = str(node.get("id"))
        node_type = node.get("type") if isinstance(node.get("type"), str) else "native"
        if node_type == MOCK:
            mocks.add(node_id)
            continue
        data = _data(node)
        declared_inputs, declared_outputs = _port_lists(data) or ([], [])
        where = f"node {node_id!r}"
        ins, outs = [], []
        for port in declared_inputs:
            port_id, declared = _declared_port(port, where, output=False)
            inputs[(node_id, port_id)] = declared.name
            ins.append(declared)
        for port in declared_outputs:
            port_id, declared = _declared_port(port, where, output=True)
            outputs[(node_id, port_id)] = declared.name
            outs.append(declared)
        name = data.get("node_id")
        nodes.append(
            NodeSpec(
                node_id,
                unscoped(name) if isinstance(name, str) else name,
                data.get("config") or {},
                Declared(tuple(ins), tuple(outs)),
                str(node_type),
            )
        )
    known = {node.id for node in nodes}
    edges = []
    for index, edge in enumerate(document.get("edges") or []):
        source, target = str(edge.get("source")), str(edge.get("target"))
        if source in mocks or target in mocks:
            continue
        out_handle, in_handle = str(edge.get("sourceHandle")), str(edge.get("targetHandle"))
        where = f"edge {index} ({source} -> {target})"
        for role, node_id in (("source", source), ("target", target)):
            if node_id not in known:
                raise DocumentInvalid(f"{where}: {role} node {node_id!r} does not exist")
        passthrough = out_handle.startswith(PASSTHROUGH)
        if passthrough:
            out_port = inputs.get((source, out_handle.removeprefix(PASSTHROUGH)))
        else:
            out_port = outputs.get((source, out_handle))
        if out_port is None:
            kind = "input port (passed through)" if passthrough else "output port"
            raise DocumentInvalid(
                f"{where}: node {source!r} declares no {kind} with id "
                f"{out_handle.removeprefix(PASSTHROUGH)!r}"
            )
        in_port = inputs.get((target, in_handle))
        if in_port is None:
            raise DocumentInvalid(
                f"{where}: node {target!r} declares no input port with id {in_handle!r}"
            )
        where = f"edge {index} ({source}.{out_port} -> {target}.{in_port})"
        edges.append(EdgeSpec(where, source, out_port, target, in_port, passthrough))
    return Document(SPACE_OPERATOR, nodes, edges)
