"""TriggerFunction: starts deployments from EventBridge (events and schedules), SQS and S3.

Each event names a deployment and its inputs (see `flowdeploy.triggers`). An EventBridge
or S3 event that is bad is logged and dropped, since retrying cannot fix it; a failure
that may pass (a throttled table, the run queue down, the owner at MAX_LIVE_RUNS_PER_USER)
raises, so Lambda retries the event. An SQS message that fails either way is reported as a
batch item failure, so a bad one ends in the trigger queue's dead-letter queue.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import (
    EventBridgeEvent,
    S3Event,
    S3EventBridgeNotificationEvent,
    SQSRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import triggers
from flowdeploy.errors import ApiError, BadRequest
from flowdeploy.observability import count, logger, metrics
from flowdeploy.settings import settings

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def message_handler(record: SQSRecord) -> str:
    try:
        return started(triggers.start_from_message(record.body, "sqs"), "sqs")
    except ApiError as error:
        # Every failure is a batch item failure: a bad message ends in the dead-letter
        # queue after maxReceiveCount deliveries, where it can be looked at.
        refused(error, "sqs")
        raise


def started(run_id: str, origin: str) -> str:
    logger.info("run queued", extra={"flow_run_id": run_id, "origin": origin})
    count("RunQueued")
    return run_id


def refused(error: ApiError, origin: str) -> str:
    logger.error("trigger refused", extra={"origin": origin, "error": error.message})
    count("TriggerRefused")
    return f"refused: {error.message}"


def from_eventbridge(event: dict[str, Any]) -> list[str]:
    if event.get("source") == "aws.s3":
        notification = S3EventBridgeNotificationEvent(event)
        if notification.detail_type != "Object Created":
            raise BadRequest(f"S3 event {notification.detail_type!r} starts nothing")
        obj = notification.detail.object
        return [
            started(
                triggers.start_for_object(
                    notification.detail.bucket.name,
                    obj.key,
                    obj.size or 0,
                    settings().s3_trigger_targets,
                ),
                "s3",
            )
        ]
    bridged = EventBridgeEvent(event)
    origin: triggers.Origin = (
        "schedule"
        if bridged.source == "aws.scheduler" or bridged.detail_type == "Scheduled Event"
        else "eventbridge"
    )
    return [started(triggers.start(bridged.detail, origin), origin)]


def from_s3_notification(event: dict[str, Any]) -> list[str]:
    targets = settings().s3_trigger_targets
    return [
        started(
            triggers.start_for_object(
                record.s3.bucket.name,
                unquote_plus(record.s3.get_object.key),  # notifications URL-encode keys
                record.s3.get_object.size,
                targets,
            ),
            "s3",
        )
        for record in S3Event(event).records
    ]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=message_handler, processor=processor, context=context
        )
    try:
        if records[0].get("eventSource") == "aws:s3":
            return {"flow_run_ids": from_s3_notification(event)}
        if "detail-type" in event:
            return {"flow_run_ids": from_eventbridge(event)}
        raise BadRequest("not an EventBridge, SQS or S3 event")
    except ApiError as error:
        if error.status >= 500 or error.retry_after is not None:
            raise  # may pass later (a limit, a race, a failing dependency): Lambda retries it
        return {"flow_run_ids": [], "error": refused(error, "event")}
