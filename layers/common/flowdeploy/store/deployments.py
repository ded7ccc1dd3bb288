"""Deployments table access: deployments, their frozen flows and their tags."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from flowdeploy.store import applied
from flowdeploy.store import transactions as _transactions
from flowdeploy.store.models import (
    START_FIELDS,
    DeploymentItem,
    DeploymentsRecord,
    FlowDeploymentItem,
    FlowHeadItem,
    SnapshotItem,
    TagItem,
    pack,
    unpack,
)
from flowdeploy.store.retry import RetryBudget

LATEST = "latest"
# Split packed snapshots well below DynamoDB's 400 KB item limit.
SNAPSHOT_PART_BYTES = 300_000
# TransactWriteItems takes at most 100 items and 4 MB: the deployment, `latest`, the flow's
# head and listing and the snapshot parts go in one transaction when they fit these.
TRANSACTION_PARTS = 90
TRANSACTION_BYTES = 3_500_000
# Beyond this a deployment is refused (413) rather than written in part.
MAX_SNAPSHOT_BYTES = 32_000_000


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
    commits without touching the tag. Every deploy also lists the deployment in its flow's
    partition and counts itself on the flow's head (see `delete`). A snapshot too large for
    one transaction is written first: its parts are unreachable until the deployment item
    exists.
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
        **start_fields(deployment),
    )
    deployment.tags = {LATEST}
    deployment.revision = 0
    in_transaction = snapshots
    if len(snapshots) > TRANSACTION_PARTS or snapshot_bytes(snapshots) > TRANSACTION_BYTES:
        with SnapshotItem.batch_write() as batch:
            for item in snapshots:
                batch.save(item)
        in_transaction = []
    budget = RetryBudget()
    while True:
        try:
            _write(deployment, in_transaction, latest)
            return
        except TransactWriteError as error:
            codes = _cancellation_codes(error)
            # Puts, then updates: [deployment, snapshot parts..., listing, latest, head].
            if latest is not None and len(codes) > 1 and codes[-2] == "ConditionalCheckFailed":
                latest = None  # a newer deployment holds `latest`: leave it there
                deployment.tags = None
            elif "TransactionConflict" not in codes or not budget.wait():
                # Another deploy is writing `latest` right now; DynamoDB does not retry this.
                raise


def _write(
    deployment: DeploymentItem, snapshots: list[SnapshotItem], latest: TagItem | None
) -> None:
    entrypoint = int(deployment.entrypoint)
    with TransactWrite(connection=_transactions()) as transaction:
        transaction.save(deployment, condition=DeploymentItem.pk.does_not_exist())
        for item in snapshots:
            transaction.save(item)
        transaction.save(FlowDeploymentItem(*FlowDeploymentItem.key(entrypoint, deployment.id)))
        if latest is not None:
            transaction.save(
                latest,
                condition=TagItem.pk.does_not_exist()
                | (TagItem.deployment_id < latest.deployment_id),
            )
        transaction.update(_head(entrypoint), [FlowHeadItem.deploys.add(1), *_HEAD_KIND])


_HEAD_KIND = (FlowHeadItem.kind.set(FlowHeadItem),)  # an update may create the head


def _head(entrypoint: int) -> FlowHeadItem:
    return FlowHeadItem(*FlowHeadItem.key(entrypoint))


def get_head(entrypoint: int) -> FlowHeadItem | None:
    try:
        item = DeploymentsRecord.get(*FlowHeadItem.key(entrypoint), consistent_read=True)
    except DoesNotExist:
        return None
    return item if isinstance(item, FlowHeadItem) else None


def get(deployment_id: str) -> DeploymentItem | None:
    try:
        item = DeploymentsRecord.get(*DeploymentItem.key(deployment_id), consistent_read=True)
    except DoesNotExist:
        return None
    return item if isinstance(item, DeploymentItem) else None


def start_fields(deployment: DeploymentItem) -> dict[str, Any]:
    """The deployment's START_FIELDS, as a tag naming it keeps them."""
    return {name: getattr(deployment, name) for name in START_FIELDS}


