"""The docs page's example, as data: the seed `make invoke` runs against, and events/.

The ids are the ones the docs page shows, so every event in events/ reads like the
docs: flow 3675 of user 885623c5-…, deployment 0194e5ac-…, run 5ede3d1a-….
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt

from flowdeploy.local import DEV_JWT_SECRET

DOCS_USER = "885623c5-d001-41da-9d34-5577e49df350"
DOCS_FLOW = 3675
DOCS_DEPLOYMENT = "0194e5ac-9103-7c52-971e-f71f83c5de2e"
DOCS_RUN = "5ede3d1a-67ae-452a-95ee-189d76377dd5"
DOCS_PUBKEY = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
# A WebSocket connection of the docs user (seeded as having authenticated with a token).
DOCS_CONNECTION = "L0SM9cOFvHcCIhw="
DOCS_START_BODY = {
    "inputs": {"sender": {"S": DOCS_PUBKEY}, "amount": {"D": "3.14"}},
    "action_signer": DOCS_PUBKEY,
}
# Sample events must keep working for years (and `make events` must not churn them);
# they only verify against the dev secret.
SAMPLE_TOKEN_CLAIMS = {
    "sub": DOCS_USER,
    "aud": "authenticated",
    "role": "authenticated",
    "iat": 1739020079,
    "exp": 4102444800,
}


def docs_flow() -> dict[str, Any]:
    """Flow 3675: takes `sender` and `amount` and returns them."""

    def node(node_id: str, command: str, label: str) -> dict[str, Any]:
        return {"id": node_id, "data": {"node_id": command, "config": {"label": label}}}

    def edge(source: str, target: str, out: str, into: str) -> dict[str, Any]:
        return {"source": source, "sourceHandle": out, "target": target, "targetHandle": into}

    return {
        "name": "Send with a memo",
        # Nothing but inputs and outputs: safe to read (GET /deployment/read).
        "read_enabled": True,
        "nodes": [
            node("in-sender", "flow_input", "sender"),
            node("in-amount", "flow_input", "amount"),
            node("out-sender", "flow_output", "sender"),
            node("out-amount", "flow_output", "amount"),
        ],
        "edges": [
            edge("in-sender", "out-sender", "output", "input"),
            edge("in-amount", "out-amount", "output", "input"),
        ],
    }


def seed() -> None:
    """Write the docs example into the current (local) tables and queue."""
    from flowdeploy import deployments, flow_runs, flows
    from flowdeploy.auth import Caller
    from flowdeploy.store.models import COUNTER_ID, FlowItem

    FlowItem(id=COUNTER_ID, next_id=DOCS_FLOW - 1).save()
    flows.create_flow(DOCS_USER, flows.FlowBody.model_validate(docs_flow()))
    deployments.deploy(DOCS_USER, DOCS_FLOW, new_deployment_id=lambda: DOCS_DEPLOYMENT)
    flow_runs.start(
        deployments.DeploymentRef(id=DOCS_DEPLOYMENT),
        flow_runs.StartDeploymentParams.model_validate(DOCS_START_BODY),
        Caller(kind="user", user_id=DOCS_USER),
        new_run_id=lambda: DOCS_RUN,
    )
    from flowdeploy.live import sessions
    from flowdeploy.store import connections

    sessions.connect(DOCS_CONNECTION, SAMPLE_CONNECTED_AT)
    connections.prove(DOCS_CONNECTION, int(SAMPLE_CONNECTED_AT) + 7200, user_id=DOCS_USER)


def http_event(
    method: str,
    path: str,
    query: str = "",
    body: Any = None,
    *,
    path_parameters: dict[str, str],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API event; by default from the docs user with a dev token."""
    if headers is None:
        token = jwt.encode(SAMPLE_TOKEN_CLAIMS, DEV_JWT_SECRET, algorithm="HS256")
        headers = {"authorization": f"Bearer {token}"}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path.format(**path_parameters),
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "localhost", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "http": {
                "method": method,
                "path": path.format(**path_parameters),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "curl/8",
            },
            "requestId": "sample",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "08/Feb/2025:13:07:59 +0000",
            "timeEpoch": 1739020079355,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def sqs_run_event() -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": json.dumps({"flow_run_id": DOCS_RUN}),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1739020079355",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1739020079360",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:FlowRunQueue",
                "awsRegion": "us-east-1",
            }
        ]
    }


