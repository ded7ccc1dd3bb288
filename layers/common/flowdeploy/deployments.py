"""Deployments: deploy a flow as an immutable snapshot, find one to start, read them back.

The permission rule and the 404 rule of the docs page live here, once.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from flowdeploy import base58, paging
from flowdeploy import settings as config
from flowdeploy.auth import Caller
from flowdeploy.errors import BadRequest, NotFound, PayloadTooLarge
from flowdeploy.flows import SolanaNetwork, interflow_targets, wallet_ids
from flowdeploy.ids import new_id, parse_uuid, timestamp
from flowdeploy.store import deployments as store
from flowdeploy.store import flows as flow_store
from flowdeploy.store.models import DeploymentItem, TagItem

StartPermission = Literal["Owner", "Authenticated", "Anonymous"]
LATEST = store.LATEST
TAG_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


# -- Rules -------------------------------------------------------------------


def infer_start_permission(
    *, is_public: bool, start_shared: bool, start_unverified: bool
) -> StartPermission:
    """The default start_permission of a new deployment, from its entry flow's flags."""
    if not (is_public and start_shared):
        return "Owner"
    return "Anonymous" if start_unverified else "Authenticated"


def admits(start_permission: str, owner_id: str, caller: Caller) -> bool:
    """Whether `caller` may start a deployment with this start_permission."""
    if caller.kind == "account":
        # Events from inside the AWS account (EventBridge, SQS, S3) start as the owner.
        return True
    if start_permission == "Anonymous":
        return True
    if start_permission == "Authenticated":
        return caller.authenticated
    return caller.authenticated and caller.user_id == owner_id


FlowLoader = Callable[[list[int]], Mapping[int, dict[str, Any]]]


def collect_flow_set(
    entry: dict[str, Any], owner_id: str, load: FlowLoader
) -> list[dict[str, Any]]:
    """The entry flow and every flow it reaches through interflow nodes, each once.

    Loads one level of nesting per call of `load`; every flow must belong to the owner.
    """
    flows = [entry]
    seen = {entry["id"]}
    frontier = [entry]
    while frontier:
        wanted: dict[int, tuple[int, str]] = {}
        for flow in frontier:
            for node_id, target in interflow_targets(flow["nodes"]):
                if target is None:
                    raise BadRequest(
                        f"flow {flow['id']}: interflow node {node_id!r} needs config "
                        "flow_id, the id of the flow it calls"
                    )
                if target not in seen:
                    wanted.setdefault(target, (flow["id"], node_id))
        loaded = load(list(wanted)) if wanted else {}
        frontier = []
        for target, (parent, node_id) in wanted.items():
            row = loaded.get(target)
            if row is None or row["user_id"] != owner_id:
                raise BadRequest(
                    f"flow {parent}: interflow node {node_id!r} calls flow {target}, "
                    "which does not exist or is not yours"
                )
            seen.add(target)
            flows.append(row)
            frontier.append(row)
    return flows


# -- Deploy ------------------------------------------------------------------