def _at_revision(deployment: DeploymentItem) -> Any:
    """Condition: the deployment item is still at the revision `deployment` was read at."""
    if deployment.revision is None:
        return DeploymentItem.revision.does_not_exist()
    return DeploymentItem.revision == deployment.revision


def _next_revision(deployment: DeploymentItem) -> Any:
    return DeploymentItem.revision.set(int(deployment.revision or 0) + 1)


def get_tags(entrypoint: int, tags: Iterable[str]) -> list[TagItem]:
    """The flow's tags of these names that exist, in one consistent BatchGetItem."""
    keys = [TagItem.key(entrypoint, tag) for tag in sorted(set(tags))]
    if not keys:
        return []
    found = DeploymentsRecord.batch_get(keys, consistent_read=True)
    return [item for item in found if isinstance(item, TagItem)]


def get_tag(entrypoint: int, tag: str) -> TagItem | None:
    try:
        item = DeploymentsRecord.get(*TagItem.key(entrypoint, tag), consistent_read=True)
    except DoesNotExist:
        return None
    return item if isinstance(item, TagItem) else None


def of_flow(
    entrypoint: int, after: str | None = None, limit: int | None = None
) -> Iterator[DeploymentItem]:
    """Deployments of a flow, newest first; only those older than deployment `after`."""
    older = DeploymentItem.id < after if after is not None else None
    return DeploymentItem.by_entrypoint.query(
        entrypoint, older, scan_index_forward=False, limit=limit
    )


def tags_of_flow(
    entrypoint: int, after: str | None = None, limit: int | None = None
) -> Iterator[TagItem]:
    """Tags of a flow, by name; only those after tag `after`."""
    later = TagItem.tag > after if after is not None else None
    return TagItem.by_entrypoint.query(entrypoint, later, limit=limit)


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


def _lost_a_race(codes: list[str | None]) -> bool:
    """Whether a cancelled transaction met a concurrent write: reading again may succeed."""
    return bool({"ConditionalCheckFailed", "TransactionConflict"} & set(codes))


def _column_actions(changes: dict[str, Any]) -> list[Any]:
    return [
        getattr(DeploymentItem, name).remove()
        if value is None
        else getattr(DeploymentItem, name).set(value)
        for name, value in changes.items()
    ]


def _still_pointing(deployment: DeploymentItem, listed: list[str]) -> list[str]:
    found = get_tags(int(deployment.entrypoint), listed)
    return [t.tag for t in found if t.deployment_id == deployment.id]


def update(
    deployment: DeploymentItem, owner_id: str, changes: dict[str, Any]
) -> DeploymentItem | None:
    """Set the customizable columns in `changes` (None clears); None if not the owner's.

    Columns no tag copies: one conditional UpdateItem that returns the whole new row.
    A start field: one transaction that changes the deployment and every tag naming it,
    at the revision read (`deployment` is a consistent read); on a conflict it reads again.
    """
    if not set(changes) & set(START_FIELDS):
        item = DeploymentItem(*DeploymentItem.key(deployment.id))
        condition = DeploymentItem.user_id == owner_id
        if not applied(lambda: item.update(_column_actions(changes), condition=condition)):
            return None
        return item
    current: DeploymentItem | None = deployment
    verify = False  # whether to read the listed tags first (after finding one moved away)
    budget = RetryBudget()
    while True:
        if current is None or current.user_id != owner_id:
            return None
        listed = sorted(current.tags or ())
        pointing = _still_pointing(current, listed) if verify else listed
        moved = set(listed) - set(pointing)
        actions = [*_column_actions(changes), _next_revision(current)]
        if moved:
            actions.append(DeploymentItem.tags.delete(moved))
        copies = {
            **start_fields(current),
            **{k: v for k, v in changes.items() if k in START_FIELDS},
        }
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.update(
                    current,
                    actions,
                    condition=(DeploymentItem.user_id == owner_id) & _at_revision(current),
                )
                for name in pointing:
                    transaction.update(
                        TagItem(*TagItem.key(int(current.entrypoint), name)),
                        [getattr(TagItem, k).set(v) for k, v in copies.items()],
                        condition=TagItem.deployment_id == current.id,
                    )
        except TransactWriteError as error:
            codes = _cancellation_codes(error)
            if not _lost_a_race(codes) or not budget.wait():
                raise
            # All updates, sent in order: [the deployment, its tags...].
            if "ConditionalCheckFailed" in codes[1:]:
                verify = True  # a listed tag names another deployment now
            current = get(deployment.id)
            continue
        for name, value in changes.items():
            setattr(current, name, value)
        current.revision = int(current.revision or 0) + 1
        return current


