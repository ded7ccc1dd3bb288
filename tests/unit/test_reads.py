"""`GET`/`POST /deployment/read` through the real handlers: synchronous reads, their cache
(ETag, 304, skip_cache), who may read, read_enabled, the budget, and reads never sending."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from solders.keypair import Keypair

from flowdeploy.settings import settings
from tests.conftest import new_user
from tests.unit.api import Api, Reply
from tests.unit.engine.flows import edge, node

WALLET = str(Keypair().pubkey())
ADD_NODES = [
    node("a", "flow_input", label="a"),
    node("b", "flow_input", label="b"),
    node("add", "add"),
    node("c", "flow_output", label="c"),
]
ADD_EDGES = [edge("a", "add", into="a"), edge("b", "add", into="b"), edge("add", "c", out="result")]
INPUTS = {"a": {"U": "2"}, "b": {"U": "3"}}


def deploy(api: Api, owner: str, *, read_enabled: bool = True, **flow: Any) -> tuple[int, str]:
    fields = {"nodes": ADD_NODES, "edges": ADD_EDGES, **flow}
    flow_id = api.create_flow(owner, read_enabled=read_enabled, **fields)
    return flow_id, api.deploy(owner, flow_id)


def get(api: Api, query: str, inputs: Any = INPUTS, **kw: Any) -> Reply:
    if inputs is not None:
        query += "&inputs=" + quote(json.dumps(inputs))
    return api.call("GET", f"/deployment/read?{query}", **kw)


def runs(api: Api, owner: str, deployment_id: str) -> list[dict[str, Any]]:
    return list(
        api.call("GET", f"/deployment/{deployment_id}/flow_runs", user=owner).body["flow_runs"]
    )


def test_a_read_runs_the_deployment_and_answers_its_outputs_with_cache_headers(
    api: Api,
) -> None:
    owner = new_user()
    _, deployment_id = deploy(api, owner)
    reply = get(api, f"id={deployment_id}", user=owner)
    assert reply.status == 200, reply.body
    assert reply.body == {"M": {"c": {"D": "5"}}}
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["cache-control"] in {"private, max-age=300", "private, max-age=299"}
    assert reply.headers["etag"].startswith('"') and reply.headers["last-modified"].endswith("GMT")
    (run,) = runs(api, owner, deployment_id)
    assert (run["origin"], run["status"], run["outputs"]) == ("read", "succeeded", reply.body["M"])


def test_a_second_read_is_answered_from_the_cache_and_if_none_match_is_a_304(api: Api) -> None:
    owner = new_user()
    _, deployment_id = deploy(api, owner)
    first = get(api, f"id={deployment_id}", user=owner)
    # The same inputs in another order, and in a POST body: the same entry.
    reordered = get(api, f"id={deployment_id}", {"b": {"U": "3"}, "a": {"U": "2"}}, user=owner)
    posted = api.call(
        "POST", f"/deployment/read?id={deployment_id}", user=owner, json_body={"inputs": INPUTS}
    )
    assert first.body == reordered.body == posted.body
    assert first.headers["etag"] == reordered.headers["etag"] == posted.headers["etag"]
    assert len(runs(api, owner, deployment_id)) == 1
    etag = first.headers["etag"]
    not_modified = get(api, f"id={deployment_id}", user=owner, headers={"if-none-match": etag})
    assert (not_modified.status, not_modified.body) == (304, None)
    assert not_modified.headers["etag"] == etag
    other = get(api, f"id={deployment_id}", {"a": {"U": "1"}, "b": {"U": "1"}}, user=owner)
    assert other.body == {"M": {"c": {"D": "2"}}} and other.headers["etag"] != etag
    assert len(runs(api, owner, deployment_id)) == 2


def test_skip_cache_runs_it_again(api: Api) -> None:
    owner = new_user()
    _, deployment_id = deploy(api, owner)
    path = f"/deployment/read?id={deployment_id}"
    for _ in range(2):
        body = {"inputs": INPUTS, "skip_cache": True}
        assert api.call("POST", path, user=owner, json_body=body).status == 200
    assert get(api, f"id={deployment_id}&skip_cache=true", user=owner).status == 200
    assert len(runs(api, owner, deployment_id)) == 3


def test_a_flow_deployed_without_read_enabled_is_a_403(api: Api) -> None:
    owner = new_user()
    flow_id, deployment_id = deploy(api, owner, read_enabled=False)
    reply = get(api, f"id={deployment_id}", user=owner)
    assert reply.status == 403
    assert reply.body == {
        "error": f"read not allowed: flow {flow_id} was deployed without read_enabled (set it "
        "on the flow and deploy again)"
    }
    assert runs(api, owner, deployment_id) == []


def test_only_callers_the_start_permission_admits_may_read_even_from_the_cache(
    api: Api,
) -> None:
    owner, other = new_user(), new_user()
    flow_id, deployment_id = deploy(api, owner, is_public=True, start_shared=True)
    assert get(api, f"id={deployment_id}", user=other).status == 200  # Authenticated
    wallet = {"authorization": f"Bearer {WALLET}"}
    assert get(api, f"flow={flow_id}", headers=wallet).status == 404
    patch = {"start_permission": "Owner"}
    assert (
        api.call("PATCH", f"/deployment/{deployment_id}", user=owner, json_body=patch).status == 200
    )
    refused = get(api, f"id={deployment_id}", user=other)  # its answer is still cached
    assert refused.status == 404 and refused.body == {
        "error": f"deployment not found: {deployment_id}"
    }


def test_each_caller_has_its_own_cache_entry(api: Api) -> None:
    owner = new_user()
    flow_id, deployment_id = deploy(
        api, owner, is_public=True, start_shared=True, start_unverified=True
    )
    for caller in ({"user": owner}, {"headers": {"authorization": f"Bearer {WALLET}"}}):
        assert get(api, f"flow={flow_id}&tag=latest", **caller).status == 200
    assert len(runs(api, owner, deployment_id)) == 2


def test_a_tag_reads_the_deployment_it_names_now(api: Api) -> None:
    owner = new_user()
    flow_id, first = deploy(api, owner)
    assert get(api, f"flow={flow_id}", user=owner).body == {"M": {"c": {"D": "5"}}}
    nodes = [*ADD_NODES[:3], node("c", "flow_output", label="sum")]
    replaced = {"name": "it", "nodes": nodes, "edges": ADD_EDGES, "read_enabled": True}
    assert api.call("PUT", f"/flow/{flow_id}", user=owner, json_body=replaced).status == 200
    api.deploy(owner, flow_id)  # latest moves
    assert get(api, f"flow={flow_id}", user=owner).body == {"M": {"sum": {"D": "5"}}}
    assert get(api, f"id={first}", user=owner).body == {"M": {"c": {"D": "5"}}}


def test_a_read_never_sends_a_transaction(api: Api) -> None:
    owner = new_user()
    nodes = [
        node("from", "flow_input", label="from"),
        node("to", "flow_input", label="to"),
        node("amount", "const", value={"D": "0.1"}),
        node("send", "transfer_sol"),
        node("out", "flow_output", label="signature"),
    ]
    edges = [
        edge("from", "send", into="from"),
        edge("to", "send", into="to"),
        edge("amount", "send", into="amount"),
        edge("send", "out", out="signature"),
    ]
    _, deployment_id = deploy(api, owner, nodes=nodes, edges=edges)
    inputs = {"from": {"S": WALLET}, "to": {"S": WALLET}}
    reply = get(api, f"id={deployment_id}", inputs, user=owner)
    assert reply.status == 422
    assert "a read never signs or sends a transaction" in reply.body["error"]
    assert get(api, f"id={deployment_id}", inputs, user=owner).status == 422  # not cached
    assert [run["status"] for run in runs(api, owner, deployment_id)] == ["failed", "failed"]


def test_a_read_past_its_budget_is_a_408(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READ_TIMEOUT_SECONDS", "0.5")
    settings.cache_clear()
    try:
        owner = new_user()
        nodes = [node("w", "wait", seconds=5), node("out", "flow_output", label="done")]
        _, deployment_id = deploy(api, owner, nodes=nodes, edges=[edge("w", "out", out="value")])
        reply = get(api, f"id={deployment_id}", None, user=owner)
        (run,) = runs(api, owner, deployment_id)
    finally:
        # The variable back first, then the settings read again: a later test must not
        # inherit the 0.5 s budget.
        monkeypatch.undo()
        settings.cache_clear()
    assert reply.status == 408
    assert reply.body == {"error": "read timeout: the deployment ran longer than 0.5 s"}
    assert run["status"] == "failed" and "deadline" in run["error"]


BAD_READS = [
    ("", 400, "say which deployment: ?id=<deployment id> or ?flow=<flow id>[&tag=<tag>]"),
    ("id=nope", 400, "id must be a deployment id (a UUID), got 'nope'"),
    ("id={id}&inputs=%7Bnot", 400, "invalid read inputs query payload"),
    ("id={id}&inputs=%7B%22a%22%3A5%7D", 400, "invalid read inputs query payload"),
    ("id={id}&skip_cache=maybe", 400, "skip_cache must be true or false, got 'maybe'"),
    ("id={id}&inputs=" + "%20" * 8200, 413, "inputs in the query are limited to 8192 bytes"),
    ("id=0194e5ac-9103-7c52-971e-f71f83c5de2e", 404, "deployment not found"),
    ("id={id}&inputs=%7B%22a%22%3A%7B%22F%22%3ANaN%7D%7D", 400, "inputs contains NaN"),
    ("id={id}&tagg=v1", 400, "unknown query parameter: tagg"),
    ("id={id}&flow=1", 400, "name the deployment one way"),
]


def test_bad_reads_are_refused_precisely(api: Api) -> None:
    owner = new_user()
    _, deployment_id = deploy(api, owner)
    for query, status, error in BAD_READS:
        reply = api.call("GET", "/deployment/read?" + query.format(id=deployment_id), user=owner)
        assert reply.status == status, (query, reply.body)
        assert error in reply.body["error"], (query, reply.body)
    assert runs(api, owner, deployment_id) == []


def test_bad_read_bodies_and_missing_credentials(api: Api) -> None:
    owner = new_user()
    _, deployment_id = deploy(api, owner)
    path = f"/deployment/read?id={deployment_id}"
    for body, error in (
        ({"inputs": INPUTS, "extra": 1}, "unknown field: extra"),
        ({"skip_cache": "yes"}, "skip_cache: Input should be a valid boolean"),
        ({"inputs": {"a": 5}}, "inputs.a"),
    ):
        reply = api.call("POST", path, user=owner, json_body=body)
        assert reply.status == 400 and error in reply.body["error"], reply.body
    assert api.call("GET", path).status == 401
    assert api.call("POST", path, headers={"authorization": "Bearer fr-x"}).status == 401


def test_a_read_reads_the_owners_wallets_and_stores_and_a_long_one_watches_for_a_stop(
    api: Api,
) -> None:
    from flowdeploy import kvstore
    from flowdeploy.runner import STOP_POLL_SECONDS
    from flowdeploy.store import kv

    owner = new_user()
    wallet = api.call("POST", "/wallet", user=owner, json_body={"name": "w"})
    assert wallet.status == 201, wallet.body
    kv.create_store(owner, "s", kvstore.LIMITS)
    kv.write_item(owner, "s", "k", '{"U":"7"}', kvstore.LIMITS)
    nodes = [
        node("w", "wallet", wallet_id=wallet.body["id"]),
        node("get", "kv_read_item", store="s", key="k"),
        node("pause", "wait", seconds=STOP_POLL_SECONDS + 0.5),  # long enough to poll once
        node("key", "flow_output", label="pubkey"),
        node("value", "flow_output", label="value"),
    ]
    edges = [edge("w", "key", out="pubkey"), edge("get", "value", out="value")]
    _, deployment_id = deploy(api, owner, nodes=nodes, edges=edges)
    reply = get(api, f"id={deployment_id}", None, user=owner)
    assert reply.status == 200, reply.body
    assert reply.body == {"M": {"pubkey": {"B3": wallet.body["pubkey"]}, "value": {"U": "7"}}}
