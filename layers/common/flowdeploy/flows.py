"""Flow documents: the body of `POST /flow` / `PUT /flow/{id}` and the rules on their nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from flowdeploy import paging
from flowdeploy.errors import NotFound
from flowdeploy.settings import settings
from flowdeploy.store import flows as store

CLUSTERS = ("mainnet-beta", "testnet", "devnet", "localnet")
INTERFLOW_COMMANDS = frozenset({"interflow"})
WALLET_COMMANDS = frozenset({"wallet"})

NodeId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PortName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


# Request bodies build their validators when first used (defer_build): a function pays at
# init only for the bodies every one of its requests reads.
class SolanaNetwork(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]
    cluster: Literal["mainnet-beta", "testnet", "devnet", "localnet"]


class NodeData(BaseModel):
    # Editors store extra presentation data (ports, style, names); keep it verbatim.
    model_config = ConfigDict(extra="allow", defer_build=True)

    node_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    config: dict[str, Any] = Field(default_factory=dict)


class Node(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    id: NodeId
    data: NodeData


class Edge(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    source: NodeId
    sourceHandle: PortName
    target: NodeId
    targetHandle: PortName


def _default_network() -> SolanaNetwork:
    return SolanaNetwork.model_validate(settings().default_network)


class FlowBody(BaseModel):
    """What a caller sends to create or replace a flow."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    nodes: list[Node] = Field(default_factory=list, max_length=5000)
    edges: list[Edge] = Field(default_factory=list, max_length=20000)
    is_public: StrictBool = False
    start_shared: StrictBool = False
    start_unverified: StrictBool = False
    # Deployments made from now on may be run synchronously by /deployment/read.
    read_enabled: StrictBool = False
    current_network: SolanaNetwork = Field(default_factory=_default_network)
    environment: dict[str, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict
    )

    @field_validator("nodes")
    @classmethod
    def _unique_node_ids(cls, nodes: list[Node]) -> list[Node]:
        seen: set[str] = set()
        for node in nodes:
            if node.id in seen:
                raise ValueError(f"duplicate node id {node.id!r}")
            seen.add(node.id)
        return nodes

    def document(self) -> dict[str, Any]:
        """The JSON of the flow's editable fields, as stored."""
        return self.model_dump(mode="json")


def _config_integer(node: dict[str, Any], key: str) -> int | None:
    """A config value holding a non-negative integer: plain JSON or IValue U/I/S/D."""
    value = node.get("data", {}).get("config", {}).get(key)
    if isinstance(value, dict) and len(value) == 1:
        ((tag, payload),) = value.items()
        if tag not in {"U", "I", "U1", "I1", "S", "D"}:
            return None
        value = payload
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def interflow_targets(nodes: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    """(node id, called flow id or None if unreadable) for every interflow node."""
    return [
        (str(node.get("id")), _config_integer(node, "flow_id"))
        for node in nodes
        if node.get("data", {}).get("node_id") in INTERFLOW_COMMANDS
    ]


def wallet_ids(nodes: list[dict[str, Any]]) -> set[str]:
    """Server wallets the flow's `wallet` nodes use (config `wallet_id`: an id from
    `GET /wallet`, plain or as an S value)."""
    found = set()
    for node in nodes:
        if node.get("data", {}).get("node_id") in WALLET_COMMANDS:
            value = node.get("data", {}).get("config", {}).get("wallet_id")
            if isinstance(value, dict) and set(value) == {"S"}:
                value = value["S"]
            if isinstance(value, str) and value.strip():
                found.add(value.strip())
    return found


# -- Owner-only operations on flows (anyone else sees 404) --------------------


def _not_found(flow_id: int) -> NotFound:
    return NotFound(f"flow not found: {flow_id}")


def check_flow(document: dict[str, Any]) -> None:
    """400 naming the node and port if the engine could not run `document`."""
    # The engine loads on the first save, not with every function that reads flows.
    from flowdeploy.engine import FlowGraph

    FlowGraph.build(document)


def create_flow(user_id: str, body: FlowBody) -> dict[str, Any]:
    document = body.document()
    check_flow(document)
    return store.create(user_id, document)


def get_flow(user_id: str, flow_id: int) -> dict[str, Any]:
    item = store.get(flow_id)
    if item is None or item.user_id != user_id:
        raise _not_found(flow_id)
    return store.flow_row(item)


def replace_flow(user_id: str, flow_id: int, body: FlowBody) -> dict[str, Any]:
    document = body.document()
    check_flow(document)
    row = store.replace(flow_id, user_id, document)
    if row is None:
        raise _not_found(flow_id)
    return row


MAX_PAGE = 100


def _flow_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def list_flows(user_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the user's flows, newest first, without their nodes and edges:
    `{"flows": [...], "next": <flow id> | null}` (a flow just created may take a moment)."""
    page = paging.request(query, MAX_PAGE, _flow_id)
    found = store.of_user(user_id, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, store.summary_row, lambda item: int(item.id))
    return {"flows": rows, "next": following}


def delete_flow(user_id: str, flow_id: int) -> None:
    """Deployments of the flow keep working: their snapshots are self-contained."""
    if not store.delete(flow_id, user_id):
        raise _not_found(flow_id)
