"""RunFunction: takes queued runs off FlowRunQueue, one record at a time.

A record that fails is reported back as a partial batch failure, so SQS retries it
and, after the queue's maxReceiveCount, moves it to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy.flow_runs import execute_queued_run
from flowdeploy.observability import count, logger, metrics
from flowdeploy.settings import settings
from flowdeploy.store.queue import run_id_of

# Report every failed record, even when all fail, so each follows the redrive policy.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str | None:
    run_id = run_id_of(record.body)
    logger.append_keys(flow_run_id=run_id)
    receives = int(record.attributes.approximate_receive_count or 1)
    status = execute_queued_run(run_id, last_attempt=receives >= settings().flow_run_max_receives)
    count(f"Run{status.capitalize()}" if status else "RunRedelivered")
    return status


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
