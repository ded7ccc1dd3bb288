"""Starts from EventBridge (events and schedules), SQS and S3, through TriggerFunction."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from botocore.stub import Stubber

from flowdeploy.local.samples import (
    eventbridge_event,
    s3_object_created_event,
    sqs_run_event,
)
from flowdeploy.store import queue
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import FlowRunItem
from tests.conftest import new_user
from tests.unit.api import Api, count_items

INPUTS = {"sender": {"S": "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"}, "amount": {"D": "3.14"}}
BUCKET = "uploads"


@pytest.fixture
def api(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Api:
    """Handlers whose S3_TRIGGER_TARGETS maps bucket `uploads` to flow 1 (the first flow)."""
    import flowdeploy.settings

    mapped = dataclasses.replace(flowdeploy.settings.settings(), s3_trigger_targets={BUCKET: "1"})
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: mapped)
    return Api()


@pytest.fixture
def deployed(api: Api) -> tuple[str, int, str]:
    """(owner, flow id, deployment id): a private flow, startable only by its owner."""
    owner = new_user()
    flow_id = api.create_flow(owner)
    assert flow_id == 1
    return owner, flow_id, api.deploy(owner, flow_id)


def trigger(api: Api, event: dict[str, Any]) -> Any:
    return api.functions.invoke("TriggerFunction", event)


def the_run(result: dict[str, Any]) -> FlowRunItem:
    (run_id,) = result["flow_run_ids"]
    run = run_store.get(run_id)
    assert run is not None
    return run


def sqs_event(*bodies: str) -> dict[str, Any]:
    event = sqs_run_event()
    (template,) = event["Records"]
    event["Records"] = [
        {**copy.deepcopy(template), "messageId": f"m{i}", "body": body}
        for i, body in enumerate(bodies)
    ]
    return event


def test_an_eventbridge_event_starts_its_deployment_as_the_owner(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, deployment_id = deployed
    detail = {"deployment_id": deployment_id, "inputs": INPUTS}
    run = the_run(trigger(api, eventbridge_event("flowdeploy", "Start deployment", detail)))
    assert (run.deployment_id, run.flow_id, run.user_id) == (deployment_id, flow_id, owner)
    assert (run.origin, run.status, run.inputs) == ("eventbridge", "queued", INPUTS)
    assert run.caller["kind"] == "account"
    listed = api.call("GET", f"/deployment/{deployment_id}/flow_runs", user=owner).body["flow_runs"]
    assert [(r["id"], r["origin"]) for r in listed] == [(run.id, "eventbridge")]


def test_a_schedule_starts_the_flows_tagged_deployment(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    _, flow_id, deployment_id = deployed
    event = {
        "source": "aws.scheduler",
        "detail-type": "Scheduled Event",
        "detail": {"flow": flow_id, "tag": "latest", "inputs": INPUTS},
    }
    run = the_run(trigger(api, event))
    assert (run.deployment_id, run.origin, run.inputs) == (deployment_id, "schedule", INPUTS)


def test_an_sqs_message_starts_a_run_and_bad_ones_are_reported_as_batch_failures(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    _, flow_id, deployment_id = deployed
    good = json.dumps({"flow": flow_id, "inputs": INPUTS})
    nan = f'{{"flow": {flow_id}, "inputs": {{"f": {{"F": NaN}}}}}}'
    event = sqs_event(good, "not json", json.dumps({"flow": 999}), json.dumps({"inputs": {}}), nan)
    result = trigger(api, event)
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": "m1"},
            {"itemIdentifier": "m2"},
            {"itemIdentifier": "m3"},
            {"itemIdentifier": "m4"},
        ]
    }
    (run,) = list(FlowRunItem.scan())
    assert (run.deployment_id, run.origin, run.inputs) == (deployment_id, "sqs", INPUTS)


def test_an_object_created_in_the_mapped_bucket_starts_a_run_with_bucket_key_and_size(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    _, _, deployment_id = deployed
    event = s3_object_created_event()
    event["detail"]["bucket"]["name"] = BUCKET
    run = the_run(trigger(api, event))
    assert (run.deployment_id, run.origin) == (deployment_id, "s3")
    assert run.inputs == {
        "bucket": {"S": BUCKET},
        "key": {"S": "uploads/receipt.pdf"},
        "size": {"U": "48213"},
    }


def test_a_classic_s3_notification_starts_a_run_with_the_decoded_key(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2025-02-08T13:07:59.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "start",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": "in/my+report%21.csv", "size": 0, "sequencer": "0A"},
                },
            }
        ]
    }
    run = the_run(trigger(api, notification))
    assert run.origin == "s3"
    assert run.inputs["key"] == {"S": "in/my report!.csv"}
    assert run.inputs["size"] == {"U": "0"}


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            eventbridge_event("flowdeploy", "Start deployment", {"inputs": {}}),
            "name the deployment: deployment_id, or flow (and optionally tag)",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", {"flow": 1, "deployment_id": "x"}),
            "name the deployment",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", {"flow": 1, "inputs": {"a": 1}}),
            "inputs.a",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", {"flow": 1, "extra": 1}),
            "unknown field: extra",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", {"flow": 1, "tag": "no such"}),
            "tag must be",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", {"flow": 2}),
            "deployment not found: 2:latest",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", {"deployment_id": "nope"}),
            "deployment_id must be a UUID",
        ),
        (
            eventbridge_event("flowdeploy", "Start deployment", ["not", "an", "object"]),
            "JSON object",
        ),
        ({"hello": "world"}, "not an EventBridge, SQS or S3 event"),
    ],
)
def test_a_bad_event_starts_nothing_and_is_not_retried(
    api: Api, deployed: tuple[str, int, str], event: dict[str, Any], error: str
) -> None:
    result = trigger(api, event)
    assert result["flow_run_ids"] == []
    assert error in result["error"]
    assert count_items("FlowRunsTable") == 0


def test_an_object_in_an_unmapped_bucket_starts_nothing(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    result = trigger(api, s3_object_created_event())
    assert "'triggerbucket' is not mapped to a deployment" in result["error"]
    assert count_items("FlowRunsTable") == 0


def test_an_event_that_may_succeed_later_raises_so_lambda_retries_it(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    _, _, deployment_id = deployed
    event = eventbridge_event("flowdeploy", "Start deployment", {"deployment_id": deployment_id})
    with Stubber(queue._sqs()) as stub, pytest.raises(Exception, match="retry"):
        stub.add_client_error("send_message", "ServiceUnavailable", http_status_code=503)
        trigger(api, event)
    assert count_items("FlowRunsTable") == 0
