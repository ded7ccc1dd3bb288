"""Starting deployments, reading runs, RunFunction and API keys, through the handlers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.stub import Stubber

from flowdeploy.store import queue
from flowdeploy.store import runs as run_store
from tests.conftest import new_user
from tests.unit.api import Api, count_items, queued_messages, sqs_event

WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
DOCS_BODY = {
    "inputs": {"sender": {"S": WALLET}, "amount": {"D": "3.14"}},
    "action_signer": WALLET,
}
TOKEN = re.compile(r"^fr-[A-Za-z0-9_-]{64}$")


def test_start_answers_a_run_id_and_a_run_token(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, _, deployment_id = deployed
    reply = api.call(
        "POST", f"/deployment/start?id={deployment_id}", user=owner, json_body=DOCS_BODY
    )
    assert reply.status == 200
    assert list(reply.body) == ["flow_run_id", "token"]
    assert TOKEN.match(reply.body["token"])


def test_start_queues_one_run_of_the_deployment(
    api: Api, aws: dict[str, Any], deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, deployment_id = deployed
    reply = api.call(
        "POST", f"/deployment/start?id={deployment_id}", user=owner, json_body=DOCS_BODY
    )
    run = run_store.get(reply.body["flow_run_id"])
    assert run is not None
    assert (run.deployment_id, run.flow_id, run.status) == (deployment_id, flow_id, "queued")
    assert run.inputs == DOCS_BODY["inputs"]
    assert run.action_signer == WALLET
    assert queued_messages(aws["FlowRunQueue"]) == 1


def test_the_body_is_optional(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, flow_id, _ = deployed
    assert api.call("POST", f"/deployment/start?flow={flow_id}", user=owner).status == 200


def test_output_instructions_can_be_switched_on_for_one_run(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, _ = deployed
    reply = api.call(
        "POST",
        f"/deployment/start?flow={flow_id}",
        user=owner,
        json_body={"output_instructions": True},
    )
    run = run_store.get(reply.body["flow_run_id"])
    assert run is not None
    assert run.output_instructions is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": ', "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (json.dumps({"input": {}}).encode(), "unknown field: input"),
        (json.dumps({"action_signer": "not-a-key"}).encode(), "action_signer must be a base58"),
        (json.dumps({"action_signer": WALLET[:-2]}).encode(), "action_signer must be a base58"),
        (json.dumps({"inputs": {"amount": 3.14}}).encode(), "inputs.amount"),
        (
            json.dumps({"inputs": {"n": {"U": "18446744073709551616"}}}).encode(),
            "inputs.n: U value",
        ),
        (json.dumps({"inputs": {"k": {"B3": "abc"}}}).encode(), "inputs.k"),
        (json.dumps({"inputs": []}).encode(), "inputs"),
        (json.dumps({"output_instructions": "yes"}).encode(), "output_instructions"),
    ],
)
def test_a_bad_start_body_is_a_400_and_starts_nothing(
    api: Api, aws: dict[str, Any], deployed: tuple[str, int, str], body: bytes, message: str
) -> None:
    owner, _, deployment_id = deployed
    reply = api.call(
        "POST",
        f"/deployment/start?id={deployment_id}",
        user=owner,
        headers={"content-type": "application/json"},
        raw_body=body,
    )
    assert reply.status == 400
    assert message in reply.body["error"]
    assert count_items("FlowRunsTable") == 0
    assert queued_messages(aws["FlowRunQueue"]) == 0


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("id=0194e5ac-9103-7c52-971e-f71f83c5de2e", 404),
        ("flow=999", 404),
        ("flow={flow}&tag=nope", 404),
        ("", 400),
        ("id=zzz", 400),
        ("flow=abc", 400),
    ],
)
def test_an_unknown_or_malformed_target_starts_nothing(
    api: Api, aws: dict[str, Any], deployed: tuple[str, int, str], query: str, status: int
) -> None:
    owner, flow_id, _ = deployed
    reply = api.call("POST", f"/deployment/start?{query.format(flow=flow_id)}", user=owner)
    assert reply.status == status
    assert set(reply.body) == {"error"}
    assert count_items("FlowRunsTable") == 0
    assert queued_messages(aws["FlowRunQueue"]) == 0


def test_start_without_any_credential_is_401(api: Api, deployed: tuple[str, int, str]) -> None:
    _, flow_id, _ = deployed
    reply = api.call("POST", f"/deployment/start?flow={flow_id}")
    assert reply.status == 401
    assert reply.body["error"].startswith("unauthenticated")


def test_a_failed_queue_send_leaves_no_queued_run_and_says_retry(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, _ = deployed
    with Stubber(queue._sqs()) as stub:
        stub.add_client_error("send_message", "ServiceUnavailable", http_status_code=503)
        reply = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner)
    assert reply.status == 503
    assert "retry" in reply.body["error"]
    assert count_items("FlowRunsTable") == 0


def _scan(table: str) -> list[dict[str, Any]]:
    import boto3

    return list(boto3.client("dynamodb").scan(TableName=table)["Items"])


# -- Reading runs ------------------------------------------------------------


def start(api: Api, user: str, deployment_id: str) -> dict[str, str]:
    reply = api.call("POST", f"/deployment/start?id={deployment_id}", user=user)
    assert reply.status == 200
    return dict(reply.body)


def test_the_owner_reads_a_run_of_their_deployment(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, deployment_id = deployed
    started = start(api, owner, deployment_id)
    run = api.call("GET", f"/flow_run/{started['flow_run_id']}", user=owner).body
    assert run["id"] == started["flow_run_id"]
    assert (run["deployment_id"], run["flow_id"], run["status"]) == (
        deployment_id,
        flow_id,
        "queued",
    )
    assert {"inputs", "outputs", "error", "created_at", "updated_at"} <= set(run)


def test_the_run_token_reads_its_run_and_nothing_else(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    first, second = start(api, owner, deployment_id), start(api, owner, deployment_id)
    bearer = {"authorization": f"Bearer {first['token']}"}
    assert api.call("GET", f"/flow_run/{first['flow_run_id']}", headers=bearer).status == 200
    assert api.call("GET", f"/flow_run/{second['flow_run_id']}", headers=bearer).status == 404
    assert api.call("GET", f"/deployment/{deployment_id}", headers=bearer).status == 401


def test_other_users_and_wallets_cannot_read_a_run(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    run_id = start(api, owner, deployment_id)["flow_run_id"]
    assert api.call("GET", f"/flow_run/{run_id}", user=new_user()).status == 404
    wallet = {"authorization": f"Bearer {WALLET}"}
    assert api.call("GET", f"/flow_run/{run_id}", headers=wallet).status == 404
    assert api.call("GET", f"/flow_run/{run_id}").status == 401
    forged = {"authorization": "Bearer fr-" + "A" * 64}
    assert api.call("GET", f"/flow_run/{run_id}", headers=forged).status == 401


def test_runs_of_a_deployment_are_listed_newest_first(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    ids = [start(api, owner, deployment_id)["flow_run_id"] for _ in range(3)]
    listed = api.call("GET", f"/deployment/{deployment_id}/flow_runs", user=owner).body["flow_runs"]
    assert [r["id"] for r in listed] == ids[::-1]


# -- RunFunction ---------------------------------------------------------------


def test_run_function_claims_a_run_once_however_often_it_is_delivered(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    run_id = start(api, owner, deployment_id)["flow_run_id"]
    message = queue.message_body(run_id)
    assert api.functions.invoke("RunFunction", sqs_event(message)) == {"batchItemFailures": []}
    finished = run_store.get(run_id)
    assert finished is not None
    assert (finished.status, finished.error) == ("succeeded", None)
    assert finished.started_at and finished.finished_at

    assert api.functions.invoke("RunFunction", sqs_event(message, message)) == {
        "batchItemFailures": []
    }
    again = run_store.get(run_id)
    assert again is not None
    assert again.finished_at == finished.finished_at, "a redelivery changes nothing"


def test_run_function_reports_a_malformed_message_as_a_batch_failure(api: Api) -> None:
    result = api.functions.invoke("RunFunction", sqs_event("not json", '{"flow_run_id": 1}'))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


# -- API keys ----------------------------------------------------------------


def test_an_api_key_is_shown_once_and_works_until_deleted(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, _ = deployed
    created = api.call("POST", "/apikey", user=owner, json_body={"name": "ci"})
    assert created.status == 201
    assert set(created.body) == {"key", "id", "name", "trimmed_key", "created_at"}
    key = created.body["key"]

    listed = api.call("GET", "/apikey", user=owner).body["api_keys"]
    assert [k["id"] for k in listed] == [created.body["id"]]
    assert key not in json.dumps(listed)

    with_key = {"x-api-key": key}
    assert api.call("POST", f"/deployment/start?flow={flow_id}", headers=with_key).status == 200
    assert api.call("DELETE", f"/apikey/{created.body['id']}", user=owner).status == 204
    reply = api.call("POST", f"/deployment/start?flow={flow_id}", headers=with_key)
    assert (reply.status, reply.body) == (401, {"error": "invalid API key"})


def test_api_keys_are_stored_only_as_hashes(api: Api) -> None:
    owner = new_user()
    key = api.call("POST", "/apikey", user=owner, json_body={"name": "x"}).body["key"]
    assert key not in json.dumps(_scan("ApiKeysTable"))


def test_another_users_api_key_cannot_be_deleted(api: Api) -> None:
    owner = new_user()
    key_id = api.call("POST", "/apikey", user=owner, json_body={"name": "x"}).body["id"]
    assert api.call("DELETE", f"/apikey/{key_id}", user=new_user()).status == 404
    assert len(api.call("GET", "/apikey", user=owner).body["api_keys"]) == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"content-type": "application/json"}, b'{"inputs": "\xff"}', 400, "not UTF-8"),
        ({"content-type": "application/octet-stream"}, b"\xff\xfe", 415, "application/json"),
        ({"content-type": "application/json"}, b"[" * 100_000, 400, "nested too deeply"),
        ({"content-type": "application/json"}, b'{"a":' * 200 + b"1" + b"}" * 200, 400, "deeper"),
        (
            {"content-type": "application/json"},
            json.dumps({"inputs": {"big": {"S": "x" * 600_000}}}).encode(),
            413,
            "inputs are",
        ),
        ({"content-type": "application/json"}, b" " * 1_100_000, 413, "larger than"),
        # Python's json reads these, DynamoDB refuses some later (a 500): refused at the door.
        ({"content-type": "application/json"}, b'{"inputs": {"f": {"F": NaN}}}', 400, "NaN"),
        ({"content-type": "application/json"}, b'{"inputs": {"f": {"F": Infinity}}}', 400, "Inf"),
        ({"content-type": "application/json"}, b'{"inputs": {"f": {"F": -Infinity}}}', 400, "-Inf"),
        ({"content-type": "application/json"}, b'{"inputs": {"f": {"F": 1e999}}}', 400, "1e999"),
        (
            {"content-type": "application/json"},
            b'{"inputs": {"s": {"S": "\\ud800"}}}',
            400,
            "surrogate",
        ),
        (
            {"content-type": "application/json"},
            b'{"inputs": {"\\udfff": {"S": "x"}}}',
            400,
            "surrogate",
        ),
        (
            {"content-type": "application/json"},
            b'{"inputs": {"u": {"U": ' + b"9" * 5000 + b"}}}",
            400,
            "digits",
        ),
    ],
    ids=[
        "not-utf8",
        "binary",
        "deep-array",
        "deep-object",
        "huge-inputs",
        "huge-body",
        "nan",
        "infinity",
        "minus-infinity",
        "overflowing-number",
        "lone-surrogate",
        "lone-surrogate-key",
        "huge-integer",
    ],
)
def test_hostile_start_bodies_get_a_4xx_and_start_nothing(
    api: Api,
    aws: dict[str, Any],
    deployed: tuple[str, int, str],
    headers: dict[str, str],
    body: bytes,
    status: int,
    message: str,
) -> None:
    owner, flow_id, _ = deployed
    reply = api.call(
        "POST", f"/deployment/start?flow={flow_id}", user=owner, headers=headers, raw_body=body
    )
    assert reply.status == status, reply.body
    assert message in reply.body["error"]
    assert count_items("FlowRunsTable") == 0
    assert queued_messages(aws["FlowRunQueue"]) == 0


@pytest.mark.parametrize("tag", ["x" * 65, "a/b", "..%2f", "spaces here"])
def test_a_tag_that_cannot_exist_is_a_400(
    api: Api, deployed: tuple[str, int, str], tag: str
) -> None:
    owner, flow_id, _ = deployed
    reply = api.call("POST", f"/deployment/start?flow={flow_id}&tag={tag}", user=owner)
    assert reply.status == 400
    assert "tag must be" in reply.body["error"]


def test_a_run_that_fails_unexpectedly_is_released_for_the_next_delivery(
    api: Api, deployed: tuple[str, int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flowdeploy.runner as domain

    owner, _, deployment_id = deployed
    run_id = start(api, owner, deployment_id)["flow_run_id"]

    def throttled(_: Any) -> str:
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(domain, "_load", throttled)
    event = sqs_event(queue.message_body(run_id))
    assert api.functions.invoke("RunFunction", event) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]
    }
    released = run_store.get(run_id)
    assert released is not None
    assert (released.status, released.started_at) == ("queued", None)

    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
    assert api.functions.invoke("RunFunction", event) == {"batchItemFailures": []}
    failed = run_store.get(run_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == "the run could not be loaded: ProvisionedThroughputExceededException"
