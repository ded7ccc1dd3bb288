"""RunFunction: takes queued runs off FlowRunQueue and executes them, a batch concurrently.

A record that fails is reported back as a partial batch failure, so SQS retries it
and, after the queue's maxReceiveCount, moves it to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy.observability import count, logger, metrics
from flowdeploy.runner import execute_queued_run, status_metric
from flowdeploy.settings import settings
from flowdeploy.store.queue import run_id_of

# Report every failed record, even when all fail, so each follows the redrive policy.
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_context: dict[str, LambdaContext] = {}


async def record_handler(record: SQSRecord) -> str | None:
    run_id = run_id_of(record.body)
    receives = int(record.attributes.approximate_receive_count or 1)
    context = _context.get("current")
    status = await execute_queued_run(
        run_id,
        last_attempt=receives >= settings().flow_run_max_receives,
        time_left=context.get_remaining_time_in_millis() / 1000 if context else None,
    )
    logger.info("run finished", extra={"flow_run_id": run_id, "status": status})
    count(status_metric(status))
    return status


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _context["current"] = context
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
