"""Faults injected below the SDK (after botocore's retries) and the sweeper: callers get a
clean 4xx/5xx with Retry-After, a run executes at most once and always ends final.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest

from flowdeploy.settings import settings
from flowdeploy.store import queue
from flowdeploy.store import runs as run_store
from flowdeploy.sweeper import sweep
from tests.faults import CONDITION_FAILED, THROTTLED, TIMEOUT, Fault, injected, on_table
from tests.unit.api import Api, count_items, queued_messages, sqs_event
from tests.unit.engine.flows import edge, node

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/FlowRunQueue"
# FlowRunQueue's retention + visibility timeout (template.yaml Mappings), 4.5 hours
QUEUED_TIMEOUT = settings().flow_run_queued_timeout_seconds
ONE_NODE = {
    "nodes": [node("c", "const", value={"S": "x"}), node("out", "flow_output", label="out")],
    "edges": [edge("c", "out", "output")],
}


def start(api: Api, owner: str, deployment_id: str) -> str:
    reply = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner)
    assert reply.status == 200, reply.body
    return str(reply.body["flow_run_id"])


def deliver(api: Api, run_id: str, receives: int = 1) -> dict[str, Any]:
    event = sqs_event(queue.message_body(run_id), receives=receives)
    return dict(api.functions.invoke("RunFunction", event))


def status(run_id: str) -> tuple[str, str | None]:
    run = run_store.get(run_id)
    assert run is not None
    return run.status, run.error


def node_records(run_id: str) -> int:
    items = boto3.client("dynamodb").query(
        TableName="RunRecordsTable",
        KeyConditionExpression="flow_run_id = :r AND begins_with(sk, :n)",
        ExpressionAttributeValues={":r": {"S": run_id}, ":n": {"S": "NODE#"}},
    )["Items"]
    return len(items)


def watched() -> set[str]:
    """Ids in SweepIndex (runs not final yet)."""
    client = boto3.client("dynamodb")
    found = set()
    for state in ("queued", "running"):
        items = client.query(
            TableName="FlowRunsTable",
            IndexName="SweepIndex",
            KeyConditionExpression="sweep_status = :s",
            ExpressionAttributeValues={":s": {"S": state}},
        )["Items"]
        found |= {item["id"]["S"] for item in items}
    return found


@pytest.fixture
def one_node(api: Api) -> tuple[str, str]:
    from tests.conftest import new_user

    owner = new_user()
    flow_id = api.create_flow(owner, **ONE_NODE)
    return owner, api.deploy(owner, flow_id)


# -- DynamoDB and SQS failing under the API --------------------------------------


ROUTES_AND_CALLS = [
    ("POST", "/flow", "UpdateItem", "FlowsTable"),
    ("POST", "/flow/deploy/{flow}", "GetItem", "FlowsTable"),
    ("POST", "/flow/deploy/{flow}", "TransactWriteItems", None),
    ("POST", "/deployment/start?id={deployment}", "GetItem", "DeploymentsTable"),
    ("POST", "/deployment/start?flow={flow}", "PutItem", "FlowRunsTable"),
    ("GET", "/deployment/{deployment}", "GetItem", "DeploymentsTable"),
    ("GET", "/flow/{flow}/tags", "Query", "DeploymentsTable"),
    ("GET", "/deployment/{deployment}/flow_runs", "Query", "FlowRunsTable"),
    ("GET", "/apikey", "Query", "ApiKeysTable"),
]
START_WRITE = ROUTES_AND_CALLS[4]


@pytest.mark.parametrize(
    ("method", "path", "operation", "table", "code"),
    [(*route, THROTTLED) for route in ROUTES_AND_CALLS]
    + [(*START_WRITE, code) for code in ("ThrottlingException", "InternalServerError", TIMEOUT)],
)
def test_a_throttled_or_failing_table_is_a_503_with_retry_after(
    api: Api,
    deployed: tuple[str, int, str],
    method: str,
    path: str,
    operation: str,
    table: str | None,
    code: str,
) -> None:
    owner, flow_id, deployment_id = deployed
    target = path.format(flow=flow_id, deployment=deployment_id)
    fault = Fault(operation, code, when=on_table(table) if table else lambda _: True)
    with injected(fault):
        body = {"name": "f"} if target == "/flow" else None
        reply = api.call(method, target, user=owner, json_body=body)
    assert fault.hits, "the fault was never reached"
    assert (reply.status, reply.headers.get("retry-after")) == (503, "2"), reply.body
    assert set(reply.body) == {"error"} and "retry" in reply.body["error"]
    assert count_items("FlowRunsTable") == 0 and queued_messages(QUEUE) == 0


def test_a_failed_send_after_the_run_was_written_removes_it_and_says_retry(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, _ = deployed
    with injected(Fault("SendMessage", "ServiceUnavailable")) as (send,):
        reply = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner)
    assert len(send.hits) == 1
    assert (reply.status, reply.headers.get("retry-after")) == (503, "2")
    assert count_items("FlowRunsTable") == 0 and queued_messages(QUEUE) == 0


def test_a_run_whose_message_and_cleanup_both_failed_is_failed_by_the_sweeper(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, _ = deployed
    faults = (Fault("SendMessage", "ServiceUnavailable"), Fault("DeleteItem", THROTTLED))
    with injected(*faults):
        reply = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner)
    assert reply.status == 503
    (orphan,) = watched()
    assert status(orphan) == ("queued", None)
    assert sweep(now=time.time() + QUEUED_TIMEOUT - 60) == {"running": [], "queued": []}
    assert sweep(now=time.time() + QUEUED_TIMEOUT + 1) == {"running": [], "queued": [orphan]}
    assert status(orphan) == ("failed", run_store.NEVER_PICKED_UP)
    assert watched() == set()


def test_the_scheduled_sweeper_function_fails_a_run_queued_past_the_queues_retention(
    api: Api, deployed: tuple[str, int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import flowdeploy.sweeper
    from flowdeploy.local.event_sources import scheduled_event

    owner, flow_id, _ = deployed
    with injected(Fault("SendMessage", "ServiceUnavailable"), Fault("DeleteItem", THROTTLED)):
        assert api.call("POST", f"/deployment/start?flow={flow_id}", user=owner).status == 503
    (orphan,) = watched()
    later = time.time() + QUEUED_TIMEOUT + 1
    monkeypatch.setattr(flowdeploy.sweeper, "time", SimpleNamespace(time=lambda: later))
    swept = api.functions.invoke("SweeperFunction", scheduled_event("SweeperFunction"))
    assert swept == {"failed": {"running": [], "queued": [orphan]}}
    assert status(orphan) == ("failed", run_store.NEVER_PICKED_UP)


def test_a_send_whose_reply_was_lost_runs_nothing_for_the_refused_start(
    api: Api, one_node: tuple[str, str]
) -> None:
    owner, deployment_id = one_node
    with injected(Fault("SendMessage", TIMEOUT, after=True)):
        reply = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner)
    assert reply.status == 503
    assert count_items("FlowRunsTable") == 0
    (message,) = boto3.client("sqs").receive_message(QueueUrl=QUEUE)["Messages"]
    result = api.functions.invoke("RunFunction", sqs_event(message["Body"]))
    assert result == {"batchItemFailures": []}, "the stray message is dropped"
    assert count_items("FlowRunsTable") == 0 and count_items("RunRecordsTable") == 0


def test_a_condition_that_fails_unexpectedly_is_a_409_with_retry_after(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, _ = deployed
    with injected(Fault("PutItem", CONDITION_FAILED, when=on_table("FlowRunsTable"))):
        reply = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner)
    assert (reply.status, reply.headers.get("retry-after")) == (409, "1"), reply.body
    assert count_items("FlowRunsTable") == 0 and queued_messages(QUEUE) == 0


# -- RunFunction: redelivery, crashes, faults -------------------------------------


def test_a_throttled_claim_is_retried_by_the_next_delivery_and_runs_once(
    api: Api, one_node: tuple[str, str]
) -> None:
    run_id = start(api, *one_node)
    with injected(Fault("UpdateItem", THROTTLED, when=on_table("FlowRunsTable"))):
        assert deliver(api, run_id) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert status(run_id) == ("queued", None)
    assert deliver(api, run_id, receives=2) == {"batchItemFailures": []}
    assert status(run_id) == ("succeeded", None)
    assert node_records(run_id) == 2


def test_a_claim_whose_reply_was_lost_never_runs_and_the_sweeper_fails_it(
    api: Api, one_node: tuple[str, str]
) -> None:
    run_id = start(api, *one_node)
    claim = Fault("UpdateItem", TIMEOUT, times=1, after=True, when=on_table("FlowRunsTable"))
    with injected(claim):
        assert deliver(api, run_id) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert status(run_id) == ("running", None)
    # The redelivery cannot tell a dead claimant from a live one before the lease ends.
    assert deliver(api, run_id, receives=2) == {"batchItemFailures": []}
    assert status(run_id) == ("running", None)
    run = run_store.get(run_id)
    assert run is not None and run.lease_until is not None
    assert sweep(now=float(run.lease_until) - 1) == {"running": [], "queued": []}
    assert sweep(now=float(run.lease_until) + 1) == {"running": [run_id], "queued": []}
    assert status(run_id) == ("failed", run_store.ABANDONED)
    assert node_records(run_id) == 0, "the flow never executed"


def test_a_worker_that_dies_mid_run_leaves_a_run_the_sweeper_fails(
    api: Api, one_node: tuple[str, str]
) -> None:
    run_id = start(api, *one_node)
    # A worker claimed it and was killed: nothing finishes it, no message comes back.
    assert run_store.claim(run_id, lease_until=time.time() + 300) is not None
    result = api.functions.invoke("SweeperFunction", {"source": "aws.events"})
    assert result == {"failed": {"running": [], "queued": []}}
    assert sweep(now=time.time() + 301) == {"running": [run_id], "queued": []}
    assert status(run_id) == ("failed", run_store.ABANDONED)
    assert deliver(api, run_id, receives=2) == {"batchItemFailures": []}
    assert status(run_id) == ("failed", run_store.ABANDONED), "a late redelivery changes nothing"


def test_the_same_message_delivered_to_two_workers_at_once_runs_once(
    api: Api, one_node: tuple[str, str]
) -> None:
    run_id = start(api, *one_node)
    results: list[dict[str, Any]] = []
    workers = [threading.Thread(target=lambda: results.append(deliver(api, run_id)))]
    workers.append(threading.Thread(target=lambda: results.append(deliver(api, run_id))))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == [{"batchItemFailures": []}] * 2
    assert status(run_id) == ("succeeded", None)
    assert node_records(run_id) == 2, "each node ran once"


def test_the_sweeper_leaves_live_runs_alone_and_final_runs_leave_its_index(
    api: Api, one_node: tuple[str, str]
) -> None:
    done, live, waiting, stopped = (start(api, *one_node) for _ in range(4))
    assert watched() == {done, live, waiting, stopped}
    deliver(api, done)
    assert run_store.claim(live, lease_until=time.time() + 600) is not None
    api.call("POST", f"/flow_run/{stopped}/stop", user=one_node[0])
    assert watched() == {live, waiting}
    assert sweep() == {"running": [], "queued": []}
    assert (status(live)[0], status(waiting)[0]) == ("running", "queued")


def test_the_sweeper_is_scheduled_every_five_minutes_with_least_privilege() -> None:
    from flowdeploy.local.template import Template
    from tests.conftest import ROOT

    template = Template(ROOT / "template.yaml")
    props = template.resources["SweeperFunction"]["Properties"]
    assert props["Events"]["Sweep"]["Properties"]["Schedule"] == "rate(5 minutes)"
    statements = props["Policies"][0]["Statement"]
    assert {a for s in statements for a in s["Action"]} == {
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    }
    index = next(
        i
        for i in template.tables()["FlowRunsTable"]["GlobalSecondaryIndexes"]
        if i["IndexName"] == "SweepIndex"
    )
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
