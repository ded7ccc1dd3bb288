"""`POST /deployment/start` with an `Idempotency-Key`: a retried start starts nothing new."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import new_user
from tests.unit.api import Api, count_items, queued_messages

WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
BODY = {"inputs": {"amount": {"D": "3.14"}}}


def keyed(key: str) -> dict[str, str]:
    return {"idempotency-key": key}


def test_a_repeated_key_returns_the_first_response_and_starts_nothing_new(
    api: Api, aws: dict[str, Any], deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    first = api.call("POST", path, user=owner, headers=keyed("order-42"), json_body=BODY)
    again = api.call("POST", path, user=owner, headers=keyed("order-42"), json_body=BODY)
    assert (first.status, again.status) == (200, 200)
    assert again.body == first.body
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert count_items("FlowRunsTable") == 1
    assert queued_messages(aws["FlowRunQueue"]) == 1


def test_the_replayed_token_reads_the_run(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    api.call("POST", path, user=owner, headers=keyed("k"))
    again = api.call("POST", path, user=owner, headers=keyed("k")).body
    bearer = {"authorization": f"Bearer {again['token']}"}
    assert api.call("GET", f"/flow_run/{again['flow_run_id']}", headers=bearer).status == 200


def test_the_same_key_from_the_same_user_by_api_key_or_token_is_one_start(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    key = api.call("POST", "/apikey", user=owner, json_body={"name": "ci"}).body["key"]
    path = f"/deployment/start?id={deployment_id}"
    first = api.call("POST", path, user=owner, headers=keyed("same"))
    again = api.call("POST", path, headers={"x-api-key": key, **keyed("same")})
    assert again.body == first.body


def test_the_same_key_with_a_different_body_is_a_409(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    api.call("POST", path, user=owner, headers=keyed("k"), json_body=BODY)
    other = {"inputs": {"amount": {"D": "2.71"}}}
    reply = api.call("POST", path, user=owner, headers=keyed("k"), json_body=other)
    assert reply.status == 409
    assert reply.body == {
        "error": "Idempotency-Key 'k' was already used for a different request; use a new key"
    }
    assert count_items("FlowRunsTable") == 1


def test_the_same_key_for_another_target_is_a_409(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, flow_id, deployment_id = deployed
    api.call("POST", f"/deployment/start?id={deployment_id}", user=owner, headers=keyed("k"))
    reply = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner, headers=keyed("k"))
    assert reply.status == 409


def test_an_equal_body_written_differently_is_the_same_request(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    compact = b'{"inputs":{"a":{"S":"x"},"b":{"U":"1"}}}'
    spaced = b'{ "inputs": { "b": {"U": "1"}, "a": {"S": "x"} } }'
    json_type = {"content-type": "application/json"}
    first = api.call(
        "POST", path, user=owner, headers={**json_type, **keyed("k")}, raw_body=compact
    )
    again = api.call("POST", path, user=owner, headers={**json_type, **keyed("k")}, raw_body=spaced)
    assert again.body == first.body


def test_the_same_key_from_different_users_starts_twice(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    first = api.call("POST", path, user=owner, headers=keyed("k"))
    other_user = api.call("POST", path, user=new_user(), headers=keyed("k"))
    assert first.body["flow_run_id"] != other_user.body["flow_run_id"]


def test_a_key_someone_else_used_for_another_request_is_no_409(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    assert api.call("POST", path, user=owner, headers=keyed("k"), json_body=BODY).status == 200
    other = {"inputs": {"amount": {"D": "2.71"}}}
    reply = api.call("POST", path, user=new_user(), headers=keyed("k"), json_body=other)
    assert reply.status == 200, "keys are per caller: nothing says someone else used this one"
    assert "idempotent-replayed" not in reply.headers


def test_a_public_key_caller_cannot_use_a_key_so_no_replay_hands_out_its_token(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    """A bare public key proves nothing: with keys, whoever sent the same `Bearer <pubkey>`
    and key would be handed the first caller's run token."""
    _, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    wallet = {"authorization": f"Bearer {WALLET}", **keyed("k")}
    first = api.call("POST", path, headers=wallet)
    assert first.status == 400
    assert first.body == {
        "error": "Idempotency-Key needs an authenticated caller (an access token or an API "
        "key): a bare public key proves nothing, so a replay would hand the run's token to "
        "anyone sending the same public key and key; start without it"
    }
    assert count_items("FlowRunsTable") == 0
    assert count_items("IdempotencyTable") == 0
    assert api.call("POST", path, headers={"authorization": f"Bearer {WALLET}"}).status == 200


def test_a_refused_start_stores_nothing_and_the_key_can_be_used_again(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    bad = api.call("POST", path, user=owner, headers=keyed("k"), json_body={"inputs": {"a": 1}})
    assert bad.status == 400
    missing = "/deployment/start?id=0194e5ac-9103-7c52-971e-f71f83c5de2e"
    assert api.call("POST", missing, user=owner, headers=keyed("k")).status == 404
    assert count_items("IdempotencyTable") == 0
    assert api.call("POST", path, user=owner, headers=keyed("k")).status == 200


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "tab\there", "é"])
def test_a_malformed_key_is_a_400(api: Api, deployed: tuple[str, int, str], key: str) -> None:
    owner, _, deployment_id = deployed
    reply = api.call(
        "POST", f"/deployment/start?id={deployment_id}", user=owner, headers=keyed(key)
    )
    assert reply.status == 400
    assert reply.body == {"error": "Idempotency-Key must be 1-255 visible ASCII characters"}
    assert count_items("FlowRunsTable") == 0


def test_concurrent_requests_with_one_key_start_one_run(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/start?id={deployment_id}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(
            pool.map(lambda _: api.call("POST", path, user=owner, headers=keyed("race")), range(4))
        )
    assert {r.status for r in replies} <= {200, 409}
    assert len({r.body["flow_run_id"] for r in replies if r.status == 200}) == 1
    for reply in replies:
        if reply.status == 409:
            assert "still in progress" in reply.body["error"]
    assert count_items("FlowRunsTable") == 1


def test_the_record_expires_after_24_hours(api: Api, deployed: tuple[str, int, str]) -> None:
    import time

    import boto3

    owner, _, deployment_id = deployed
    started = api.call(
        "POST", f"/deployment/start?id={deployment_id}", user=owner, headers=keyed("k")
    ).body
    (record,) = boto3.client("dynamodb").scan(TableName="IdempotencyTable")["Items"]
    assert abs(int(record["expiration"]["N"]) - (time.time() + 86400)) < 60
    assert json.loads(record["data"]["S"]) == {"flow_run_id": started["flow_run_id"]}, (
        "only the run id is stored; the token is derived again, never at rest"
    )
