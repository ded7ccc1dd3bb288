"""Deployments table access: deployments, their frozen flows and their tags."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition, size
from pynamodb.transactions import TransactWrite

from flowdeploy.store import applied
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
# TransactWriteItems takes at most 100 items and 4 MB: the deployment, `latest` and the
# snapshot parts go in one transaction when they fit these, with room to spare.
TRANSACTION_PARTS = 90
TRANSACTION_BYTES = 3_500_000
# Beyond this a deployment is refused (413) rather than written in part.
MAX_SNAPSHOT_BYTES = 32_000_000
CONFLICT_RETRIES = 5

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


def snapshot_bytes(snapshots: list[SnapshotItem]) -> int:
    return sum(len(item.data) for item in snapshots)


def insert(deployment: DeploymentItem, snapshots: list[SnapshotItem]) -> None:
    """Write the deployment and its snapshot and move `latest` to it, atomically.

    `latest` only ever moves forward (to a greater UUIDv7), so of two concurrent
    deploys the newer one wins whatever order they commit in; the older one then
    commits without touching the tag. A snapshot too large for one transaction is
    written first: its parts are unreachable until the deployment item exists.
    """
    pk, sk = TagItem.key(int(deployment.entrypoint), LATEST)
    latest: TagItem | None = TagItem(
        pk,
        sk,
        user_id=deployment.user_id,
        entrypoint=deployment.entrypoint,
        tag=LATEST,
        deployment_id=deployment.id,
        description=None,
    )
    in_transaction = snapshots
    if len(snapshots) > TRANSACTION_PARTS or snapshot_bytes(snapshots) > TRANSACTION_BYTES:
        with SnapshotItem.batch_write() as batch:
            for item in snapshots:
                batch.save(item)
        in_transaction = []
    conflicts = 0
    while True:
        try:
            _write(deployment, in_transaction, latest)
            return
        except TransactWriteError as error:
            codes = [reason.code if reason else None for reason in error.cancellation_reasons]
            if latest is not None and codes and codes[-1] == "ConditionalCheckFailed":
                latest = None  # a newer deployment holds `latest`: leave it there
            elif "TransactionConflict" in codes and conflicts < CONFLICT_RETRIES:
                # Another deploy is writing `latest` right now; DynamoDB does not retry this.
                time.sleep(random.uniform(0.02, 0.1) * 2**conflicts)  # noqa: S311 - jitter
                conflicts += 1
            else:
                raise


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


# -- Changing and deleting (owner only) ----------------------------------------


def _cancellation_codes(error: TransactWriteError) -> list[str | None]:
    return [reason.code if reason else None for reason in error.cancellation_reasons]


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0.02, 0.1) * 2**attempt)  # noqa: S311 - jitter


def update(deployment_id: str, owner_id: str, changes: dict[str, Any]) -> DeploymentItem | None:
    """Set the customizable columns in `changes` (None clears); None if not the owner's.

    One conditional UpdateItem that returns the whole new row.
    """
    item = DeploymentItem(*DeploymentItem.key(deployment_id))
    actions = [
        getattr(DeploymentItem, name).remove()
        if value is None
        else getattr(DeploymentItem, name).set(value)
        for name, value in changes.items()
    ]
    if not applied(lambda: item.update(actions, condition=DeploymentItem.user_id == owner_id)):
        return None
    return item


def delete(deployment: DeploymentItem) -> bool:
    """Remove a deployment with its tags, then its snapshot; False if it was already gone.

    If it held `latest`, `latest` moves to the newest remaining deployment of the flow in
    the same transaction (or disappears with it when none remains). Its custom tags are
    the ones its item names (`tag_names`, read consistently) and the delete is conditional
    on that set being unchanged, so a tag moved onto it meanwhile makes the transaction
    retry on fresh reads: no tag is ever left naming a deleted deployment.
    Runs are not touched: their records keep the deployment id.
    """
    entrypoint = int(deployment.entrypoint)
    attempt = 0
    while True:
        current = get(deployment.id)
        if current is None:
            return False
        names = sorted(current.tag_names or ())
        latest = get_tag(entrypoint, LATEST)
        holds_latest = latest is not None and latest.deployment_id == deployment.id
        fallback = _newest_other(entrypoint, deployment.id) if holds_latest else None
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.delete(
                    current,
                    condition=(DeploymentItem.user_id == deployment.user_id)
                    & _tag_names_are(names),
                )
                for name in names:
                    transaction.delete(
                        TagItem(*TagItem.key(entrypoint, name)),
                        condition=TagItem.deployment_id == deployment.id,
                    )
                if latest is not None and holds_latest:
                    on_us = TagItem.deployment_id == deployment.id
                    if fallback is None:
                        transaction.delete(latest, condition=on_us)
                    else:
                        transaction.condition_check(
                            DeploymentItem,
                            *DeploymentItem.key(fallback),
                            condition=DeploymentItem.pk.exists(),
                        )
                        latest.deployment_id = fallback
                        transaction.save(latest, condition=on_us)
            break
        except TransactWriteError as error:
            retryable = {"ConditionalCheckFailed", "TransactionConflict"}
            if not retryable & set(_cancellation_codes(error)) or attempt >= CONFLICT_RETRIES:
                raise
            _backoff(attempt)
            attempt += 1
    # Unreachable once the deployment item is gone, as they were before it was written.
    with SnapshotItem.batch_write() as batch:
        for item in _snapshot_items(deployment.id):
            batch.delete(item)
    return True


def _tag_names_are(names: list[str]) -> Condition:
    """The deployment's `tag_names` is exactly `names` (no empty sets in DynamoDB)."""
    if not names:
        return DeploymentItem.tag_names.does_not_exist()
    condition: Condition = size(DeploymentItem.tag_names) == len(names)  # type: ignore[no-untyped-call]
    for name in names:
        condition &= DeploymentItem.tag_names.contains(name)
    return condition


