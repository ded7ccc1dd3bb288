"""Flows over the handlers: owner-only CRUD, integer ids, validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import new_user
from tests.unit.api import Api, count_items

WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"


def test_creating_a_flow_returns_201_and_an_integer_id(api: Api) -> None:
    reply = api.call("POST", "/flow", user=new_user(), json_body={"name": "mine"})
    assert reply.status == 201
    assert reply.body == {"flow_id": 1}


def test_flow_ids_come_from_one_counter_for_all_users(api: Api) -> None:
    assert [api.create_flow(new_user()) for _ in range(3)] == [1, 2, 3]


def test_a_new_flow_gets_the_documented_defaults(api: Api) -> None:
    user = new_user()
    flow_id = api.create_flow(user)
    body = api.call("GET", f"/flow/{flow_id}", user=user).body
    assert body["user_id"] == user
    assert body["is_public"] is body["start_shared"] is body["start_unverified"] is False
    assert body["current_network"] == {"url": "https://api.devnet.solana.com", "cluster": "devnet"}
    assert body["environment"] == {}
    assert body["nodes"] == body["edges"] == []


def test_a_flow_keeps_its_nodes_and_edges_verbatim(api: Api) -> None:
    user = new_user()
    nodes = [
        {"id": "a", "data": {"node_id": "const", "config": {"value": {"D": "1.50"}}}, "x": 1},
        {"id": "b", "data": {"node_id": "flow_output", "config": {"label": "out"}}},
    ]
    edges = [{"source": "a", "sourceHandle": "output", "target": "b", "targetHandle": "input"}]
    flow_id = api.create_flow(user, nodes=nodes, edges=edges)
    body = api.call("GET", f"/flow/{flow_id}", user=user).body
    assert body["nodes"] == nodes
    assert body["edges"] == edges


def test_only_the_owner_can_read_replace_or_delete_a_flow(api: Api) -> None:
    owner, stranger = new_user(), new_user()
    flow_id = api.create_flow(owner)
    for method, body in (("GET", None), ("PUT", {"name": "x"}), ("DELETE", None)):
        reply = api.call(method, f"/flow/{flow_id}", user=stranger, json_body=body)
        assert reply.status == 404, method
        assert reply.body == {"error": f"flow not found: {flow_id}"}
    assert api.call("GET", f"/flow/{flow_id}", user=owner).body["name"] == "test flow"


def test_replacing_a_flow_changes_it(api: Api) -> None:
    user = new_user()
    flow_id = api.create_flow(user)
    reply = api.call(
        "PUT", f"/flow/{flow_id}", user=user, json_body={"name": "v2", "is_public": True}
    )
    assert reply.status == 200
    assert (reply.body["name"], reply.body["is_public"]) == ("v2", True)


def test_deleting_a_flow_removes_it(api: Api) -> None:
    user = new_user()
    flow_id = api.create_flow(user)
    assert api.call("DELETE", f"/flow/{flow_id}", user=user).status == 204
    assert api.call("GET", f"/flow/{flow_id}", user=user).status == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "colour": "red"}, "unknown field: colour"),
        ({}, "name: Field required"),
        ({"name": "x", "current_network": {"url": "ftp://x", "cluster": "devnet"}}, "url"),
        ({"name": "x", "current_network": {"url": "http://x", "cluster": "moon"}}, "cluster"),
        ({"name": "x", "is_public": "yes"}, "is_public"),
        (
            {"name": "x", "nodes": [{"id": "a", "data": {"node_id": "c"}}] * 2},
            "duplicate node id 'a'",
        ),
        ({"name": "x", "edges": [{"source": "a"}]}, "edges.0.sourceHandle: Field required"),
    ],
)
def test_a_bad_flow_is_a_400_naming_the_field_and_writes_nothing(
    api: Api, body: dict[str, Any], message: str
) -> None:
    reply = api.call("POST", "/flow", user=new_user(), json_body=body)
    assert reply.status == 400
    assert message in reply.body["error"]
    assert count_items("FlowsTable") == 0


def test_flows_need_a_user_not_a_wallet(api: Api) -> None:
    assert api.call("POST", "/flow", json_body={"name": "x"}).status == 401
    reply = api.call(
        "POST", "/flow", headers={"authorization": f"Bearer {WALLET}"}, json_body={"name": "x"}
    )
    assert reply.status == 401


def test_a_body_that_is_not_json_is_a_400(api: Api) -> None:
    reply = api.call(
        "POST",
        "/flow",
        user=new_user(),
        headers={"content-type": "application/json"},
        raw_body=b'{"name": ',
    )
    assert reply.status == 400
    assert reply.body["error"].startswith("body is not valid JSON")


def test_a_body_of_another_media_type_is_a_415(api: Api) -> None:
    reply = api.call(
        "POST", "/flow", user=new_user(), headers={"content-type": "text/csv"}, raw_body=b"a,b"
    )
    assert reply.status == 415


def test_a_non_integer_flow_id_is_a_400(api: Api) -> None:
    assert api.call("GET", "/flow/abc", user=new_user()).status == 400


def test_an_unknown_route_is_a_json_404(api: Api) -> None:
    reply = api.call("GET", "/no/such/route", user=new_user())
    assert reply.status == 404
    assert reply.body == {"error": "no route for GET /no/such/route"}


def test_a_flow_too_large_to_store_is_a_413(api: Api) -> None:
    environment = {f"KEY_{i}": "v" * 4000 for i in range(200)}
    reply = api.call(
        "POST", "/flow", user=new_user(), json_body={"name": "x", "environment": environment}
    )
    assert reply.status == 413
    assert "too large" in reply.body["error"]
    assert count_items("FlowsTable") == 0


@pytest.mark.parametrize(
    "config",
    [b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"\\udbff"'],
    ids=["nan", "infinity", "minus-infinity", "overflow", "lone-surrogate"],
)
def test_a_flow_with_a_value_json_cannot_carry_is_a_400_and_stores_nothing(
    api: Api, config: bytes
) -> None:
    body = b'{"name": "x", "nodes": [{"id": "a", "data": {"node_id": "const", "config": {"value": '
    reply = api.call(
        "POST",
        "/flow",
        user=new_user(),
        headers={"content-type": "application/json"},
        raw_body=body + config + b"}}}]}",
    )
    assert reply.status == 400, reply.body
    assert "body" in reply.body["error"]
    assert count_items("FlowsTable") == 0


def test_a_form_encoded_body_is_a_415_like_any_other_media_type(api: Api) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    reply = api.call("POST", "/flow", user=new_user(), headers=form, raw_body=b"name=x&a=1")
    multipart = api.call(
        "POST",
        "/flow",
        user=new_user(),
        headers={"content-type": "multipart/form-data; boundary=b"},
        raw_body=b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n',
    )
    assert (reply.status, multipart.status) == (415, 415)
    assert reply.body == {
        "error": "send the body as application/json, not application/x-www-form-urlencoded"
    }
    assert multipart.body == {"error": "send the body as application/json, not multipart/form-data"}
    assert count_items("FlowsTable") == 0


def test_json_sent_as_curl_does_by_default_is_read(api: Api) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    reply = api.call("POST", "/flow", user=new_user(), headers=form, raw_body=b'{"name": "x"}')
    assert reply.status == 201


def test_a_literal_the_command_would_refuse_is_a_400_when_the_flow_is_saved(api: Api) -> None:
    # issue 16 item 9, over HTTP; every rule's cases are in tests/unit/engine/test_validation.py
    body = {
        "name": "x",
        "nodes": [{"id": "w", "data": {"node_id": "wait", "config": {"seconds": 901}}}],
    }
    reply = api.call("POST", "/flow", user=new_user(), json_body=body)
    assert (reply.status, reply.body) == (
        400,
        {
            "error": "node 'w' (wait): input 'seconds': must be 0 to 270 seconds (the run's "
            "deadline), got 901"
        },
    )
    assert count_items("FlowsTable") == 0
