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
    model_validator,
)
from pydantic_core import PydanticCustomError

from flowdeploy import paging
from flowdeploy.errors import BadRequest, NotFound
from flowdeploy.settings import settings
from flowdeploy.store import flows as store
from flowdeploy.upstream_names import unscoped

CLUSTERS = ("mainnet-beta", "testnet", "devnet", "localnet")
INTERFLOW_COMMANDS = frozenset({"interflow", "interflow_instructions"})
WALLET_COMMANDS = frozenset({"wallet"})
# Space Operator's flow-row columns this service does not use: a flow sent with them keeps
# them and returns them unchanged (flows_v2, older `flows` exports, editor test files).
UPSTREAM_COLUMNS = frozenset(
    {
        "uuid",
        "description",
        "gg_marketplace",
        "viewport",
        "guide",
        "instructions_bundling",
        "parent_flow",
        "meta_nodes",
        "default_viewport",
        "current_branch_id",
        "backend_endpoint",
        "slug",
        "visibility_overrides",
        "visibility_profile_id",
        "canvas_state",
        "variables",
        "rpc_id",
        "lastest_flow_run_id",
        "tags",
        "custom_networks",
        "mosaic",
        "isPublic",
        "state",
        "startFlowTime",
        "network",
        "current_rpc",
        "custom_rpc",
    }
)
# Columns the service sets itself: sent ones are ignored (so a flow read back can be sent
# back as it is).
SERVICE_COLUMNS = frozenset({"id", "user_id", "created_at", "updated_at"})

NodeId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PortName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


# Request bodies build their validators when first used (defer_build): a function pays at
# init only for the bodies every one of its requests reads.
class SolanaNetwork(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]
    cluster: Literal["mainnet-beta", "testnet", "devnet", "localnet"]


class FlowNetwork(SolanaNetwork):
    """A flow's `current_network`; Space Operator's extra keys (id, type, wallet) are kept."""

    model_config = ConfigDict(extra="allow", defer_build=True)


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


def _default_network() -> FlowNetwork:
    return FlowNetwork.model_validate(settings().default_network)


class FlowBody(BaseModel):
    """What a caller sends to create or replace a flow: this service's document, or a
    Space Operator flow row as it comes out of Space Operator (its other columns kept)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    nodes: list[Node] = Field(default_factory=list, max_length=5000)
    edges: list[Edge] = Field(default_factory=list, max_length=20000)
    is_public: StrictBool = False
    start_shared: StrictBool = False
    start_unverified: StrictBool = False
    # Deployments made from now on may be run synchronously by /deployment/read.
    read_enabled: StrictBool = False
    current_network: FlowNetwork = Field(default_factory=_default_network)
    environment: dict[str, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict
    )

    @field_validator("environment", mode="before")
    @classmethod
    def _no_environment(cls, value: Any) -> Any:
        return {} if value is None else value  # upstream reads a null environment as empty

    @field_validator("nodes")
    @classmethod
    def _unique_node_ids(cls, nodes: list[Node]) -> list[Node]:
        seen: set[str] = set()
        for node in nodes:
            if node.id in seen:
                raise ValueError(f"duplicate node id {node.id!r}")
            seen.add(node.id)
        return nodes

    @model_validator(mode="before")
    @classmethod
    def _known_columns(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(
                name
                for name in data
                if name not in cls.model_fields
                and name not in UPSTREAM_COLUMNS
                and name not in SERVICE_COLUMNS
            )
            if unknown:
                raise PydanticCustomError(
                    "unknown_field", "unknown field: {names}", {"names": ", ".join(unknown)}
                )
        return data

    def document(self) -> dict[str, Any]:
        """The JSON of the flow's editable fields, as stored: nodes and edges exactly as
        sent (nothing added), Space Operator's other columns under `extra`."""
        extra = {
            name: value
            for name, value in (self.model_extra or {}).items()
            if name not in SERVICE_COLUMNS
        }
        document = self.model_dump(mode="json", exclude={"nodes", "edges"})
        for name in self.model_extra or {}:
            document.pop(name, None)
        document["nodes"] = [
            node.model_dump(mode="json", exclude_unset=True) for node in self.nodes
        ]
        document["edges"] = [
            edge.model_dump(mode="json", exclude_unset=True) for edge in self.edges
        ]
        document["extra"] = extra
        return document


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


def command_of(node: dict[str, Any]) -> str:
    """A node's command name; Space Operator's scoped names (`@spo/std.wallet.0.1`) are
    read as the name they scope."""
    data = node.get("data") if isinstance(node, dict) else None
    name = data.get("node_id") if isinstance(data, dict) else None
    return unscoped(name) if isinstance(name, str) else ""


def interflow_targets(nodes: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    """(node id, called flow id or None if unreadable) for every node that runs a flow."""
    return [
        (str(node.get("id")), _config_integer(node, "flow_id"))
        for node in nodes
        if command_of(node) in INTERFLOW_COMMANDS
    ]


def wallet_ids(nodes: list[dict[str, Any]]) -> set[str]:
    """Server wallets the flow's `wallet` nodes use (config `wallet_id`: an id from
    `GET /wallet`, plain or as an S value)."""
    found = set()
    for node in nodes:
        if command_of(node) in WALLET_COMMANDS:
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


def catalogue(document_format: str | None = None) -> list[dict[str, Any]]:
    """`GET /nodes`: every command, from the registry the validator and engine use."""
    from flowdeploy.engine.command import FORMATS, catalogue

    if document_format is not None and document_format not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}, got {document_format!r}")
    entries = catalogue()
    if document_format is not None:
        entries = [entry for entry in entries if entry["format"] == document_format]
    return sorted(entries, key=lambda entry: (entry["name"], entry["format"]))


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
    found = store.newest_of_user(user_id, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, store.summary_row, lambda item: int(item.id))
    return {"flows": rows, "next": following}


def delete_flow(user_id: str, flow_id: int) -> None:
    """Deployments of the flow keep working: their snapshots are self-contained."""
    if not store.delete(flow_id, user_id):
        raise _not_found(flow_id)
