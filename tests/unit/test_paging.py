"""Every list route is paged (`?limit=&after=`, a `next` cursor) and every page fits in a
Lambda response (6 MB) whatever its rows hold; `GET /flow` lists the caller's flows; the
runs of a deleted deployment stay listable by their owner.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

import flowdeploy.settings
from flowdeploy import paging
from flowdeploy.ids import new_id, timestamp
from flowdeploy.local.devserver import api_event
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import FlowRunItem
from tests.conftest import new_user, token_for
from tests.unit.api import Api

LAMBDA_RESPONSE_LIMIT = 6_291_456


def make_flows(api: Api, owner: str) -> tuple[str, list[Any]]:
    ids = [api.create_flow(owner, name=f"f{n}") for n in range(3)]
    return "/flow", sorted(ids, reverse=True)


def make_deployments(api: Api, owner: str) -> tuple[str, list[Any]]:
    flow_id = api.create_flow(owner)
    ids = [api.deploy(owner, flow_id) for _ in range(3)]
    return f"/flow/{flow_id}/deployments", sorted(ids, reverse=True)


def make_tags(api: Api, owner: str) -> tuple[str, list[Any]]:
    flow_id = api.create_flow(owner)
    body = {"deployment_id": api.deploy(owner, flow_id)}
    for tag in ("b", "a"):
        api.call("PUT", f"/flow/{flow_id}/tags/{tag}", user=owner, json_body=body)
    return f"/flow/{flow_id}/tags", ["a", "b", "latest"]


def make_runs(api: Api, owner: str) -> tuple[str, list[Any]]:
    deployment_id = api.deploy(owner, api.create_flow(owner))
    path = f"/deployment/start?id={deployment_id}"
    ids = [api.call("POST", path, user=owner).body["flow_run_id"] for _ in range(3)]
    return f"/deployment/{deployment_id}/flow_runs", sorted(ids, reverse=True)


def make_api_keys(api: Api, owner: str) -> tuple[str, list[Any]]:
    ids = [api.call("POST", "/apikey", user=owner, json_body={"name": "k"}).body["id"]]
    ids += [api.call("POST", "/apikey", user=owner, json_body={"name": "k"}).body["id"]]
    ids += [api.call("POST", "/apikey", user=owner, json_body={"name": "k"}).body["id"]]
    return "/apikey", ids


def make_wallets(api: Api, owner: str) -> tuple[str, list[Any]]:
    ids = [api.call("POST", "/wallet", user=owner, json_body={"name": "w"}).body["id"]]
    ids += [api.call("POST", "/wallet", user=owner, json_body={"name": "w"}).body["id"]]
    ids += [api.call("POST", "/wallet", user=owner, json_body={"name": "w"}).body["id"]]
    return "/wallet", ids


LISTS: dict[str, tuple[Callable[[Api, str], tuple[str, list[Any]]], str, str]] = {
    "flows": (make_flows, "flows", "id"),
    "deployments": (make_deployments, "deployments", "id"),
    "tags": (make_tags, "tags", "tag"),
    "flow_runs": (make_runs, "flow_runs", "id"),
    "api_keys": (make_api_keys, "api_keys", "id"),
    "wallets": (make_wallets, "wallets", "id"),
}


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_every_list_route_pages_with_limit_after_and_next(api: Api, kind: str) -> None:
    make, rows, key = LISTS[kind]
    owner = new_user()
    path, expected = make(api, owner)
    whole = api.call("GET", path, user=owner).body
    assert [row[key] for row in whole[rows]] == expected
    assert whole["next"] is None

    first = api.call("GET", f"{path}?limit=2", user=owner).body
    assert [row[key] for row in first[rows]] == expected[:2]
    assert first["next"] == expected[1]
    rest = api.call("GET", f"{path}?limit=2&after={first['next']}", user=owner).body
    assert [row[key] for row in rest[rows]] == expected[2:]
    assert rest["next"] is None


LIST_PATHS = [
    "/flow",
    "/flow/1/deployments",
    "/flow/1/tags",
    f"/deployment/{new_id()}/flow_runs",
    "/apikey",
    "/wallet",
    f"/flow_run/{new_id()}/nodes",
    f"/flow_run/{new_id()}/logs",
]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be an integer from 1 to 100, got '0'"),
        ("limit=101", "limit must be an integer from 1 to 100, got '101'"),
        ("limit=two", "limit must be an integer from 1 to 100, got 'two'"),
        ("after=..%2f", "after must be the `next` of the previous page, got '../'"),
        ("page=2", "unknown query parameter: page (this route takes limit, after)"),
    ],
)
def test_a_page_query_the_route_cannot_read_is_a_400(api: Api, query: str, message: str) -> None:
    reply = api.call("GET", f"/apikey?{query}", user=new_user())
    assert (reply.status, reply.body) == (400, {"error": message})


@pytest.mark.parametrize(
    "path", LIST_PATHS, ids=[re.sub("/[0-9a-f-]{36}/", "/{id}/", p) for p in LIST_PATHS]
)
def test_every_list_route_reads_its_page_query_first(api: Api, path: str) -> None:
    owner = new_user()
    if path.startswith("/flow_run/"):  # a run's records need the run
        deployment_id = api.deploy(owner, api.create_flow(owner))
        run = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body
        path = f"/flow_run/{run['flow_run_id']}/{path.rsplit('/', 1)[1]}"
    for query in ("limit=0", "after=..%2f", "page=2"):
        assert api.call("GET", f"{path}?{query}", user=owner).status == 400, (path, query)


def test_get_flow_lists_only_the_callers_flows_without_nodes(api: Api) -> None:
    owner, other = new_user(), new_user()
    node = {"id": "a", "data": {"node_id": "const", "config": {"value": {"U": "1"}}}}
    mine = api.create_flow(owner, name="mine", nodes=[node])
    api.create_flow(other, name="theirs")
    listed = api.call("GET", "/flow", user=owner).body
    assert listed == {
        "flows": [
            {
                "id": mine,
                "user_id": owner,
                "name": "mine",
                "is_public": False,
                "start_shared": False,
                "start_unverified": False,
                "current_network": {"url": "https://api.devnet.solana.com", "cluster": "devnet"},
                "created_at": listed["flows"][0]["created_at"],
                "updated_at": listed["flows"][0]["updated_at"],
            }
        ],
        "next": None,
    }
    assert api.call("GET", "/flow", user=new_user()).body == {"flows": [], "next": None}
    wallet = {"authorization": "Bearer 5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"}
    assert api.call("GET", "/flow", headers=wallet).status == 401


def test_runs_of_a_deleted_deployment_stay_listable_by_their_owner_only(api: Api) -> None:
    owner = new_user()
    deployment_id = api.deploy(owner, api.create_flow(owner))
    run_id = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body[
        "flow_run_id"
    ]
    assert api.call("DELETE", f"/deployment/{deployment_id}", user=owner).status == 204
    listed = api.call("GET", f"/deployment/{deployment_id}/flow_runs", user=owner).body
    assert [run["id"] for run in listed["flow_runs"]] == [run_id]
    stranger = api.call("GET", f"/deployment/{deployment_id}/flow_runs", user=new_user())
    assert stranger.status == 404
    never = api.call("GET", f"/deployment/{new_id()}/flow_runs", user=owner)
    assert never.status == 404


def _raw_result(api: Api, target: str, user: str) -> dict[str, Any]:
    """What ApiFunction returns to Lambda for a GET: the whole invocation result."""
    path = target.partition("?")[0]
    found = api.gateway.route("GET", path)
    assert found is not None
    route, params = found
    headers = {"host": "localhost", "authorization": f"Bearer {token_for(user)}"}
    event = api_event("GET", target, headers, b"", route, params)
    result: dict[str, Any] = api.functions.invoke(route.function, event)
    return result


def test_pages_of_large_runs_stay_under_lambdas_6_mb_response_limit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """37 runs with large inputs passed 6 MB in one response before pages existed. Inputs
    full of quotes and backslashes cost twice once the body is escaped into the result."""
    owner = new_user()
    deployment_id = api.deploy(owner, api.create_flow(owner))
    flow_id = int(api.call("GET", f"/deployment/{deployment_id}", user=owner).body["entrypoint"])
    inputs = {"big": {"S": '"\\' * 60_000}}  # 120,000 characters; 480 KB as the result holds it
    run_ids = []
    for _ in range(20):
        run_id, moment = new_id(), timestamp()
        run_store.insert(
            FlowRunItem(
                id=run_id,
                deployment_id=deployment_id,
                flow_id=flow_id,
                user_id=owner,
                caller={"kind": "user", "user_id": owner, "pubkey": None, "via": "jwt"},
                status="succeeded",
                inputs=inputs,
                created_at=moment,
                updated_at=moment,
            )
        )
        run_ids.append(run_id)
    target = f"/deployment/{deployment_id}/flow_runs"
    seen: list[str] = []
    pages = 0
    while True:
        result = _raw_result(api, target, owner)
        assert result["statusCode"] == 200
        assert len(json.dumps(result)) < paging.RESPONSE_BUDGET_BYTES + 10_000
        assert len(json.dumps(result)) < LAMBDA_RESPONSE_LIMIT
        body = json.loads(result["body"])
        seen += [run["id"] for run in body["flow_runs"]]
        pages += 1
        if body["next"] is None:
            break
        target = f"/deployment/{deployment_id}/flow_runs?after={body['next']}"
    assert seen == sorted(run_ids, reverse=True)
    assert pages > 1


def test_a_page_is_cut_at_the_budget_and_always_holds_one_row() -> None:
    rows = [{"n": n, "text": "x" * 100} for n in range(10)]
    page = paging.PageRequest(limit=10, after=None)
    size = paging.encoded_size(rows[0])
    taken, following = paging.fill(iter(rows), page, dict, lambda r: r["n"], budget=3 * size)
    assert [r["n"] for r in taken] == [0, 1, 2]
    assert following == 2
    one, following = paging.fill(iter(rows), page, dict, lambda r: r["n"], budget=1)
    assert ([r["n"] for r in one], following) == ([0], 0)


def test_the_encoded_size_counts_the_escaping_of_the_body_string() -> None:
    document = {"s": '"\\'}
    body = json.dumps(document, separators=(",", ":"))
    assert paging.encoded_size(document) == len(json.dumps(body)) - 2 + 1


@pytest.fixture
def api(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Api:
    roomy = dataclasses.replace(flowdeploy.settings.settings(), max_live_runs_per_user=100)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: roomy)
    return Api()
