"""AWS calls per request: counted, because in Lambda every round trip is latency and cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from flowdeploy.local.calls import counting
from tests.conftest import new_user
from tests.unit.api import Api


@pytest.fixture
def calls(aws: dict[str, Any]) -> Iterator[Counter[str]]:
    with counting() as counted:
        yield counted


def interflow(node_id: str, flow_id: int) -> dict[str, Any]:
    return {"id": node_id, "data": {"node_id": "interflow", "config": {"flow_id": flow_id}}}


def test_start_by_id_is_one_read_one_write_one_send(calls: Counter[str]) -> None:
    api, user = Api(), new_user()
    deployment_id = api.deploy(user, api.create_flow(user))
    calls.clear()
    assert api.call("POST", f"/deployment/start?id={deployment_id}", user=user).status == 200
    # The deployment; the owner's place among their live runs; the run; its message.
    assert calls == {
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": 1,
        "dynamodb:PutItem": 1,
        "sqs:SendMessage": 1,
    }


def test_start_by_tag_reads_only_the_tag_which_carries_what_start_needs(
    calls: Counter[str],
) -> None:
    api, user = Api(), new_user()
    flow_id = api.create_flow(user)
    api.deploy(user, flow_id)
    calls.clear()
    assert api.call("POST", f"/deployment/start?flow={flow_id}&tag=latest", user=user).status == 200
    assert calls == {
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": 1,
        "dynamodb:PutItem": 1,
        "sqs:SendMessage": 1,
    }


def test_deploy_reads_each_nesting_level_once_and_writes_once(calls: Counter[str]) -> None:
    api, user = Api(), new_user()
    leaf_a, leaf_b = api.create_flow(user), api.create_flow(user)
    middle = api.create_flow(user, nodes=[interflow("a", leaf_a), interflow("b", leaf_b)])
    entry = api.create_flow(user, nodes=[interflow("m", middle)])
    calls.clear()
    api.deploy(user, entry)
    assert calls == {
        "dynamodb:GetItem": 1,  # the entry flow
        "dynamodb:BatchGetItem": 2,  # level 1: middle; level 2: both leaves
        "dynamodb:TransactWriteItems": 1,
    }


def test_a_run_writes_node_records_in_batches_of_25(calls: Counter[str]) -> None:
    from flowdeploy.store import queue
    from tests.unit.api import sqs_event
    from tests.unit.engine.flows import edge, node

    api, user = Api(), new_user()
    nodes = [node("n0", "const", value=0)] + [node(f"n{i}", "add", b=1) for i in range(1, 60)]
    edges = [edge("n0", "n1", into="a")] + [
        edge(f"n{i - 1}", f"n{i}", "result", "a") for i in range(2, 60)
    ]
    deployment_id = api.deploy(user, api.create_flow(user, nodes=nodes, edges=edges))
    reply = api.call("POST", f"/deployment/start?id={deployment_id}", user=user)
    message = queue.message_body(reply.body["flow_run_id"])
    calls.clear()
    assert api.functions.invoke("RunFunction", sqs_event(message)) == {"batchItemFailures": []}
    assert calls == {
        "dynamodb:UpdateItem": 2,  # claim, finish
        "dynamodb:GetItem": 1,  # the deployment
        "dynamodb:Query": 1,  # its snapshot
        "dynamodb:BatchWriteItem": 3,  # 60 node records, 25 per call
    }


def test_a_start_with_an_idempotency_key_adds_one_claim_and_one_completion(
    calls: Counter[str],
) -> None:
    api, user = Api(), new_user()
    deployment_id = api.deploy(user, api.create_flow(user))
    calls.clear()
    path = f"/deployment/start?id={deployment_id}"
    assert api.call("POST", path, user=user, headers={"idempotency-key": "k1"}).status == 200
    assert calls == {
        "dynamodb:GetItem": 1,
        "dynamodb:PutItem": 2,  # the idempotency record (conditional), the run
        "dynamodb:UpdateItem": 2,  # the owner's live-run place; the record completed
        "sqs:SendMessage": 1,
    }
    calls.clear()
    assert api.call("POST", path, user=user, headers={"idempotency-key": "k1"}).status == 200
    assert calls == {"dynamodb:PutItem": 1}, "a replay is one failed conditional put"


def test_a_patch_of_columns_no_tag_copies_is_one_read_and_one_conditional_update(
    calls: Counter[str],
) -> None:
    api, user = Api(), new_user()
    deployment_id = api.deploy(user, api.create_flow(user))
    calls.clear()
    body = {"fees": [], "action_identity": None}
    reply = api.call("PATCH", f"/deployment/{deployment_id}", user=user, json_body=body)
    assert reply.status == 200
    assert calls == {"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}


def test_a_patch_of_start_fields_is_one_read_and_one_transaction_with_its_tags(
    calls: Counter[str],
) -> None:
    api, user = Api(), new_user()
    deployment_id = api.deploy(user, api.create_flow(user))
    calls.clear()
    body = {"start_permission": "Anonymous", "fees": []}
    reply = api.call("PATCH", f"/deployment/{deployment_id}", user=user, json_body=body)
    assert reply.status == 200
    assert calls == {"dynamodb:GetItem": 1, "dynamodb:TransactWriteItems": 1}


def running_run(api: Api, user: str) -> str:
    """A run written as running, as a worker holds it (no worker polls it here)."""
    import time

    from flowdeploy.ids import new_id, timestamp
    from flowdeploy.store import runs
    from flowdeploy.store.models import FlowRunItem

    run = FlowRunItem(
        id=new_id(), flow_id=1, user_id=user, caller={}, inputs={},
        created_at=timestamp(), updated_at=timestamp(),
    )  # fmt: skip
    runs.insert_running(run, time.time() + 60)
    return run.id


def test_submitting_a_signature_is_one_read_and_one_conditional_write(
    calls: Counter[str],
) -> None:
    """POST /signature/submit takes no credentials: it must cost little and never scan."""
    from solders.keypair import Keypair

    from flowdeploy import signature_requests

    api, user, signer = Api(), new_user(), Keypair()
    message = b"\x80 a transaction message"
    run_id = running_run(api, user)
    request_id = int(signature_requests.open_request(run_id, str(signer.pubkey()), message, 30).id)
    body = {"id": request_id, "signature": str(signer.sign_message(message))}
    calls.clear()
    assert api.call("POST", "/signature/submit", json_body=body).status == 200
    assert calls == {"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}
    calls.clear()
    assert api.call("POST", "/signature/submit", json_body=body).status == 409
    assert calls == {"dynamodb:GetItem": 1}


def test_waiting_for_an_output_reads_about_once_a_second(
    calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /flow/output polls the run with a backoff to 1 s: 25 s of waiting cost 29 reads.
    The clock is simulated: sleeping advances it, so the count is exact and the test fast."""
    from flowdeploy import run_output

    now = [1000.0]
    monkeypatch.setattr(run_output, "_clock", lambda: now[0])
    monkeypatch.setattr(run_output, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    api, user = Api(), new_user()
    run_id = running_run(api, user)
    calls.clear()
    reply = api.call("GET", f"/flow/output/{run_id}", user=user)
    assert reply.status == 504, reply.body
    assert reply.body == {
        "error": f"flow run {run_id} is still running after 25 s; request its output again"
    }
    reads = calls["dynamodb:GetItem"]
    # The run as authorised, then after 0.1 0.2 0.4 0.8 s, 23 pauses of 1 s, and the last 0.5 s.
    assert reads == 1 + 4 + 23 + 1
    assert reads / 25 < 1.2
