"""Upstream's routes for the Space Operator clients, through the real handlers: a run's output
and stop, wallet sign-in and claim_token, and POST /wallets/upsert (adapter wallets too)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter
from solders.keypair import Keypair

from flowdeploy import base58, sign_in
from flowdeploy.errors import Unauthorized
from flowdeploy.http import openapi
from flowdeploy.store import queue
from flowdeploy.store import runs as run_store
from tests.conftest import new_user
from tests.unit.api import Api, sqs_event
from tests.unit.engine.flows import edge, node


def validate(model: Any, body: Any) -> None:
    TypeAdapter(model).validate_python(body)


def run_of(api: Api, owner: str, nodes: list[Any], edges: list[Any], **body: Any) -> dict[str, str]:
    """Deploy a flow of `nodes`, start it as its owner and execute it: the start reply."""
    deployment_id = api.deploy(owner, api.create_flow(owner, nodes=nodes, edges=edges))
    started = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner, json_body=body)
    assert started.status == 200, started.body
    result = api.functions.invoke(
        "RunFunction", sqs_event(queue.message_body(started.body["flow_run_id"]))
    )
    assert result == {"batchItemFailures": []}
    return dict(started.body)


ADD = (
    [
        node("a", "flow_input", label="a"),
        node("b", "flow_input", label="b"),
        node("add", "add"),
        node("c", "flow_output", label="c"),
    ],
    [edge("a", "add", into="a"), edge("b", "add", into="b"), edge("add", "c", out="result")],
)


# -- GET /flow/output/{run} ----------------------------------------------------------


def test_the_output_of_a_finished_run_is_one_ivalue_map(api: Api) -> None:
    owner = new_user()
    started = run_of(api, owner, *ADD, inputs={"a": {"U": "2"}, "b": {"U": "3"}})
    path = f"/flow/output/{started['flow_run_id']}"
    for headers in ({"authorization": f"Bearer {started['token']}"}, None):
        reply = api.call("GET", path, headers=headers, user=None if headers else owner)
        assert reply.status == 200, reply.body
        assert reply.headers["content-type"] == "application/json"
        assert reply.body == {"M": {"c": {"D": "5"}}}
        validate(openapi.IValueOutput, reply.body)


def test_the_output_of_a_failed_run_is_a_422_with_its_error(api: Api) -> None:
    owner = new_user()
    nodes = [node("bad", "div", a=1, b=0), node("out", "flow_output", label="q")]
    started = run_of(api, owner, nodes, [edge("bad", "out", out="result")])
    reply = api.call("GET", f"/flow/output/{started['flow_run_id']}", user=owner)
    assert reply.status == 422
    assert reply.body["error"].startswith(f"flow run {started['flow_run_id']} failed: ")
    assert "division by zero" in reply.body["error"] or "divide" in reply.body["error"]


def test_the_output_of_another_users_run_or_a_bad_id_is_a_404(api: Api) -> None:
    owner = new_user()
    started = run_of(api, owner, *ADD, inputs={"a": {"U": "1"}, "b": {"U": "1"}})
    for path, user in (
        (f"/flow/output/{started['flow_run_id']}", new_user()),
        ("/flow/output/not-a-run", owner),
        ("/flow/output/0194e5ac-9103-7c52-971e-f71f83c5de2e", owner),
    ):
        reply = api.call("GET", path, user=user)
        assert reply.status == 404, (path, reply.body)


# -- POST /flow/stop/{run} -------------------------------------------------------------


def test_stopping_records_the_reason_and_answers_success(api: Api) -> None:
    owner = new_user()
    deployment_id = api.deploy(owner, api.create_flow(owner))
    started = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body
    bearer = {"authorization": f"Bearer {started['token']}"}
    stop = api.call(
        "POST",
        f"/flow/stop/{started['flow_run_id']}",
        headers=bearer,
        json_body={"timeout_millies": 5000, "reason": "changed my mind"},
    )
    assert (stop.status, stop.body) == (200, {"success": True})
    run = run_store.get(started["flow_run_id"])
    assert run is not None and run.status == "stopped"
    assert run.error == run.stop_requested == "stopped by the run token's holder: changed my mind"
    again = api.call("POST", f"/flow/stop/{started['flow_run_id']}", user=owner)
    assert again.status == 409


def test_a_stop_without_a_body_as_v0_12_sends_it_and_a_bad_body(api: Api) -> None:
    owner = new_user()
    deployment_id = api.deploy(owner, api.create_flow(owner))
    started = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body
    path = f"/flow/stop/{started['flow_run_id']}"
    for body, error in (
        ({"reason": 5}, "reason: Input should be a valid string"),
        ({"timeout_millies": -1}, "timeout_millies: Input should be greater than or equal to 0"),
        ({"why": "x"}, "unknown field: why"),
        ({"reason": "x" * 1001}, "reason: String should have at most 1000 characters"),
    ):
        reply = api.call("POST", path, user=owner, json_body=body)
        assert (reply.status, reply.body) == (400, {"error": error})
    assert api.call("POST", path, user=new_user()).status == 404
    assert api.call("POST", path, user=owner).body == {"success": True}
    assert run_store.get(started["flow_run_id"]).error == "stopped by its owner"  # type: ignore[union-attr]


# -- Wallet sign-in --------------------------------------------------------------------


def sign_in_as(api: Api, wallet: Keypair) -> dict[str, Any]:
    init = api.call("POST", "/auth/init", json_body={"pubkey": str(wallet.pubkey())})
    assert init.status == 200, init.body
    validate(openapi.AuthMessage, init.body)
    message = init.body["msg"]
    signature = base58.encode(bytes(wallet.sign_message(message.encode())))
    confirm = api.call("POST", "/auth/confirm", json_body={"token": f"{message}.{signature}"})
    assert confirm.status == 200, confirm.body
    validate(openapi.ConfirmedAuth, confirm.body)
    return dict(confirm.body)


def test_a_wallet_signs_in_as_the_same_user_every_time_and_its_token_works(api: Api) -> None:
    wallet = Keypair()
    first, second = sign_in_as(api, wallet), sign_in_as(api, wallet)
    assert (first["new_user"], second["new_user"]) == (True, False)
    user = first["session"]["user"]
    assert user["id"] == second["session"]["user"]["id"] == sign_in.user_id_of(str(wallet.pubkey()))
    assert user["user_metadata"] == {"pubkey": str(wallet.pubkey())}
    assert second["session"]["user"]["created_at"] == user["created_at"]
    assert first["session"]["token_type"] == "bearer"
    token = second["session"]["access_token"]
    reply = api.call("GET", "/apikey", headers={"authorization": f"Bearer {token}"})
    assert (reply.status, reply.body) == (200, {"api_keys": [], "next": None})
    assert sign_in_as(api, Keypair())["session"]["user"]["id"] != user["id"]


def test_the_sign_in_message_names_the_site_the_wallet_a_nonce_and_its_expiry(api: Api) -> None:
    wallet = str(Keypair().pubkey())
    message = api.call("POST", "/auth/init", json_body={"pubkey": wallet}).body["msg"]
    lines = message.split("\n")
    assert lines[:4] == [
        "space-operator authentication",
        "",
        "localhost wants you to sign in with your Solana account:",
        wallet,
    ]
    assert [line.split(": ")[0] for line in lines[5:]] == [
        "Nonce",
        "Issued At",
        "Expiration Time",
    ]


def confirm(api: Api, token: str) -> Any:
    return api.call("POST", "/auth/confirm", json_body={"token": token})


def test_a_replayed_or_forged_sign_in_is_a_401(api: Api) -> None:
    wallet, other = Keypair(), Keypair()
    message = api.call("POST", "/auth/init", json_body={"pubkey": str(wallet.pubkey())}).body["msg"]
    good = f"{message}.{base58.encode(bytes(wallet.sign_message(message.encode())))}"
    wrong = f"{message}.{base58.encode(bytes(other.sign_message(message.encode())))}"
    assert confirm(api, wrong).status == 401
    assert confirm(api, good).status == 200
    replay = confirm(api, good)
    assert (replay.status, replay.body) == (
        401,
        {"error": "sign-in failed: this message was already used"},
    )
    # Another wallet's key put in the message: its MAC no longer matches.
    forged = message.replace(str(wallet.pubkey()), str(other.pubkey()))
    signed = f"{forged}.{base58.encode(bytes(other.sign_message(forged.encode())))}"
    assert confirm(api, signed).status == 401
    for token in ("nonsense", f"{message}.", "x" * 2048):
        assert confirm(api, token).status == 401, token


def test_an_expired_sign_in_message_is_refused() -> None:
    wallet = Keypair()
    message = sign_in.init(str(wallet.pubkey()), "localhost", now=1_000_000)
    token = f"{message}.{base58.encode(bytes(wallet.sign_message(message.encode())))}"
    with pytest.raises(Unauthorized, match="the message expired"):
        sign_in.confirm(token, now=1_000_000 + sign_in.NONCE_SECONDS)


def test_bad_sign_in_requests_are_400(api: Api) -> None:
    for body, error in (
        ({"pubkey": "not a key"}, "pubkey: String should have at least 32 characters"),
        ({"pubkey": "0" * 44}, "pubkey: must be a base58 public key (32 bytes)"),
        ({"pubkey": str(Keypair().pubkey()), "x": 1}, "unknown field: x"),
        ({}, "pubkey: Field required"),
    ):
        reply = api.call("POST", "/auth/init", json_body=body)
        assert (reply.status, reply.body) == (400, {"error": error})


def test_claim_token_gives_an_api_keys_user_a_token_and_nothing_else_does(api: Api) -> None:
    owner = new_user()
    key = api.call("POST", "/apikey", user=owner, json_body={"name": "k"}).body["key"]
    reply = api.call("POST", "/auth/claim_token", headers={"x-api-key": key})
    assert reply.status == 200, reply.body
    validate(openapi.ClaimedToken, reply.body)
    assert reply.body["user_id"] == owner
    bearer = {"authorization": f"Bearer {reply.body['access_token']}"}
    assert api.call("GET", "/apikey", headers=bearer).status == 200
    for headers in (bearer, {"authorization": f"Bearer {Keypair().pubkey()}"}, {}):
        refused = api.call("POST", "/auth/claim_token", headers=headers)
        assert refused.status == 401, refused.body


# -- POST /wallets/upsert ---------------------------------------------------------------


def upsert(api: Api, user: str, body: Any) -> Any:
    return api.call("POST", "/wallets/upsert", user=user, json_body=body)


def test_an_adapter_wallet_is_a_public_key_the_server_holds_no_secret_of(api: Api) -> None:
    owner, key = new_user(), Keypair().pubkey()
    reply = upsert(api, owner, {"type": "ADAPTER", "name": "phantom", "public_key": str(key)})
    assert reply.status == 201, reply.body
    validate(list[openapi.WalletRow], reply.body)
    (row,) = reply.body
    assert (row["type"], row["public_key"], row["user_id"], row["name"]) == (
        "ADAPTER",
        str(key),
        owner,
        "phantom",
    )
    listed = api.call("GET", "/wallet", user=owner).body["wallets"]
    assert [(w["id"], w["pubkey"]) for w in listed] == [(row["id"], str(key))]


def test_upserting_again_updates_and_a_keypair_makes_it_hardcoded(api: Api) -> None:
    owner, keypair = new_user(), Keypair()
    first = upsert(api, owner, {"public_key": str(keypair.pubkey()), "adapter": "phantom"})
    renamed = upsert(api, owner, {"public_key": str(keypair.pubkey()), "name": "main"})
    held = upsert(
        api,
        owner,
        {
            "type": "HARDCODED",
            "public_key": str(keypair.pubkey()),
            "keypair": base58.encode(bytes(keypair)),
            "user_id": owner,
        },
    )
    assert first.status == renamed.status == held.status == 201
    ids = {first.body[0]["id"], renamed.body[0]["id"], held.body[0]["id"]}
    assert len(ids) == 1
    assert (renamed.body[0]["name"], renamed.body[0]["adapter"]) == ("main", "phantom")
    assert held.body[0]["type"] == "HARDCODED"
    assert "keypair" not in held.body[0]
    assert len(api.call("GET", "/wallet", user=owner).body["wallets"]) == 1


def test_bad_upserts_are_refused_precisely(api: Api) -> None:
    key = str(Keypair().pubkey())
    for body, status, error in (
        ({}, 400, "send public_key (an adapter wallet) or keypair (a wallet we hold)"),
        ({"public_key": "x" * 44}, 400, "public_key: must be a base58 public key (32 bytes)"),
        ({"public_key": key, "type": "HARDCODED"}, 400, "keypair: a HARDCODED wallet needs"),
        ({"public_key": key, "user_id": new_user()}, 403, "user_id must be your own user id"),
        ({"public_key": key, "id": "7"}, 404, "wallet not found: 7"),
        ({"public_key": key, "encrypted_keypair": "x"}, 400, "unknown field: encrypted_keypair"),
        (
            {"public_key": key, "keypair": base58.encode(bytes(Keypair()))},
            400,
            "public_key is not the public key of keypair",
        ),
        ({"keypair": "notbase58!"}, 400, "keypair: not base58"),
    ):
        owner = new_user()
        reply = upsert(api, owner, body)
        assert reply.status == status, (body, reply.body)
        assert error in reply.body["error"], (body, reply.body)
        assert api.call("GET", "/wallet", user=owner).body["wallets"] == []


def test_upsert_needs_a_user(api: Api) -> None:
    body = {"public_key": str(Keypair().pubkey())}
    for headers in ({}, {"authorization": f"Bearer {Keypair().pubkey()}"}):
        reply = api.call("POST", "/wallets/upsert", headers=headers, json_body=body)
        assert reply.status == 401


def test_an_adapter_wallet_cannot_be_the_action_identity(api: Api) -> None:
    """The identity memo is signed by the server: it needs the secret key."""
    owner, key = new_user(), str(Keypair().pubkey())
    assert upsert(api, owner, {"public_key": key}).status == 201
    deployment_id = api.deploy(owner, api.create_flow(owner))
    reply = api.call(
        "PATCH", f"/deployment/{deployment_id}", user=owner, json_body={"action_identity": key}
    )
    assert reply.status == 400
    assert "you hold only an adapter wallet (no secret key)" in reply.body["error"]
