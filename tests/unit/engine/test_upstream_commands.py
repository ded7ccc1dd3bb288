"""Upstream's standard commands with upstream's ports and results: to_string, json_extract,
json_insert, flow_run_info, the kv_* nodes (on a store in memory; the DynamoDB store has
its own tests) and the HTTP node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowdeploy.engine.services import RunInfo, RunServices, ServiceFailure
from flowdeploy.values import IValue
from tests.unit.engine.flows import edge, flow, node, one_node, run
from tests.unit.engine.test_http_request import serve


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"N": 0}, ""),
        ({"B": True}, "true"),
        ({"S": "hello"}, "hello"),
        ({"I": "-42"}, "-42"),
        ({"D": "1.50"}, "1.50"),
        ({"F": "3"}, "3"),
        ({"F": "0.1"}, "0.1"),
        ({"F": "1e21"}, "1000000000000000000000"),
        ({"B3": "11111111111111111111111111111111"}, "11111111111111111111111111111111"),
        ({"A": [{"U": "1"}]}, '{\n  "A": [\n    {\n      "U": "1"\n    }\n  ]\n}'),
    ],
)
def test_to_string_writes_values_as_upstream_does(value: dict[str, Any], text: str) -> None:
    assert one_node("to_string", {"stringify": value}).outputs == {"result": {"S": text}}


def extract(document: dict[str, Any], path: str) -> dict[str, Any]:
    return one_node("json_extract", {"json_input": document, "field_path": {"S": path}}).outputs


def M(**members: Any) -> dict[str, Any]:
    return {"M": members}


def test_json_extract_takes_the_value_out_and_gives_the_rest() -> None:
    document = M(keep={"S": "yes"}, remove={"S": "gone"})
    assert extract(document, "remove") == {
        "value": {"S": "gone"},
        "trimmed_json": M(keep={"S": "yes"}),
    }


def test_json_extract_follows_a_pointer_into_arrays() -> None:
    document = M(items={"A": [{"I": "10"}, {"I": "20"}, {"I": "30"}]})
    assert extract(document, "/items/1")["value"] == {"I": "20"}


def test_json_extract_of_a_missing_field_is_null_and_keeps_the_input() -> None:
    assert extract(M(a={"I": "1"}), "missing") == {
        "value": {"N": 0},
        "trimmed_json": M(a={"I": "1"}),
    }


def test_json_extract_parses_json_text_with_integers_and_floats_as_upstream() -> None:
    assert extract({"S": '{"name": "Bob", "age": 30}'}, "name")["value"] == {"S": "Bob"}
    assert extract({"S": "3.14"}, "x") == {"value": {"F": "3.14"}, "trimmed_json": {"N": 0}}


def test_json_extract_of_text_that_is_not_json_fails() -> None:
    outcome = one_node("json_extract", {"json_input": {"S": "not json"}, "field_path": {"S": "a"}})
    assert (
        outcome.error is not None and "json_input is a string but not valid JSON" in outcome.error
    )


def test_json_insert_sets_a_key_and_inserts_into_arrays() -> None:
    document = M(a={"I": "1"}, b=M(c=M()))
    inserted = one_node(
        "json_insert", {"json_input": document, "path": {"S": "/b/c"}, "value": M(d={"I": "3"})}
    )
    assert inserted.outputs["updated_json"] == M(a={"I": "1"}, b=M(c=M(d={"I": "3"})))
    array = {"A": [{"U": "1"}, {"U": "3"}]}
    middle = one_node("json_insert", {"json_input": array, "path": {"S": "1"}, "value": {"U": "2"}})
    assert middle.outputs["updated_json"] == {"A": [{"U": "1"}, {"U": "2"}, {"U": "3"}]}
    end = one_node("json_insert", {"json_input": array, "path": {"S": "-"}, "value": {"U": "4"}})
    assert end.outputs["updated_json"] == {"A": [{"U": "1"}, {"U": "3"}, {"U": "4"}]}


def test_json_insert_needs_the_parent_to_exist() -> None:
    outcome = one_node(
        "json_insert", {"json_input": M(), "path": {"S": "/a/b"}, "value": {"U": "1"}}
    )
    assert outcome.error is not None
    assert "path /a/b: there is no map or array to insert into" in outcome.error


def test_flow_run_info_tells_the_owner_the_starter_and_the_cluster() -> None:
    services = RunServices(info=RunInfo("run-1", "owner-1", "caller-1", "devnet"))
    outcome = one_node("flow_run_info", {}, services=services)
    assert outcome.outputs == {
        "flow_owner": {"S": "owner-1"},
        "started_by": {"S": "caller-1"},
        "solana_net": {"S": "devnet"},
    }


class MemoryStores:
    """The engine's KeyValueStore in memory, with upstream's errors."""

    def __init__(self) -> None:
        self.stores: dict[str, dict[str, IValue]] = {}

    async def create_store(self, store: str) -> bool:
        if store in self.stores:
            raise ServiceFailure("store already exists")
        self.stores[store] = {}
        return True

    async def delete_store(self, store: str) -> bool:
        return self.stores.pop(store, None) is not None

    def _store(self, store: str) -> dict[str, IValue]:
        if store not in self.stores:
            raise ServiceFailure("store not found")
        return self.stores[store]

    async def read_item(self, store: str, key: str) -> IValue | None:
        return self._store(store).get(key)

    async def write_item(self, store: str, key: str, value: IValue) -> IValue | None:
        old = self._store(store).get(key)
        self._store(store)[key] = value
        return old

    async def delete_item(self, store: str, key: str) -> IValue | None:
        return self._store(store).pop(key, None)


def test_kv_nodes_create_write_read_and_delete_with_upstreams_ports() -> None:
    stores = MemoryStores()
    services = RunServices(kvstore=stores)
    writing = flow(
        node("make", "kv_create_store", store="s"),
        node("w1", "kv_write_item", key="k", value=1),
        node("w2", "kv_write_item", key="k", value=2),
        node("read", "kv_read_item", key="k"),
        node("old", "flow_output", label="old"),
        node("value", "flow_output", label="value"),
        edges=[
            edge("make", "w1", "store", "store"),
            edge("w1", "w2", "store", "store"),
            edge("w2", "old", "old_value"),
            edge("w2", "read", "store", "store"),
            edge("read", "value", "value"),
        ],
    )
    outcome = run(writing, services=services)
    assert (outcome.status, outcome.outputs) == (
        "succeeded",
        {"old": {"U": "1"}, "value": {"U": "2"}},
    )
    deleting = flow(
        node("drop", "kv_delete_item", store="s", key="k"),
        node("again", "kv_read_item", default="none"),
        node("gone", "flow_output", label="gone"),
        node("found", "flow_output", label="found"),
        edges=[
            edge("drop", "gone", "old_value"),
            edge("drop", "again", "store", "store"),
            edge("drop", "again", "key", "key"),
            edge("again", "found", "found"),
        ],
    )
    outcome = run(deleting, services=services)
    assert outcome.outputs == {"gone": {"U": "2"}, "found": {"B": False}}
    assert stores.stores == {"s": {}}


def test_kv_store_errors_fail_the_node_with_upstreams_message() -> None:
    outcome = run(
        flow(node("read", "kv_read_item", store="nope", key="k")),
        services=RunServices(kvstore=MemoryStores()),
    )
    assert outcome.error == "node 'read' (kv_read_item) failed: store not found"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from serve()


def http_node(command: str, **config: Any) -> Any:
    return run(
        flow(
            node("req", command, **config),
            node("body", "flow_output", label="body"),
            node("headers", "flow_output", label="headers"),
            edges=[edge("req", "body", "body"), edge("req", "headers", "headers")],
        )
    )


@pytest.mark.parametrize("command", ["http"])
def test_upstreams_http_node_gives_body_and_headers(server: str, command: str) -> None:
    outcome = http_node(command, url=f"{server}/json")
    assert outcome.outputs["body"] == {"M": {"price": {"F": "1.1"}, "ok": {"B": True}}}
    assert outcome.outputs["headers"]["M"]["x-seen"] == {"S": "yes"}


def test_upstreams_http_node_sends_basic_auth_and_a_json_body(server: str) -> None:
    outcome = http_node(
        "http",
        url=f"{server}/echo",
        method="POST",
        basic_auth={"user": "u", "password": "p"},
        body={"x": 1},
    )
    assert outcome.outputs["body"] == {
        "M": {
            "got": {"M": {"x": {"U": "1"}}},
            "type": {"S": "application/json"},
            "auth": {"S": "Basic dTpw"},
        }
    }


def test_a_non_2xx_answer_fails_upstreams_http_node_with_status_and_body(server: str) -> None:
    outcome = http_node("http", url=f"{server}/missing")
    assert outcome.status == "failed"
    assert outcome.error == ('node \'req\' (http) failed: status code: 404\n{"error": "nope"}')


def test_upstreams_http_node_refuses_private_addresses_like_ours(server: str) -> None:
    outcome = run(
        flow(
            node("req", "http", url=f"{server}/json"),
            node("o", "flow_output", label="b"),
            edges=[edge("req", "o", "body")],
        ),
        allow_private=False,
    )
    assert outcome.error is not None
    assert "refused to connect to non-public address 127.0.0.1" in outcome.error
