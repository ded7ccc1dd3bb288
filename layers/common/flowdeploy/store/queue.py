"""FlowRunQueue access: the message that asks RunFunction to execute a run."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from flowdeploy.settings import settings


class QueueUnavailable(RuntimeError):
    """The message could not be sent."""


@cache
def _sqs() -> Any:
    return boto3.client("sqs")


def message_body(run_id: str) -> str:
    return json.dumps({"flow_run_id": run_id})


def run_id_of(body: str) -> str:
    """The run a FlowRunQueue message names; ValueError for anything else."""
    message = json.loads(body)
    if not isinstance(message, dict) or not isinstance(message.get("flow_run_id"), str):
        raise ValueError('message must be {"flow_run_id": "<uuid>"}')
    return str(message["flow_run_id"])


def enqueue_run(run_id: str) -> None:
    try:
        _sqs().send_message(
            QueueUrl=settings().flow_run_queue_url, MessageBody=message_body(run_id)
        )
    except (BotoCoreError, ClientError) as error:
        raise QueueUnavailable(str(error)) from error
