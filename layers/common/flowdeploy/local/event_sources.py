"""Lambda's event sources on the local stack: SQS event source mappings and rate() schedules.

A mapping polls its queue as Lambda's pollers do: a batch is one invocation, records the
function reports as failed come back, the rest are deleted, and up to the mapping's
MaximumConcurrency invocations run at once, so one long run holds one slot, never the
queue. Its SQS calls are made as the function (Lambda uses the function's role for them).
One deliberate difference: a failed record comes back after LOCAL_RETRY_SECONDS instead of
the queue's visibility timeout (30 minutes in AWS), so retries and the dead-letter queue
can be watched.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from flowdeploy.local import ACCOUNT, REGION, calls
from flowdeploy.local.environments import Functions
from flowdeploy.local.template import QueueSource, Template

log = logging.getLogger("flowdeploy.local")

LOCAL_RETRY_SECONDS = 2
# Concurrency of a mapping without ScalingConfig.MaximumConcurrency (Lambda scales further).
DEFAULT_MAX_CONCURRENCY = 8


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Messages as Lambda's SQS event source hands them to a function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class QueuePoller(threading.Thread):
    """Lambda's SQS event source mapping: poll, invoke, delete what succeeded."""

    def __init__(
        self,
        functions: Functions,
        function: str,
        queue_url: str,
        queue_arn: str,
        batch: int,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        super().__init__(daemon=True, name=f"poll-{function}")
        import boto3

        self.sqs: Any = boto3.client("sqs")
        self.functions = functions
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch = batch
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.stopping = threading.Event()
        self.busy = 0

    def run(self) -> None:
        with calls.acting_as(self.function):  # Lambda checks the mapping against the role
            self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])
        while not self.stopping.is_set():
            try:
                self.poll_once(wait_seconds=1, wait_for_result=False)
            except Exception:
                log.exception("polling %s failed", self.queue_url)
                time.sleep(1)

    def poll_once(self, wait_seconds: int = 0, wait_for_result: bool = True) -> int:
        """One receive, then the batch's invocation (in the background unless
        `wait_for_result`); the number of messages received."""
        self.slots.acquire()
        try:
            with calls.acting_as(self.function):
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.batch,
                    WaitTimeSeconds=wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
        except BaseException:
            self.slots.release()
            raise
        if not messages:
            self.slots.release()
            return 0
        if wait_for_result:
            self._invoke(messages)
        else:
            threading.Thread(
                target=self._invoke, args=(messages,), daemon=True, name=f"run-{self.function}"
            ).start()
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        try:
            try:
                result = self.functions.invoke(self.function, sqs_event(messages, self.queue_arn))
                failures = (result or {}).get("batchItemFailures", [])
                failed = {f["itemIdentifier"] for f in failures}
            except Exception:
                log.exception("%s failed; the whole batch will be retried", self.function)
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] in failed:
                    # Local shortcut (not the function's call): see the module docstring.
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=LOCAL_RETRY_SECONDS,
                    )
                else:
                    with calls.acting_as(self.function):
                        self.sqs.delete_message(
                            QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                        )
        finally:
            self.slots.release()


def scheduled_event(function: str) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function}Schedule"],
        "detail": {},
    }


class Schedule(threading.Thread):
    """An EventBridge `rate()` schedule: invokes its function every `seconds`."""

    def __init__(self, functions: Functions, function: str, seconds: float) -> None:
        super().__init__(daemon=True, name=f"schedule-{function}")
        self.functions = functions
        self.function = function
        self.seconds = seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.seconds):
            try:
                self.functions.invoke(self.function, scheduled_event(self.function))
            except Exception:
                log.exception("scheduled %s failed", self.function)


def schedules(template: Template, functions: Functions) -> list[Schedule]:
    return [
        Schedule(functions, spec.name, seconds)
        for spec in template.functions().values()
        for seconds in spec.schedules
    ]


def pollers(template: Template, functions: Functions, names: dict[str, Any]) -> list[QueuePoller]:
    """One poller per SQS event source mapping of the template."""
    return [
        QueuePoller(
            functions,
            spec.name,
            names[source.queue],
            names[f"{source.queue}.Arn"],
            source.batch,
            _concurrency(source),
        )
        for spec in template.functions().values()
        for source in spec.sqs_queues
    ]


def _concurrency(source: QueueSource) -> int:
    return source.max_concurrency or DEFAULT_MAX_CONCURRENCY
