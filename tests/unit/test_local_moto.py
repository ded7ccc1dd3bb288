"""The local stack's DynamoDB (moto, patched by flowdeploy.local.moto_dynamodb): a failed
transaction leaves exactly what was there, concurrent writers never erase each other, and
nothing a request creates is kept after it (the bound on `make dev`'s memory).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

TABLE = "RunRecordsTable"  # flow_run_id (S) / sk (S)


def key(run: str, sk: str) -> dict[str, Any]:
    return {"flow_run_id": {"S": run}, "sk": {"S": sk}}


def item(run: str, sk: str, value: str) -> dict[str, Any]:
    return {**key(run, sk), "value": {"S": value}}


@pytest.fixture
def db(aws: dict[str, Any]) -> Any:
    return boto3.client("dynamodb")


def everything(db: Any) -> list[dict[str, Any]]:
    return sorted(
        db.scan(TableName=TABLE)["Items"], key=lambda i: (i["flow_run_id"]["S"], i["sk"]["S"])
    )


def test_a_cancelled_transaction_leaves_every_item_as_it_was(db: Any) -> None:
    db.put_item(TableName=TABLE, Item=item("r", "updated", "before"))
    db.put_item(TableName=TABLE, Item=item("r", "deleted", "kept"))
    before = everything(db)
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item("r", "new", "x")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("r", "updated"),
                        "UpdateExpression": "SET #v = :v",
                        "ExpressionAttributeNames": {"#v": "value"},
                        "ExpressionAttributeValues": {":v": {"S": "after"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": key("r", "deleted")}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key("r", "missing"),
                        "ConditionExpression": "attribute_exists(flow_run_id)",
                    }
                },
            ]
        )
    assert everything(db) == before


def test_concurrent_writes_reads_and_cancelled_transactions_neither_fail_nor_erase(
    db: Any,
) -> None:
    for n in range(150):  # a table worth copying: moto copied it for every transaction
        db.put_item(TableName=TABLE, Item=item("old", f"{n:04}", "x" * 200))
    done = threading.Event()
    written: list[str] = []
    failures: list[BaseException] = []

    def writer() -> None:
        for n in range(60):
            db.put_item(TableName=TABLE, Item=item("w", f"{n:04}", "w"))
            db.batch_write_item(
                RequestItems={TABLE: [{"PutRequest": {"Item": item("b", f"{n:04}", "b")}}]}
            )
            written.append(f"{n:04}")

    def reader() -> None:
        # A GetItem of an absent partition adds it to moto's defaultdict of partitions: a
        # "read" that changes the dict a concurrent table copy iterates.
        n = 0
        while not done.is_set():
            db.get_item(TableName=TABLE, Key=key(f"absent-{n}", "x"))
            n += 1

    def failing_transactions() -> None:
        while not done.is_set():
            try:
                db.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": TABLE, "Item": item("t", "x", "x")}},
                        {
                            "ConditionCheck": {
                                "TableName": TABLE,
                                "Key": key("t", "missing"),
                                "ConditionExpression": "attribute_exists(flow_run_id)",
                            }
                        },
                    ]
                )
            except db.exceptions.TransactionCanceledException:
                continue
            except BaseException as error:
                failures.append(error)
                return

    others = [threading.Thread(target=reader), threading.Thread(target=failing_transactions)]
    for thread in others:
        thread.start()
    writer()
    done.set()
    for thread in others:
        thread.join()
    assert not failures
    found = {(i["flow_run_id"]["S"], i["sk"]["S"]) for i in everything(db)}
    assert {("w", n) for n in written} | {("b", n) for n in written} <= found
    assert ("t", "x") not in found


def test_requests_keep_no_copies_of_items(db: Any) -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    for n in range(20):
        db.put_item(TableName=TABLE, Item=item("r", f"{n}", "x"))
        db.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": item("t", f"{n}", "x")}}]
        )
        db.query(
            TableName=TABLE,
            KeyConditionExpression="flow_run_id = :r",
            ExpressionAttributeValues={":r": {"S": "r"}},
        )
    assert len(Item.instances_tracked) == len(Table.instances_tracked) == 0  # type: ignore[attr-defined]