def _load_flows(flow_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {fid: flow_store.flow_row(item) for fid, item in flow_store.get_many(flow_ids).items()}


def deploy(user_id: str, flow_id: int, new_deployment_id: Callable[[], str] = new_id) -> str:
    """Freeze the owner's flow and the flows it calls; `latest` moves to the new deployment."""
    # Only deploying needs the engine (StartFunction imports this module too).
    from flowdeploy.engine import build_flow_set
    from flowdeploy.engine.bounds import check_bounds

    entry = flow_store.get(flow_id)
    if entry is None or entry.user_id != user_id:
        raise NotFound(f"flow not found: {flow_id}")
    flows = collect_flow_set(flow_store.flow_row(entry), user_id, _load_flows)
    graphs = build_flow_set({flow["id"]: flow for flow in flows}, flow_id)
    limits = config.settings()
    check_bounds(
        graphs,
        flow_id,
        max_depth=limits.flow_max_nesting,
        max_node_runs=limits.flow_max_node_runs,
    )
    used_wallets = set().union(*(wallet_ids(flow["nodes"]) for flow in flows))
    _require_wallets(user_id, used_wallets)
    deployment_id = new_deployment_id()
    snapshots = store.snapshot_items(deployment_id, flows)
    size = store.snapshot_bytes(snapshots)
    if size > store.MAX_SNAPSHOT_BYTES:
        raise PayloadTooLarge(
            f"deployment too large: its {len(flows)} flows pack to {size} bytes, "
            f"the limit is {store.MAX_SNAPSHOT_BYTES}"
        )
    parts: dict[str, int] = {}
    for item in snapshots:
        parts[str(item.flow_id)] = parts.get(str(item.flow_id), 0) + 1
    deployment = DeploymentItem(
        *DeploymentItem.key(deployment_id),
        id=deployment_id,
        created_at=timestamp(),
        user_id=user_id,
        entrypoint=flow_id,
        start_permission=infer_start_permission(
            is_public=entry.is_public,
            start_shared=entry.start_shared,
            start_unverified=entry.start_unverified,
        ),
        output_instructions=False,
        action_identity=None,
        fees=[],
        solana_network=entry.current_network,
        flow_ids=[flow["id"] for flow in flows],
        snapshot_parts=parts,
        wallet_ids=sorted(used_wallets),
    )
    store.insert(deployment, snapshots)
    return deployment_id


def _require_wallets(user_id: str, used: set[str]) -> None:
    """The deploying owner must hold every server wallet the flows' `wallet` nodes name."""
    if not used:
        return
    from flowdeploy.wallets import list_wallets

    missing = sorted(used - {wallet.id for wallet in list_wallets(user_id)})
    if missing:
        raise BadRequest(
            f"the flow uses wallet(s) you do not have: {', '.join(missing)} (see GET /wallet)"
        )


def _require_identity_wallet(user_id: str, identity: str) -> None:
    from flowdeploy.wallets import wallet_for_pubkey

    wallet = wallet_for_pubkey(user_id, identity)
    if wallet is None or not wallet.holds_secret:
        held = "no wallet" if wallet is None else "only an adapter wallet (no secret key)"
        raise BadRequest(
            f"action_identity {identity}: you hold {held} with this public key; the "
            "identity memo is signed with it (add its keypair with POST /wallet)"
        )


# -- Finding a deployment to start -------------------------------------------


@dataclass(frozen=True, slots=True)
class DeploymentRef:
    """`?id=<deployment id>` or `?flow=<flow id>[&tag=<tag>]` (tag defaults to `latest`)."""

    id: str | None = None
    flow: int | None = None
    tag: str = LATEST

    QUERY = ("id", "flow", "tag")

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> DeploymentRef:
        # Upstream lets `flow` win when both are given; a caller who sent both meant one.
        if "id" in query and "flow" in query:
            raise BadRequest("name the deployment one way: ?id= or ?flow=[&tag=], not both")
        if "tag" in query and "flow" not in query:
            raise BadRequest("tag goes with flow, not with id")
        if "flow" in query:
            tag = parse_tag(query.get("tag") or LATEST)
            return cls(flow=parse_flow_id(query["flow"], "flow"), tag=tag)
        if "id" in query:
            deployment_id = parse_uuid(query["id"])
            if deployment_id is None:
                raise BadRequest(f"id must be a deployment id (a UUID), got {query['id']!r}")
            return cls(id=deployment_id)
        raise BadRequest("say which deployment: ?id=<deployment id> or ?flow=<flow id>[&tag=<tag>]")

    def __str__(self) -> str:
        return self.id if self.id is not None else f"{self.flow}:{self.tag}"


def parse_flow_id(text: str, name: str = "flow_id") -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise BadRequest(f"{name} must be a flow id (a positive integer), got {text!r}")
    return int(text)


def parse_tag(text: str) -> str:
    if not TAG_NAME.fullmatch(text):
        raise BadRequest(f"tag must be 1-64 letters, digits, '.', '_' or '-', got {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Startable:
    """What a start needs of a deployment: read from it, or from a tag naming it."""

    id: str
    user_id: str
    entrypoint: int
    start_permission: str
    output_instructions: bool

    @classmethod
    def of(cls, deployment: DeploymentItem) -> Startable:
        return cls(
            deployment.id,
            deployment.user_id,
            int(deployment.entrypoint),
            deployment.start_permission,
            bool(deployment.output_instructions),
        )

    @classmethod
    def of_tag(cls, tag: TagItem) -> Startable | None:
        """From the tag's copies; None for a tag written before tags kept them."""
        if tag.start_permission is None or tag.output_instructions is None:
            return None
        return cls(
            tag.deployment_id,
            tag.user_id,
            int(tag.entrypoint),
            tag.start_permission,
            tag.output_instructions,
        )


def _lookup(ref: DeploymentRef) -> Startable | None:
    if ref.id is not None:
        deployment = store.get(ref.id)
        return Startable.of(deployment) if deployment is not None else None
    assert ref.flow is not None
    tag = store.get_tag(ref.flow, ref.tag)
    if tag is None:
        return None
    # A tag carries its deployment's start fields (kept in step transactionally by
    # deploy, PATCH, tag moves and deletes): starting by tag is one read, as by id.
    startable = Startable.of_tag(tag)
    if startable is None:
        deployment = store.get(tag.deployment_id)
        startable = Startable.of(deployment) if deployment is not None else None
    return startable


def find_startable(ref: DeploymentRef, caller: Caller) -> Startable:
    """The deployment `ref` names, if `caller` may start it; 404 alike for missing and refused."""
    found = _lookup(ref)
    if found is None or not admits(found.start_permission, found.user_id, caller):
        raise NotFound(f"deployment not found: {ref}")
    return found


def find_deployment(ref: DeploymentRef, caller: Caller) -> DeploymentItem:
    """The whole deployment `ref` names, if `caller` may start it (and so read it); 404
    alike for missing and refused, as for a start."""
    if ref.id is not None:
        deployment = store.get(ref.id)
    else:
        assert ref.flow is not None
        tag = store.get_tag(ref.flow, ref.tag)
        deployment = store.get(tag.deployment_id) if tag is not None else None
    if deployment is None or not admits(deployment.start_permission, deployment.user_id, caller):
        raise NotFound(f"deployment not found: {ref}")
    return deployment


# -- Reading (owner only) ----------------------------------------------------


def deployment_row(item: DeploymentItem) -> dict[str, Any]:
    """Exactly the docs' "Inserted row in flow_deployments table"."""
    return {
        "id": item.id,
        "created_at": item.created_at,
        "user_id": item.user_id,
        "entrypoint": int(item.entrypoint),
        "start_permission": item.start_permission,
        "output_instructions": item.output_instructions,
        "action_identity": item.action_identity,
        "fees": item.fees,
        "solana_network": item.solana_network,
        # Columns beyond the docs' row (issue 14): null until the owner sets them.
        "compute_unit_price": (
            int(item.compute_unit_price) if item.compute_unit_price is not None else None
        ),
        "action_title": item.action_title,
        "action_icon": item.action_icon,
        "action_description": item.action_description,
        "action_label": item.action_label,
    }


def tag_row(item: TagItem) -> dict[str, Any]:
    """Exactly the docs' "Inserted row in flow_deployments_tags table"."""
    return {
        "user_id": item.user_id,
        "entrypoint": int(item.entrypoint),
        "tag": item.tag,
        "deployment_id": item.deployment_id,
        "description": item.description,
    }


def owned_deployment(user_id: str, deployment_id: str) -> DeploymentItem:
    parsed = parse_uuid(deployment_id)
    deployment = store.get(parsed) if parsed else None
    if deployment is None or deployment.user_id != user_id:
        raise NotFound(f"deployment not found: {deployment_id}")
    return deployment


def get_deployment(user_id: str, deployment_id: str) -> dict[str, Any]:
    return deployment_row(owned_deployment(user_id, deployment_id))


def _require_flow_owner(user_id: str, flow_id: int) -> None:
    flow = flow_store.get(flow_id)
    if flow is None or flow.user_id != user_id:
        raise NotFound(f"flow not found: {flow_id}")


MAX_PAGE = 100


def list_deployments(user_id: str, flow_id: int, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the owner's deployments of a flow, newest first (also once the flow is
    deleted): `{"deployments": [...], "next": <id> | null}`."""
    page = paging.request(query, MAX_PAGE, parse_uuid)
    found = store.of_flow(flow_id, page.after, page.limit + 1)
    rows, following = paging.fill(
        (d for d in found if d.user_id == user_id), page, deployment_row, lambda d: d.id
    )
    if not rows:
        _require_flow_owner(user_id, flow_id)
    return {"deployments": rows, "next": following}


def list_tags(user_id: str, flow_id: int, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the flow's tags by name: `{"tags": [...], "next": <tag> | null}`."""
    page = paging.request(query, MAX_PAGE, lambda text: text if TAG_NAME.fullmatch(text) else None)
    found = store.tags_of_flow(flow_id, page.after, page.limit + 1)
    rows, following = paging.fill(
        (t for t in found if t.user_id == user_id), page, tag_row, lambda t: t.tag
    )
    if not rows:
        _require_flow_owner(user_id, flow_id)
    return {"tags": rows, "next": following}


# -- Changing deployments and tags (owner only; anyone else sees 404) ---------

READ_ONLY_COLUMNS = ("id", "created_at", "user_id", "entrypoint")
NOT_NULL_COLUMNS = ("start_permission", "output_instructions", "fees", "solana_network")
MAX_FEES = 16
MAX_LAMPORTS = 2**64 - 1
# 100 lamports per compute unit: 0.14 SOL for a whole 1.4M-unit transaction.
MAX_COMPUTE_UNIT_PRICE = 100_000_000
MAX_ICON_URL = 2048


def _pubkey(value: str) -> str:
    if not base58.is_pubkey(value):
        raise PydanticCustomError("base58_pubkey", "must be a base58 public key (32 bytes)")
    return value


def _http_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or " " in value:
        raise PydanticCustomError(
            "http_url", "must be an absolute http(s) URL of an image (SVG, PNG or WebP)"
        )
    return value


Pubkey = Annotated[str, AfterValidator(_pubkey)]
Lamports = Annotated[StrictInt, Field(gt=0, le=MAX_LAMPORTS)]
ActionText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class DeploymentChanges(BaseModel):
    """`PATCH /deployment/{id}`: any of the docs' customizable columns, validated."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    start_permission: StartPermission | None = None
    output_instructions: StrictBool | None = None
    action_identity: Pubkey | None = None
    fees: list[tuple[Pubkey, Lamports]] | None = Field(default=None, max_length=MAX_FEES)
    solana_network: SolanaNetwork | None = None
    compute_unit_price: Annotated[StrictInt, Field(ge=0, le=MAX_COMPUTE_UNIT_PRICE)] | None = None
    action_title: Annotated[ActionText, StringConstraints(max_length=200)] | None = None
    action_icon: (
        Annotated[str, StringConstraints(max_length=MAX_ICON_URL), AfterValidator(_http_url)] | None
    ) = None
    action_description: Annotated[ActionText, StringConstraints(max_length=2000)] | None = None
    action_label: Annotated[ActionText, StringConstraints(max_length=64)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _writable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            read_only = [name for name in READ_ONLY_COLUMNS if name in data]
            if read_only:
                raise PydanticCustomError(
                    "read_only",
                    "read-only column(s) cannot be changed: {columns}",
                    {"columns": ", ".join(read_only)},
                )
            nulls = [name for name in NOT_NULL_COLUMNS if name in data and data[name] is None]
            if nulls:
                raise PydanticCustomError(
                    "not_null", "column(s) cannot be null: {columns}", {"columns": ", ".join(nulls)}
                )
        return data

    @field_validator("fees")
    @classmethod
    def _distinct_addresses(
        cls, fees: list[tuple[str, int]] | None
    ) -> list[tuple[str, int]] | None:
        seen: set[str] = set()
        for address, _ in fees or []:
            if address in seen:
                raise PydanticCustomError(
                    "duplicate_fee", "fee address {address} appears twice", {"address": address}
                )
            seen.add(address)
        return fees

    def columns(self) -> dict[str, Any]:
        """The columns the caller sent, as stored (an explicit null clears action_identity)."""
        return self.model_dump(mode="json", include=self.model_fields_set)


def update_deployment(
    user_id: str, deployment_id: str, changes: DeploymentChanges
) -> dict[str, Any]:
    """Change the owner's deployment; starts made afterwards use the new values."""
    deployment = owned_deployment(user_id, deployment_id)
    columns = changes.columns()
    if not columns:
        return deployment_row(deployment)
    if columns.get("action_identity"):
        _require_identity_wallet(user_id, columns["action_identity"])
    updated = store.update(deployment, user_id, columns)
    if updated is None:
        raise NotFound(f"deployment not found: {deployment_id}")
    return deployment_row(updated)


def delete_deployment(user_id: str, deployment_id: str) -> None:
    """Remove the owner's deployment, its snapshot and tags; its runs keep their records."""
    deployment = owned_deployment(user_id, deployment_id)
    if not store.delete(deployment):
        raise NotFound(f"deployment not found: {deployment_id}")


class TagBody(BaseModel):
    """`PUT /flow/{flow_id}/tags/{tag}`: the deployment the tag names, and a note."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    deployment_id: str
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None


def _custom_tag(text: str) -> str:
    tag = parse_tag(text)
    if tag == LATEST:
        raise BadRequest(
            "the latest tag is managed by the system: it always names the flow's newest deployment"
        )
    return tag


def set_tag(user_id: str, flow_id: int, tag: str, body: TagBody) -> dict[str, Any]:
    """Create the tag or move it to another of the owner's deployments of this flow."""
    tag = _custom_tag(tag)
    deployment = owned_deployment(user_id, body.deployment_id)
    if int(deployment.entrypoint) != flow_id:
        raise BadRequest(
            f"deployment {deployment.id} is a deployment of flow {int(deployment.entrypoint)}, "
            f"not of flow {flow_id}"
        )
    item = TagItem(
        *TagItem.key(flow_id, tag),
        user_id=user_id,
        entrypoint=flow_id,
        tag=tag,
        deployment_id=deployment.id,
        description=body.description,
    )
    limit = config.settings().max_tags_per_flow
    try:
        if not store.put_tag(item, deployment, limit):
            raise NotFound(f"deployment not found: {body.deployment_id}")
    except store.TooManyTags:
        raise BadRequest(
            f"a flow can have at most {limit} tags besides latest (MAX_TAGS_PER_FLOW)"
        ) from None
    return tag_row(item)


def delete_tag(user_id: str, flow_id: int, tag: str) -> None:
    tag = _custom_tag(tag)
    if not store.delete_tag(flow_id, tag, user_id):
        raise NotFound(f"tag not found: {flow_id}:{tag}")
