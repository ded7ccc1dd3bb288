"""Deployments table access: deployments, their frozen flows and their tags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from flowdeploy.store.models import (
    DeploymentItem,
    DeploymentsRecord,
    SnapshotItem,
    TagItem,
    pack,
    unpack,
)

LATEST = "latest"
# Split packed snapshots well below DynamoDB's 400 KB item limit.
SNAPSHOT_PART_BYTES = 300_000
# TransactWriteItems takes at most 100 items: the deployment, `latest`, the snapshot parts.
MAX_SNAPSHOT_PARTS = 98

_connection: Connection | None = None


def _transactions() -> Connection:
    global _connection  # noqa: PLW0603 - one client per process, as boto3 recommends
    if _connection is None:
        _connection = Connection()
    return _connection


def snapshot_items(deployment_id: str, flows: list[dict[str, Any]]) -> list[SnapshotItem]:
    """The frozen flow rows as items: each packed, then split into parts if large."""
    items = []
    for flow in flows:
        blob = pack(flow)
        chunks = [
            blob[i : i + SNAPSHOT_PART_BYTES] for i in range(0, len(blob), SNAPSHOT_PART_BYTES)
        ]
        for part, chunk in enumerate(chunks):
            pk, sk = SnapshotItem.key(deployment_id, flow["id"], part)
            items.append(
                SnapshotItem(
                    pk, sk, deployment_id=deployment_id, flow_id=flow["id"], part=part, data=chunk
                )
            )
    return items


def insert(deployment: DeploymentItem, snapshots: list[SnapshotItem]) -> None:
    """Write the deployment, its snapshot and move `latest` to it, in one transaction.

    `latest` only ever moves forward (to a greater UUIDv7), so of two concurrent
    deploys the newer one wins whatever order they commit in; the older one then
    commits without touching the tag.
    """
    pk, sk = TagItem.key(int(deployment.entrypoint), LATEST)
    latest = TagItem(
        pk,
        sk,
        user_id=deployment.user_id,
        entrypoint=deployment.entrypoint,
        tag=LATEST,
        deployment_id=deployment.id,
        description=None,
    )
    try:
        _write(deployment, snapshots, latest)
    except TransactWriteError as error:
        reasons = error.cancellation_reasons
        if not reasons or reasons[-1] is None or reasons[-1].code != "ConditionalCheckFailed":
            raise
        _write(deployment, snapshots, None)


def _write(
    deployment: DeploymentItem, snapshots: list[SnapshotItem], latest: TagItem | None
) -> None:
    with TransactWrite(connection=_transactions()) as transaction:
        transaction.save(deployment, condition=DeploymentItem.pk.does_not_exist())
        for item in snapshots:
            transaction.save(item)
        if latest is not None:
            transaction.save(
                latest,
                condition=TagItem.pk.does_not_exist()
                | (TagItem.deployment_id < latest.deployment_id),
            )


def get(deployment_id: str) -> DeploymentItem | None:
    try:
        item = DeploymentsRecord.get(*DeploymentItem.key(deployment_id), consistent_read=True)
    except DoesNotExist:
        return None
    return item if isinstance(item, DeploymentItem) else None


def get_tag(entrypoint: int, tag: str) -> TagItem | None:
    try:
        item = DeploymentsRecord.get(*TagItem.key(entrypoint, tag), consistent_read=True)
    except DoesNotExist:
        return None
    return item if isinstance(item, TagItem) else None


def of_flow(entrypoint: int) -> Iterator[DeploymentItem]:
    """Deployments of a flow, newest first."""
    return DeploymentItem.by_entrypoint.query(entrypoint, scan_index_forward=False)


def tags_of_flow(entrypoint: int) -> Iterator[TagItem]:
    """Tags of a flow, by name."""
    return TagItem.by_entrypoint.query(entrypoint)


def load_snapshot(deployment: DeploymentItem) -> dict[int, dict[str, Any]]:
    """Every frozen flow of the deployment by id, reassembled from its parts."""
    parts: dict[int, list[bytes]] = {}
    for item in SnapshotItem.query(
        DeploymentItem.key(deployment.id)[0],
        SnapshotItem.sk.startswith("FLOW#"),
        consistent_read=True,
    ):
        parts.setdefault(int(item.flow_id), []).append(item.data)
    # Query returns parts in sort-key order, so joining them restores each blob.
    return {flow_id: unpack(b"".join(chunks)) for flow_id, chunks in parts.items()}
