"""Flows table access: the atomic id counter and flow rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist

from flowdeploy.errors import PayloadTooLarge
from flowdeploy.ids import timestamp
from flowdeploy.store import applied
from flowdeploy.store.models import COUNTER_ID, FlowItem, pack, unpack

# DynamoDB items stop at 400 KB; keep a margin for attribute names and timestamps.
MAX_FLOW_BYTES = 380_000


def flow_row(item: FlowItem) -> dict[str, Any]:
    """The flow as the API shows it and as a deployment freezes it."""
    graph = unpack(item.graph) if item.graph else {"nodes": [], "edges": []}
    return {
        # Space Operator's columns the service keeps but does not use.
        **graph.get("extra", {}),
        "id": int(item.id),
        "user_id": item.user_id,
        "name": item.name,
        "nodes": graph["nodes"],
        "edges": graph["edges"],
        "is_public": item.is_public,
        "start_shared": item.start_shared,
        "start_unverified": item.start_unverified,
        "read_enabled": bool(item.read_enabled),
        "current_network": item.current_network,
        "environment": item.environment or {},
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _apply(item: FlowItem, document: dict[str, Any]) -> None:
    item.name = document["name"]
    item.is_public = document["is_public"]
    item.start_shared = document["start_shared"]
    item.start_unverified = document["start_unverified"]
    item.read_enabled = document["read_enabled"]
    item.current_network = document["current_network"]
    item.environment = document["environment"]
    graph = {"nodes": document["nodes"], "edges": document["edges"]}
    if document.get("extra"):
        graph["extra"] = document["extra"]
    item.graph = pack(graph)
    size = len(item.graph) + len(json.dumps(document["environment"])) + len(item.name) * 4
    if size > MAX_FLOW_BYTES:
        raise PayloadTooLarge(
            f"flow is too large to store: {size} bytes (nodes and edges compressed), "
            f"the limit is {MAX_FLOW_BYTES}"
        )


def next_flow_id() -> int:
    """Atomically take the next flow id (1, 2, 3, …)."""
    counter = FlowItem(id=COUNTER_ID)
    counter.update(actions=[FlowItem.next_id.add(1)])
    return int(counter.next_id or 0)


def create(
    user_id: str, document: dict[str, Any], *, flow_id: int | None = None, source: str | None = None
) -> dict[str, Any]:
    """Store a new flow owned by `user_id`; its id comes from the counter unless one taken
    from it before is given. `source` marks an imported flow."""
    moment = timestamp()
    item = FlowItem(user_id=user_id, created_at=moment, updated_at=moment, source=source)
    _apply(item, document)  # refuses an oversized flow before an id is spent on it
    item.id = flow_id if flow_id is not None else next_flow_id()
    item.save(condition=FlowItem.id.does_not_exist())
    return flow_row(item)


def of_user(user_id: str) -> list[FlowItem]:
    """The user's flows (id, name and source only), oldest first."""
    return list(FlowItem.by_user.query(user_id))


def get(flow_id: int) -> FlowItem | None:
    if flow_id <= COUNTER_ID:
        return None
    try:
        return FlowItem.get(flow_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_many(flow_ids: list[int]) -> dict[int, FlowItem]:
    """One BatchGetItem (pynamodb pages it past 100 keys), strongly consistent."""
    wanted = [i for i in flow_ids if i > COUNTER_ID]
    return {int(item.id): item for item in FlowItem.batch_get(wanted, consistent_read=True)}


def summary_row(item: FlowItem) -> dict[str, Any]:
    """A flow as `GET /flow` lists it: everything but its nodes, edges and environment."""
    return {
        "id": int(item.id),
        "user_id": item.user_id,
        "name": item.name,
        "is_public": item.is_public,
        "start_shared": item.start_shared,
        "start_unverified": item.start_unverified,
        "current_network": item.current_network,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def newest_of_user(
    user_id: str, after: int | None = None, limit: int | None = None
) -> Iterator[FlowItem]:
    """The user's flows, newest first; those older than flow `after`. Summaries only."""
    older = FlowItem.id < after if after is not None else None
    return FlowItem.by_user.query(user_id, older, scan_index_forward=False, limit=limit)


def replace(flow_id: int, user_id: str, document: dict[str, Any]) -> dict[str, Any] | None:
    """Overwrite the owner's flow; None if it does not exist or is not theirs."""
    item = get(flow_id)
    if item is None or item.user_id != user_id:
        return None
    _apply(item, document)
    item.updated_at = timestamp()
    if not applied(lambda: item.save(condition=FlowItem.user_id == user_id)):
        return None
    return flow_row(item)


def delete(flow_id: int, user_id: str) -> bool:
    """Delete the owner's flow; False if it does not exist or is not theirs."""
    if flow_id <= COUNTER_ID:
        return False
    return applied(lambda: FlowItem(id=flow_id).delete(condition=FlowItem.user_id == user_id))