def _newest_other(entrypoint: int, deployment_id: str) -> str | None:
    others = (d.id for d in of_flow(entrypoint) if d.id != deployment_id)
    return next(others, None)


def _snapshot_items(deployment_id: str) -> Iterator[SnapshotItem]:
    return SnapshotItem.query(
        DeploymentItem.key(deployment_id)[0],
        SnapshotItem.sk.startswith("FLOW#"),
        consistent_read=True,
    )


def put_tag(tag: TagItem) -> bool:
    """Create or move a tag, only onto a deployment of its owner that still exists.

    One transaction writes the tag and the `tag_names` of the deployment it now names (and
    of the one it named before). False if the deployment is gone (or another user holds
    the tag's key).
    """
    attempt = 0
    while True:
        current = get_tag(int(tag.entrypoint), tag.tag)
        if current is not None and current.user_id != tag.user_id:
            return False
        moved_from = current.deployment_id if current is not None else None
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.update(
                    DeploymentItem(*DeploymentItem.key(tag.deployment_id)),
                    actions=[DeploymentItem.tag_names.add({tag.tag})],
                    condition=(DeploymentItem.user_id == tag.user_id)
                    & (DeploymentItem.entrypoint == tag.entrypoint),
                )
                if moved_from is not None and moved_from != tag.deployment_id:
                    _forget_tag(transaction, moved_from, tag.tag)
                transaction.save(
                    tag,
                    condition=TagItem.pk.does_not_exist()
                    if moved_from is None
                    else TagItem.deployment_id == moved_from,
                )
            return True
        except TransactWriteError as error:
            codes = _cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # the deployment is gone (or is not the owner's)
            if not {"ConditionalCheckFailed", "TransactionConflict"} & set(codes):
                raise
            if attempt >= CONFLICT_RETRIES:
                raise
            _backoff(attempt)
            attempt += 1


def _forget_tag(transaction: TransactWrite, deployment_id: str, name: str) -> None:
    transaction.update(
        DeploymentItem(*DeploymentItem.key(deployment_id)),
        actions=[DeploymentItem.tag_names.delete({name})],
        condition=DeploymentItem.pk.exists(),
    )


def delete_tag(entrypoint: int, tag: str, owner_id: str) -> bool:
    """Remove the owner's tag (and its name from its deployment); False if there is none."""
    attempt = 0
    while True:
        current = get_tag(entrypoint, tag)
        if current is None or current.user_id != owner_id:
            return False
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.delete(
                    current,
                    condition=(TagItem.deployment_id == current.deployment_id)
                    & (TagItem.user_id == owner_id),
                )
                _forget_tag(transaction, current.deployment_id, tag)
            return True
        except TransactWriteError as error:
            codes = _cancellation_codes(error)
            if not {"ConditionalCheckFailed", "TransactionConflict"} & set(codes):
                raise
            if attempt >= CONFLICT_RETRIES:
                raise
            _backoff(attempt)
            attempt += 1
