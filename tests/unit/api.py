"""Drive the real handlers in-process, routed exactly as the local stack routes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from flowdeploy.local.devserver import Gateway
from flowdeploy.local.environments import Functions
from flowdeploy.local.template import Template
from tests.conftest import ROOT, token_for


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class Api:
    def __init__(self) -> None:
        template = Template(ROOT / "template.yaml")
        self.functions = Functions(template.functions())
        self.gateway = Gateway(template, self.functions)

    def call(
        self,
        method: str,
        target: str,
        *,
        user: str | None = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        raw_body: bytes = b"",
    ) -> Reply:
        sent = {"host": "localhost", **(headers or {})}
        if user is not None:
            sent["authorization"] = f"Bearer {token_for(user)}"
        body = raw_body
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("content-type", "application/json")
        status, out_headers, payload = self.gateway.handle(method, target, sent, body)
        return Reply(status, out_headers, json.loads(payload) if payload else None)

    def ws(self, connection_id: str, message: Any = None, *, event_type: str = "MESSAGE") -> Any:
        """A WebSocket message (or, by `event_type`, a CONNECT or DISCONNECT) through the
        function of the route API Gateway would select; what the function returned."""
        from flowdeploy.local.websocket import select_route, websocket_event

        websocket = self.gateway.websocket
        assert websocket is not None
        body = message if isinstance(message, str) or message is None else json.dumps(message)
        route = {"CONNECT": "$connect", "DISCONNECT": "$disconnect"}.get(event_type)
        route = route or select_route(websocket.api, body)
        event = websocket_event(
            websocket.api,
            route,
            event_type,
            connection_id,
            connected_at=1739020079.355,
            domain="localws.execute-api.us-east-1.amazonaws.com",
            body=body,
        )
        return self.functions.invoke(websocket.api.routes[route], event)

    def create_flow(self, user: str, **fields: Any) -> int:
        reply = self.call("POST", "/flow", user=user, json_body={"name": "test flow", **fields})
        assert reply.status == 201, reply.body
        return int(reply.body["flow_id"])

    def deploy(self, user: str, flow_id: int) -> str:
        reply = self.call("POST", f"/flow/deploy/{flow_id}", user=user)
        assert reply.status == 200, reply.body
        return str(reply.body["deployment_id"])


def count_items(table: str) -> int:
    return len(boto3.client("dynamodb").scan(TableName=table)["Items"])


def queued_messages(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue, received (and hidden for 5 minutes)."""
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
    ).get("Messages", []):
        messages += batch
    return messages


def sqs_event(*bodies: str, receives: int = 1) -> dict[str, Any]:
    """An SQS event for RunFunction, one record per message body."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receives)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:FlowRunQueue",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def posted(connection_id: str) -> list[dict[str, Any]]:
    """The messages posted to a connection through the management API (moto's mock)."""
    from flowdeploy.local.invoke import posted as messages

    return messages(connection_id)