TRIGGER_BUCKET = "triggerbucket"  # TriggerBucket on the local stack (logical id, lower case)
# Template parameters a sample needs (`make invoke ... PARAMS="Name=value"`).
SAMPLE_PARAMETERS = {"trigger_s3.json": {"TriggerBucketTarget": str(DOCS_FLOW)}}


SAMPLE_CONNECTED_AT = 1739020079.355


def ws_event(event_type: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event of the WebSocket API's route for `message` (or $connect / $disconnect), on
    the docs user's connection, as API Gateway sends it."""
    from flowdeploy.local.stack import repository_root
    from flowdeploy.local.template import Template
    from flowdeploy.local.websocket import select_route, websocket_event

    api = Template(repository_root() / "template.yaml").websocket_api()
    assert api is not None
    body = json.dumps(message) if message is not None else None
    route = {"CONNECT": "$connect", "DISCONNECT": "$disconnect"}.get(event_type)
    event = websocket_event(
        api,
        route or select_route(api, body),
        event_type,
        DOCS_CONNECTION,
        connected_at=SAMPLE_CONNECTED_AT,
        domain=f"{api.api_id}.execute-api.us-east-1.amazonaws.com",
        source_ip="203.0.113.7",
        user_agent="Mozilla/5.0",
        body=body,
        headers={"Host": f"{api.api_id}.execute-api.us-east-1.amazonaws.com"}
        if event_type == "CONNECT"
        else None,
        close=(1001, "Going away") if event_type == "DISCONNECT" else None,
        now=SAMPLE_CONNECTED_AT + 0.2,
    )
    context = event["requestContext"]  # fixed, so `make events` does not churn
    context["requestId"] = context["extendedRequestId"] = "GxoFxHk9oAMFkXw="
    if "messageId" in context:
        context["messageId"] = "GxoF1dxNoAMCIhw="
    return event


def ws_sample_events() -> dict[str, tuple[str, dict[str, Any]]]:
    """One sample per WebSocket route."""
    token = jwt.encode(SAMPLE_TOKEN_CLAIMS, DEV_JWT_SECRET, algorithm="HS256")
    run = {"flow_run_id": DOCS_RUN}
    return {
        "ws_connect.json": ("WebSocketConnectionFunction", ws_event("CONNECT")),
        "ws_disconnect.json": ("WebSocketConnectionFunction", ws_event("DISCONNECT")),
        "ws_authenticate.json": (
            "WebSocketFunction",
            ws_event("MESSAGE", {"id": 1, "method": "Authenticate", "params": {"token": token}}),
        ),
        "ws_subscribe_flow_run_events.json": (
            "WebSocketFunction",
            ws_event("MESSAGE", {"id": 2, "method": "SubscribeFlowRunEvents", "params": run}),
        ),
        "ws_subscribe_signature_requests.json": (
            "WebSocketFunction",
            ws_event("MESSAGE", {"id": 3, "method": "SubscribeSignatureRequests", "params": {}}),
        ),
        "ws_default.json": (
            "WebSocketFunction",
            ws_event("MESSAGE", {"id": 4, "method": "Unsubscribe", "params": {}}),
        ),
    }


def eventbridge_event(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event as Lambda receives it from a rule."""
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2025-02-08T13:07:59Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def trigger_sqs_event() -> dict[str, Any]:
    event = sqs_run_event()
    record = event["Records"][0]
    record["body"] = json.dumps({"flow": DOCS_FLOW, "tag": "latest", **DOCS_START_BODY})
    record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:TriggerQueue"
    return event


def s3_object_created_event() -> dict[str, Any]:
    """S3's "Object Created" notification, delivered by EventBridge (as template.yaml wires it)."""
    event = eventbridge_event(
        "aws.s3",
        "Object Created",
        {
            "version": "0",
            "bucket": {"name": TRIGGER_BUCKET},
            "object": {
                "key": "uploads/receipt.pdf",
                "size": 48213,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "sequencer": "0062E99A88DC407460",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    )
    event["resources"] = [f"arn:aws:s3:::{TRIGGER_BUCKET}"]
    return event


def idempotent_start_event() -> dict[str, Any]:
    event = http_event(
        "POST", "/deployment/start", f"id={DOCS_DEPLOYMENT}", DOCS_START_BODY, path_parameters={}
    )
    event["headers"]["idempotency-key"] = "0194e5ad-2f4c-7d8e-9a1b-3c5d7e9f1a2b"
    return event


def sample_events() -> dict[str, tuple[str, dict[str, Any]]]:
    """File name → (function, event) for every function and trigger."""
    no_params: dict[str, str] = {}
    flow = {"flow_id": str(DOCS_FLOW)}
    return {
        "deploy.json": (
            "DeployFunction",
            http_event("POST", "/flow/deploy/{flow_id}", path_parameters=flow),
        ),
        "start.json": (
            "StartFunction",
            http_event(
                "POST",
                "/deployment/start",
                f"id={DOCS_DEPLOYMENT}",
                DOCS_START_BODY,
                path_parameters=no_params,
            ),
        ),
        "start_by_tag.json": (
            "StartFunction",
            http_event(
                "POST",
                "/deployment/start",
                f"flow={DOCS_FLOW}&tag=latest",
                DOCS_START_BODY,
                path_parameters=no_params,
            ),
        ),
        "api_create_flow.json": (
            "ApiFunction",
            http_event("POST", "/flow", body=docs_flow(), path_parameters=no_params),
        ),
        "api_get_deployment.json": (
            "ApiFunction",
            http_event(
                "GET",
                "/deployment/{deployment_id}",
                path_parameters={"deployment_id": DOCS_DEPLOYMENT},
            ),
        ),
        "api_list_tags.json": (
            "ApiFunction",
            http_event("GET", "/flow/{flow_id}/tags", path_parameters=flow),
        ),
        "api_get_flow_run.json": (
            "ApiFunction",
            http_event("GET", "/flow_run/{run_id}", path_parameters={"run_id": DOCS_RUN}),
        ),
        "start_idempotent.json": ("StartFunction", idempotent_start_event()),
        "api_update_deployment.json": (
            "ApiFunction",
            http_event(
                "PATCH",
                "/deployment/{deployment_id}",
                body={
                    "start_permission": "Anonymous",
                    "fees": [["2cruTfCER3HaFwXnR99uM3jM1nPAPR5eWmVF2PiM7viR", 10000]],
                },
                path_parameters={"deployment_id": DOCS_DEPLOYMENT},
            ),
        ),
        "api_set_tag.json": (
            "ApiFunction",
            http_event(
                "PUT",
                "/flow/{flow_id}/tags/{tag}",
                body={"deployment_id": DOCS_DEPLOYMENT, "description": "the docs' example"},
                path_parameters={**flow, "tag": "v1"},
            ),
        ),
        "api_create_wallet.json": (
            "ApiFunction",
            http_event("POST", "/wallet", body={"name": "treasury"}, path_parameters=no_params),
        ),
        "api_list_wallets.json": (
            "ApiFunction",
            http_event("GET", "/wallet", path_parameters=no_params),
        ),
        "actions_json.json": (
            "ActionsFunction",
            http_event("GET", "/actions.json", path_parameters=no_params, headers={}),
        ),
        "read.json": (
            "ReadFunction",
            http_event(
                "GET", "/deployment/read", f"id={DOCS_DEPLOYMENT}", path_parameters=no_params
            ),
        ),
        "docs_openapi.json": (
            "DocsFunction",
            http_event("GET", "/openapi.json", path_parameters=no_params, headers={}),
        ),
        "run.json": ("RunFunction", sqs_run_event()),
        "trigger_eventbridge.json": (
            "TriggerFunction",
            eventbridge_event(
                "flowdeploy",
                "Start deployment",
                {"deployment_id": DOCS_DEPLOYMENT, **DOCS_START_BODY},
            ),
        ),
        "trigger_schedule.json": (
            "TriggerFunction",
            # What TriggerSchedule sends (its Input), with ScheduleDetail filled in.
            {
                "source": "aws.scheduler",
                "detail-type": "Scheduled Event",
                "detail": {"flow": DOCS_FLOW, "tag": "latest", "inputs": DOCS_START_BODY["inputs"]},
            },
        ),
        "trigger_sqs.json": ("TriggerFunction", trigger_sqs_event()),
        # What SweeperFunction's rate(5 minutes) schedule sends.
        "sweeper.json": ("SweeperFunction", eventbridge_event("aws.events", "Scheduled Event", {})),
        "trigger_s3.json": ("TriggerFunction", s3_object_created_event()),
        **ws_sample_events(),
    }


def write_events(folder: Path) -> list[Path]:
    """Regenerate events/ (`make events`)."""
    written = []
    for name, (_, event) in sample_events().items():
        path = folder / name
        path.write_text(json.dumps(event, indent=2) + "\n")
        written.append(path)
    return written
