"""The store's rules for deployments: one transaction, `latest` only forward, no truncation."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import pytest
from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError

import flowdeploy.settings
from flowdeploy.ids import new_id, timestamp
from flowdeploy.store import deployments as store
from flowdeploy.store.models import DeploymentItem

USER = "885623c5-d001-41da-9d34-5577e49df350"


def deployment(deployment_id: str, entrypoint: int = 7) -> DeploymentItem:
    return DeploymentItem(
        *DeploymentItem.key(deployment_id),
        id=deployment_id,
        created_at=timestamp(),
        user_id=USER,
        entrypoint=entrypoint,
        start_permission="Owner",
        solana_network={"url": "https://api.devnet.solana.com", "cluster": "devnet"},
        flow_ids=[entrypoint],
    )


def flow(flow_id: int, payload: str = "") -> dict[str, Any]:
    return {"id": flow_id, "user_id": USER, "nodes": [{"id": "n", "blob": payload}], "edges": []}


def latest(entrypoint: int = 7) -> str | None:
    tag = store.get_tag(entrypoint, store.LATEST)
    return tag.deployment_id if tag else None


def test_latest_moves_to_a_newer_deployment(aws: dict[str, Any]) -> None:
    older, newer = new_id(), new_id()
    store.insert(deployment(older), store.snapshot_items(older, [flow(7)]))
    store.insert(deployment(newer), store.snapshot_items(newer, [flow(7)]))
    assert latest() == newer


def test_an_older_deployment_committing_last_leaves_latest_on_the_newer(
    aws: dict[str, Any],
) -> None:
    older, newer = new_id(), new_id()
    store.insert(deployment(newer), store.snapshot_items(newer, [flow(7)]))
    store.insert(deployment(older), store.snapshot_items(older, [flow(7)]))
    assert latest() == newer
    assert store.get(older) is not None, "the older deployment is still written"
    assert sorted(d.id for d in store.of_flow(7)) == [older, newer]


def test_a_large_snapshot_is_split_and_reassembled_byte_for_byte(aws: dict[str, Any]) -> None:
    # Random text does not compress, so the packed flow spans several items.
    big = flow(7, os.urandom(450_000).hex())
    deployment_id = new_id()
    items = store.snapshot_items(deployment_id, [big, flow(8)])
    assert len([i for i in items if i.flow_id == 7]) > 1
    item = deployment(deployment_id)
    store.insert(item, items)
    assert store.load_snapshot(item) == {7: big, 8: flow(8)}


def test_tags_are_unique_per_flow_and_name(aws: dict[str, Any]) -> None:
    first, second = new_id(), new_id()
    store.insert(deployment(first, entrypoint=7), [])
    store.insert(deployment(second, entrypoint=8), [])
    assert (latest(7), latest(8)) == (first, second)
    assert [t.tag for t in store.tags_of_flow(7)] == ["latest"]


def test_a_snapshot_too_large_for_one_transaction_is_written_before_it(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "TRANSACTION_BYTES", 1_000)
    in_transaction: list[int] = []
    write = store._write

    def spy(deployment: Any, snapshots: list[Any], latest: Any) -> None:
        in_transaction.append(len(snapshots))
        write(deployment, snapshots, latest)

    monkeypatch.setattr(store, "_write", spy)
    big = flow(7, os.urandom(5_000).hex())
    deployment_id = new_id()
    item = deployment(deployment_id)
    store.insert(item, store.snapshot_items(deployment_id, [big]))
    assert in_transaction == [0]
    assert store.load_snapshot(item) == {7: big}
    assert latest() == deployment_id


def conflict() -> TransactWriteError:
    cause = VerboseClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}},
        "TransactWriteItems",
        cancellation_reasons=[None, CancellationReason(code="TransactionConflict")],
    )
    return TransactWriteError("Failed to write transaction items", cause=cause)


def test_a_transaction_conflict_on_latest_is_retried(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []
    write = store._write

    def conflicting_once(deployment: Any, snapshots: list[Any], latest: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise conflict()
        write(deployment, snapshots, latest)

    monkeypatch.setattr(store, "_write", conflicting_once)
    deployment_id = new_id()
    store.insert(deployment(deployment_id), [])
    assert len(attempts) == 2
    assert latest() == deployment_id


def test_endless_transaction_conflicts_give_up_with_the_error(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_conflicting(*_: Any) -> None:
        raise conflict()

    monkeypatch.setattr(store, "_write", always_conflicting)
    short = dataclasses.replace(flowdeploy.settings.settings(), conflict_retry_seconds=0.3)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: short)
    began = time.monotonic()
    with pytest.raises(TransactWriteError):
        store.insert(deployment(new_id()), [])
    assert time.monotonic() - began < 0.3 + 0.5
