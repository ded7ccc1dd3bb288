"""`make redrive`: move flow run messages from the dead-letter queue back to FlowRunQueue.

On AWS (`--stack NAME`) this is SQS's own StartMessageMoveTask, with the caller's
credentials (the README lists the permissions it needs). Against the local stack
(`--endpoint URL`, which moto does not implement) messages are received, sent again and
then deleted, with the local stack's dummy credentials: none need be set. Either way a
message may arrive twice if the move is interrupted; that is harmless, since a run executes
at most once however often its message comes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flowdeploy.local import REGION

QUEUE, DEAD_LETTERS = "FlowRunQueue", "FlowRunDeadLetterQueue"


def stack_queues(cloudformation: Any, stack: str) -> tuple[str, str]:
    """(queue URL, dead-letter queue URL) from the stack's outputs."""
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return outputs[f"{QUEUE}Url"], outputs[f"{DEAD_LETTERS}Url"]


def arn_of(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def move_messages(sqs: Any, source: str, target: str, limit: int | None = None) -> int:
    """Receive, re-send, then delete, 10 at a time; the number of messages moved."""
    moved = 0
    while limit is None or moved < limit:
        messages = sqs.receive_message(
            QueueUrl=source,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                **(
                    {"MessageAttributes": m["MessageAttributes"]}
                    if "MessageAttributes" in m
                    else {}
                ),
            }
            for i, m in enumerate(messages)
        ]
        sent = sqs.send_message_batch(QueueUrl=target, Entries=entries)
        done = [messages[int(s["Id"])] for s in sent.get("Successful", [])]
        if done:
            sqs.delete_message_batch(
                QueueUrl=source,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        moved += len(done)
        if sent.get("Failed"):
            raise RuntimeError(f"could not re-queue {len(sent['Failed'])} message(s): {sent}")
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowdeploy.local.redrive", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed CloudFormation stack's name")
    where.add_argument(
        "--endpoint", help="the local stack's AWS endpoint (FLOWDEPLOY_AWS_ENDPOINT)"
    )
    args = parser.parse_args(argv)

    import boto3

    if args.endpoint:
        sqs = boto3.client(
            "sqs",
            endpoint_url=args.endpoint,
            region_name=REGION,
            aws_access_key_id="local",  # moto accepts any; never the developer's own
            aws_secret_access_key="local",  # noqa: S106
        )
        queue = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        dead = sqs.get_queue_url(QueueName=DEAD_LETTERS)["QueueUrl"]
        print(f"moved {move_messages(sqs, dead, queue)} message(s) from {DEAD_LETTERS} to {QUEUE}")
        return 0
    print(redrive_stack(boto3.client("cloudformation"), boto3.client("sqs"), args.stack))
    return 0


def redrive_stack(cloudformation: Any, sqs: Any, stack: str) -> str:
    """Start SQS's move task from the stack's dead-letter queue to FlowRunQueue."""
    queue, dead = stack_queues(cloudformation, stack)
    task = sqs.start_message_move_task(
        SourceArn=arn_of(sqs, dead), DestinationArn=arn_of(sqs, queue)
    )
    return f"moving messages from {dead} to {queue}: task {task['TaskHandle']}"


if __name__ == "__main__":
    sys.exit(main())
