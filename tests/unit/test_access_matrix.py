"""Every owner-only route of template.yaml, called with the real ids of another user's
flow, deployment, tag, run and API key: 404, as if nothing existed; bad credentials on
every route that takes one: 401; a run token only opens its own run.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from flowdeploy.local.template import Template
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import runs as run_store
from tests.conftest import JWT_SECRET, ROOT, new_user, token_for
from tests.unit.api import Api
from tests.unit.test_template import NO_CREDENTIALS

# Every route that reads credentials (the routes that take none ignore them: a signature
# proves itself, a sign-in is how a wallet gets credentials, an api_input URL is its own
# credential and the command catalogue is public).
ROUTES = [
    r
    for r in Template(ROOT / "template.yaml").routes()
    if r.method != "ANY"
    and r.function not in {"DocsFunction", "ActionsFunction"}
    and r.route_key not in NO_CREDENTIALS
]
# Routes about the caller's own things, or naming a deployment in the query: not one
# named in the path (reads of another user's deployment: tests/unit/test_reads.py).
OWN = {
    ("POST", "/data/export"),
    ("POST", "/data/import"),
    ("POST", "/flow"),
    ("GET", "/flow"),
    ("POST", "/apikey"),
    ("GET", "/apikey"),
    ("POST", "/wallet"),
    ("GET", "/wallet"),
    ("POST", "/wallets/upsert"),
    ("POST", "/auth/claim_token"),
    ("POST", "/deployment/start"),
    ("GET", "/deployment/read"),
    ("POST", "/deployment/read"),
}
OWNER_ONLY = [r for r in ROUTES if (r.method, r.path) not in OWN]
WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/flow/{flow_id}"): {"name": "mine now"},
    ("PATCH", "/deployment/{deployment_id}"): {"start_permission": "Anonymous"},
}


@pytest.fixture
def victim(api: Api) -> dict[str, str]:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    tag_body = {"deployment_id": deployment_id}
    assert api.call("PUT", f"/flow/{flow_id}/tags/v1", user=owner, json_body=tag_body).status == 200
    run = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body
    key = api.call("POST", "/apikey", user=owner, json_body={"name": "k"}).body
    wallet = api.call("POST", "/wallet", user=owner, json_body={"name": "w"}).body
    return {
        "owner": owner,
        "flow_id": str(flow_id),
        "deployment_id": deployment_id,
        "tag": "v1",
        "run_id": run["flow_run_id"],
        "token": run["token"],
        "key_id": key["id"],
        "wallet_id": wallet["id"],
    }


def fill(path: str, ids: dict[str, str]) -> str:
    for name in ("flow_id", "deployment_id", "tag", "run_id", "key_id", "wallet_id"):
        path = path.replace("{" + name + "}", ids[name])
    return path


@pytest.mark.parametrize("route", OWNER_ONLY, ids=lambda r: r.route_key)
def test_another_users_ids_on_every_owner_only_route_are_404_and_change_nothing(
    api: Api, victim: dict[str, str], route: Any
) -> None:
    stranger = new_user()
    api.create_flow(stranger)  # a user with things of their own
    path = fill(route.path, victim)
    body = BODIES.get((route.method, route.path))
    if (route.method, route.path) == ("PUT", "/flow/{flow_id}/tags/{tag}"):
        body = {"deployment_id": victim["deployment_id"]}
    reply = api.call(route.method, path, user=stranger, json_body=body)
    assert reply.status == 404, (route.route_key, reply.body)
    assert set(reply.body) == {"error"}
    # Nothing of the owner's changed.
    assert deployment_store.get(victim["deployment_id"]) is not None
    tag = deployment_store.get_tag(int(victim["flow_id"]), "v1")
    assert tag is not None and tag.deployment_id == victim["deployment_id"]
    run = run_store.get(victim["run_id"])
    assert run is not None and run.status == "queued" and run.stop_requested is None
    assert api.call("GET", f"/flow/{victim['flow_id']}", user=victim["owner"]).status == 200
    wallets = api.call("GET", "/wallet", user=victim["owner"]).body["wallets"]
    assert [wallet["id"] for wallet in wallets] == [victim["wallet_id"]]


def bad_credentials(owner: str) -> dict[str, dict[str, str]]:
    now = int(time.time())
    claims = {"sub": owner, "aud": "authenticated", "exp": now + 60}
    return {
        "expired": {"authorization": "Bearer " + token_for(owner, lifetime=-10)},
        "forged": {"authorization": "Bearer " + jwt.encode(claims, "x" * 40)},
        "wrong audience": {
            "authorization": "Bearer " + jwt.encode({**claims, "aud": "anon"}, JWT_SECRET)
        },
        "alg none": {"authorization": "Bearer " + jwt.encode(claims, None, algorithm="none")},
        "unknown api key": {"x-api-key": "b3-" + "A" * 43},
    }


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_bad_credentials_on_every_route_are_401(
    api: Api, victim: dict[str, str], route: Any
) -> None:
    for case, headers in bad_credentials(victim["owner"]).items():
        reply = api.call(route.method, fill(route.path, victim), headers=headers)
        assert reply.status == 401, (route.route_key, case, reply.body)


def test_a_revoked_api_key_opens_nothing(api: Api, victim: dict[str, str]) -> None:
    key = api.call("POST", "/apikey", user=victim["owner"], json_body={"name": "x"}).body
    api.call("DELETE", f"/apikey/{key['id']}", user=victim["owner"])
    for route in ROUTES:
        reply = api.call(route.method, fill(route.path, victim), headers={"x-api-key": key["key"]})
        assert reply.status == 401, route.route_key


def test_a_run_token_opens_its_own_run_only(api: Api, victim: dict[str, str]) -> None:
    other = api.call(
        "POST", f"/deployment/start?id={victim['deployment_id']}", user=victim["owner"]
    ).body
    bearer = {"authorization": f"Bearer {other['token']}"}
    for suffix in ("", "/nodes", "/logs"):
        assert (
            api.call("GET", f"/flow_run/{other['flow_run_id']}{suffix}", headers=bearer).status
            == 200
        )
        assert (
            api.call("GET", f"/flow_run/{victim['run_id']}{suffix}", headers=bearer).status == 404
        )
    assert api.call("POST", f"/flow_run/{victim['run_id']}/stop", headers=bearer).status == 404
    for route in OWNER_ONLY:
        if not route.path.startswith("/flow_run/"):
            reply = api.call(route.method, fill(route.path, victim), headers=bearer)
            assert reply.status in {401, 404}, route.route_key


@pytest.mark.parametrize("permission", ["Owner", "Authenticated"])
def test_a_public_key_bearer_cannot_start_owner_or_authenticated_deployments(
    api: Api, victim: dict[str, str], permission: str
) -> None:
    deployment = f"/deployment/{victim['deployment_id']}"
    patch = {"start_permission": permission}
    assert api.call("PATCH", deployment, user=victim["owner"], json_body=patch).status == 200
    wallet = {"authorization": f"Bearer {WALLET}"}
    for query in (f"id={victim['deployment_id']}", f"flow={victim['flow_id']}"):
        reply = api.call("POST", f"/deployment/start?{query}", headers=wallet)
        assert reply.status == 404, reply.body
