"""The kv_* nodes' DynamoDB stores: upstream's behaviour, and limits no writer can pass."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from flowdeploy import kvstore
from flowdeploy.engine.services import ServiceFailure
from flowdeploy.store import kv
from flowdeploy.store.kv import KvFailure, Limits
from flowdeploy.values import IValue
from tests.conftest import new_user
from tests.unit.api import Api
from tests.unit.engine.flows import edge, node
from tests.unit.test_run_execution import deployed, execute, read, start

SMALL = Limits(stores=2, total_bytes=200, items_per_store=3)


@pytest.fixture
def user(aws: dict[str, Any]) -> str:
    return new_user()


def S(text: str) -> IValue:
    return IValue("S", text)


def test_write_read_replace_and_delete_an_item(user: str) -> None:
    stores = kvstore.OwnerStores(user)

    async def scenario() -> list[Any]:
        await stores.create_store("s")
        first = await stores.write_item("s", "k", S("one"))
        second = await stores.write_item("s", "k", S("two"))
        read_back = await stores.read_item("s", "k")
        removed = await stores.delete_item("s", "k")
        gone = await stores.read_item("s", "k")
        return [first, second, read_back, removed, gone]

    assert asyncio.run(scenario()) == [None, S("one"), S("two"), S("two"), None]


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (lambda s: s.read_item("nope", "k"), "store not found"),
        (lambda s: s.write_item("nope", "k", S("v")), "store not found"),
        (lambda s: s.delete_item("nope", "k"), "store not found"),
    ],
)
def test_a_missing_store_is_upstreams_store_not_found(
    user: str, operation: Any, message: str
) -> None:
    with pytest.raises(ServiceFailure, match=message):
        asyncio.run(operation(kvstore.OwnerStores(user)))


def test_a_store_is_created_once(user: str) -> None:
    kv.create_store(user, "s", SMALL)
    with pytest.raises(KvFailure, match="store already exists"):
        kv.create_store(user, "s", SMALL)


def test_the_number_of_stores_is_limited(user: str) -> None:
    kv.create_store(user, "a", SMALL)
    kv.create_store(user, "b", SMALL)
    with pytest.raises(KvFailure, match="a user has at most 2 stores and 200 bytes"):
        kv.create_store(user, "c", SMALL)
    assert kv.delete_store(user, "a", SMALL)
    kv.create_store(user, "c", SMALL)  # room again


def test_the_bytes_a_user_keeps_are_limited_and_freed_by_deletes(user: str) -> None:
    kv.create_store(user, "s", SMALL)
    kv.write_item(user, "s", "big", "x" * 150, SMALL)
    with pytest.raises(KvFailure, match="user's storage limit exceeded"):
        kv.write_item(user, "s", "more", "y" * 60, SMALL)
    kv.write_item(user, "s", "big", "x" * 10, SMALL)  # a smaller value makes room
    kv.write_item(user, "s", "more", "y" * 60, SMALL)
    [store] = kv.stores_of(user)
    assert store.size == len("big") + 10 + len("more") + 60


def test_the_items_of_a_store_are_limited(user: str) -> None:
    kv.create_store(user, "s", SMALL)
    for key in ("a", "b", "c"):
        kv.write_item(user, "s", key, '{"U":"1"}', SMALL)
    with pytest.raises(KvFailure, match="a store holds at most 3 items"):
        kv.write_item(user, "s", "d", '{"U":"1"}', SMALL)
    kv.write_item(user, "s", "a", '{"U":"2"}', SMALL)  # replacing is fine


def test_a_value_over_the_limit_is_refused_naming_it(user: str) -> None:
    stores = kvstore.OwnerStores(user)
    asyncio.run(stores.create_store("s"))
    big = S("x" * kvstore.MAX_VALUE_BYTES)
    with pytest.raises(ServiceFailure, match=f"a value is at most {kvstore.MAX_VALUE_BYTES}"):
        asyncio.run(stores.write_item("s", "k", big))


def test_a_deleted_store_takes_its_items_and_a_new_one_starts_empty(user: str) -> None:
    kv.create_store(user, "s", SMALL)
    kv.write_item(user, "s", "k", '{"U":"1"}', SMALL)
    assert kv.delete_store(user, "s", SMALL)
    assert not kv.delete_store(user, "s", SMALL)
    kv.create_store(user, "s", SMALL)
    assert kv.read_item(user, "s", "k") is None
    kv.create_store(user, "t", SMALL)  # the quota was given back: 2 stores again


def test_concurrent_writers_never_pass_the_byte_limit(user: str) -> None:
    limits = Limits(stores=5, total_bytes=1_000, items_per_store=1_000)
    kv.create_store(user, "s", limits)

    def write(index: int) -> bool:
        try:
            kv.write_item(user, "s", f"k{index:03d}", "v" * 96, limits)  # 100 bytes
        except KvFailure:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = sum(pool.map(write, range(20)))
    [store] = kv.stores_of(user)
    assert written == 9 and store.size == written * 100  # 1 + 9 x 100 bytes <= 1,000
    assert store.item_count == written


def test_a_run_uses_its_deployment_owners_stores(api: Api) -> None:
    flow = {
        "nodes": [
            node("make", "kv_create_store", store="scores"),
            node("put", "kv_write_item", key="alice", value=3),
            node("get", "kv_read_item", key="alice"),
            node("out", "flow_output", label="score"),
        ],
        "edges": [
            edge("make", "put", "store", "store"),
            edge("put", "get", "store", "store"),
            edge("get", "out", "value"),
        ],
    }
    owner, _, deployment = deployed(api, flow)
    started = start(api, owner, deployment, {})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert (run["status"], run["outputs"]) == ("succeeded", {"score": {"U": "3"}})
    assert kv.read_item(owner, "scores", "alice") == '{"U":"3"}'
    again = start(api, owner, deployment, {})
    execute(api, again["flow_run_id"])
    assert read(api, again).body["error"].endswith("failed: store already exists")


def test_a_read_may_read_items_but_change_nothing(user: str) -> None:
    kv.create_store(user, "s", SMALL)
    kv.write_item(user, "s", "k", '{"U":"1"}', SMALL)
    reading = kvstore.OwnerStores(user, read_only=True)
    assert asyncio.run(reading.read_item("s", "k")) == IValue("U", 1)
    for change in (
        reading.write_item("s", "k", S("v")),
        reading.delete_item("s", "k"),
        reading.create_store("t"),
        reading.delete_store("s"),
    ):
        with pytest.raises(ServiceFailure, match=r"a read \(/deployment/read\) cannot change"):
            asyncio.run(change)
    assert kv.read_item(user, "s", "k") == '{"U":"1"}'


def test_a_run_deletes_an_item_and_then_its_store_with_the_items_left(api: Api) -> None:
    flow = {
        "nodes": [
            node("make", "kv_create_store", store="scratch"),
            node("put", "kv_write_item", key="k", value=1),
            node("keep", "kv_write_item", key="left", value=2),
            node("remove", "kv_delete_item"),
            node("drop", "kv_delete_store"),
            node("out", "flow_output", label="removed"),
        ],
        "edges": [
            edge("make", "put", "store", "store"),
            edge("put", "keep", "store", "store"),
            edge("keep", "remove", "store", "store"),
            edge("put", "remove", "key", "key"),
            edge("remove", "drop", "store", "store"),
            edge("remove", "out", "old_value"),
        ],
    }
    owner, _, deployment = deployed(api, flow)
    started = start(api, owner, deployment, {})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert (run["status"], run["outputs"]) == ("succeeded", {"removed": {"U": "1"}}), run
    assert kv.stores_of(owner) == []