def delete(deployment: DeploymentItem) -> bool:
    """Remove a deployment with its tags, then its snapshot; False if it was already gone.

    If it held `latest`, `latest` moves to the newest remaining deployment of the flow in
    the same transaction (or disappears with it when none remains). The fallback is found
    with strongly consistent reads (the flow's own listing), after reading the flow's deploy
    count, and the transaction is conditional on that count: a deploy that commits in
    between makes it retry rather than pass over the newer deployment. Every other write is
    conditional on what was read too, so a concurrent tag move or delete also makes it retry
    on fresh reads instead of leaving `latest` on a deleted deployment. Runs are not
    touched: their records keep the deployment id.
    """
    entrypoint = int(deployment.entrypoint)
    owner = deployment.user_id
    current: DeploymentItem | None = deployment
    budget = RetryBudget()
    while True:
        if current is None or current.user_id != owner:
            return False  # deleted meanwhile
        # The deployment's own list is consistent; the index also finds older tags.
        names = set(current.tags or ()) | {t.tag for t in tags_of_flow(entrypoint)}
        tags = [t for t in get_tags(entrypoint, names) if t.deployment_id == current.id]
        latest = next((t for t in tags if t.tag == LATEST), None)
        custom = {t.tag for t in tags if t.tag != LATEST}
        # The head first: a deploy committing after this read is caught by the condition.
        head = get_head(entrypoint) if latest is not None else None
        fallback = _newest_other(entrypoint, current.id) if latest is not None else None
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.delete(
                    current, condition=(DeploymentItem.user_id == owner) & _at_revision(current)
                )
                transaction.delete(
                    FlowDeploymentItem(*FlowDeploymentItem.key(entrypoint, current.id))
                )
                on_us = TagItem.deployment_id == current.id
                for tag in tags:
                    if tag is not latest or fallback is None:
                        transaction.delete(tag, condition=on_us)
                if latest is not None and fallback is not None:
                    transaction.update(
                        fallback,
                        [DeploymentItem.tags.add({LATEST}), _next_revision(fallback)],
                        condition=DeploymentItem.pk.exists() & _at_revision(fallback),
                    )
                    latest.deployment_id = fallback.id
                    for name, value in start_fields(fallback).items():
                        setattr(latest, name, value)
                    transaction.save(latest, condition=on_us)
                no_deploy_since = _deploys_as(head) if latest is not None else None
                if no_deploy_since is not None and fallback is None:
                    # The flow's last deployment: nothing of it is left, not even its head.
                    transaction.delete(_head(entrypoint), condition=no_deploy_since)
                elif custom:
                    transaction.update(
                        _head(entrypoint),
                        [FlowHeadItem.custom_tags.delete(custom), *_HEAD_KIND],
                        condition=no_deploy_since,
                    )
                elif no_deploy_since is not None:
                    transaction.condition_check(
                        FlowHeadItem, *FlowHeadItem.key(entrypoint), condition=no_deploy_since
                    )
            break
        except TransactWriteError as error:
            if not _lost_a_race(_cancellation_codes(error)) or not budget.wait():
                raise
            current = get(deployment.id)
    # Unreachable once the deployment item is gone, as they were before it was written.
    with SnapshotItem.batch_write() as batch:
        for item in _snapshot_items(deployment.id):
            batch.delete(item)
    return True


def _deploys_as(head: FlowHeadItem | None) -> Any:
    """Condition: no deploy of the flow has committed since `head` was read."""
    if head is None or head.deploys is None:
        return FlowHeadItem.deploys.does_not_exist()
    return FlowHeadItem.deploys == head.deploys


def _newest_other(entrypoint: int, deployment_id: str) -> DeploymentItem | None:
    """The flow's newest deployment but `deployment_id`, from strongly consistent reads.

    The flow's listing is consistent; deployments from before it existed are only in the
    entrypoint index, which may also still show deleted ones: each of those newer than the
    listed one is read back before it is chosen.
    """
    pk = FlowDeploymentItem.key(entrypoint, "")[0]
    listed = FlowDeploymentItem.query(
        pk,
        FlowDeploymentItem.sk.startswith("DEPLOYMENT#"),
        scan_index_forward=False,
        consistent_read=True,
        limit=2,
    )
    newest = next(
        (i for i in (item.sk.partition("#")[2] for item in listed) if i != deployment_id), None
    )
    for indexed in of_flow(entrypoint):
        if newest is not None and indexed.id <= newest:
            break
        if indexed.id != deployment_id and (found := get(indexed.id)) is not None:
            return found
    return get(newest) if newest is not None else None


def _snapshot_items(deployment_id: str) -> Iterator[SnapshotItem]:
    return SnapshotItem.query(
        DeploymentItem.key(deployment_id)[0],
        SnapshotItem.sk.startswith("FLOW#"),
        consistent_read=True,
    )


class TooManyTags(Exception):
    """The flow already has the most tags besides `latest` it may have."""


def put_tag(tag: TagItem, deployment: DeploymentItem, max_custom_tags: int) -> bool:
    """Create or move a tag onto `deployment` (a consistent read), with its start fields.

    Only onto a deployment of the tag's owner and flow that still exists; False if it is
    gone (or another user holds the tag's key). The deployment lists the tag and moves to
    its next revision in the same transaction, so a concurrent PATCH cannot miss the tag;
    the flow's head counts it there too, so no interleaving of PUTs passes
    `max_custom_tags` (TooManyTags).
    """
    current: DeploymentItem | None = deployment
    head = _head(int(tag.entrypoint))
    room = (
        FlowHeadItem.custom_tags.does_not_exist()
        | (size(FlowHeadItem.custom_tags) < max_custom_tags)  # type: ignore[no-untyped-call]
        | FlowHeadItem.custom_tags.contains(tag.tag)
    )
    budget = RetryBudget()
    while True:
        if current is None:
            return False
        for name, value in start_fields(current).items():
            setattr(tag, name, value)
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.update(
                    current,
                    [DeploymentItem.tags.add({tag.tag}), _next_revision(current)],
                    condition=(DeploymentItem.user_id == tag.user_id)
                    & (DeploymentItem.entrypoint == tag.entrypoint)
                    & _at_revision(current),
                )
                transaction.save(
                    tag, condition=TagItem.pk.does_not_exist() | (TagItem.user_id == tag.user_id)
                )
                transaction.update(
                    head, [FlowHeadItem.custom_tags.add({tag.tag}), *_HEAD_KIND], condition=room
                )
            return True
        except TransactWriteError as error:
            codes = _cancellation_codes(error)
            # pynamodb sends puts before updates: [the tag, the deployment, the head].
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # another user's tag
            if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                raise TooManyTags from None
            if not _lost_a_race(codes) or not budget.wait():
                raise
            current = get(tag.deployment_id)
            if current is not None and (
                current.user_id != tag.user_id or int(current.entrypoint) != int(tag.entrypoint)
            ):
                return False


def delete_tag(entrypoint: int, tag: str, owner_id: str) -> bool:
    """Remove the owner's tag, and its place in the flow's count; False if there is none."""
    budget = RetryBudget()
    while True:
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.delete(
                    TagItem(*TagItem.key(entrypoint, tag)), condition=TagItem.user_id == owner_id
                )
                transaction.update(
                    _head(entrypoint), [FlowHeadItem.custom_tags.delete({tag}), *_HEAD_KIND]
                )
            return True
        except TransactWriteError as error:
            codes = _cancellation_codes(error)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return False
            if "TransactionConflict" not in codes or not budget.wait():
                raise
