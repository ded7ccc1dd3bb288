"""`make redrive STACK=…` on AWS: SQS's StartMessageMoveTask from the stack's dead-letter
queue to FlowRunQueue. moto has no message move task, so botocore's Stubber plays AWS; the
calls are recorded as the operator's, and tests/test_iam_policies.py judges them against the
policy the README documents for it.
"""

from __future__ import annotations

import datetime

import boto3
from botocore.stub import Stubber

from flowdeploy.local import calls
from flowdeploy.local.redrive import redrive_stack

BASE = "https://sqs.us-east-1.amazonaws.com/123456789012"
# CloudFormation's names for the stack's queues: <stack>-<logical id>-<suffix>.
QUEUE, DEAD = "flowdeploy-FlowRunQueue-1Q2W3E4R5T6Y", "flowdeploy-FlowRunDeadLetterQueue-7U8I9O0P"


def test_redrive_on_aws_moves_the_stacks_dead_letters_back_to_its_queue() -> None:
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    arn = {name: f"arn:aws:sqs:us-east-1:123456789012:{name}" for name in (QUEUE, DEAD)}
    with Stubber(cloudformation) as stacks, Stubber(sqs) as queues:
        stacks.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "flowdeploy",
                        "CreationTime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [
                            {"OutputKey": "FlowRunQueueUrl", "OutputValue": f"{BASE}/{QUEUE}"},
                            {
                                "OutputKey": "FlowRunDeadLetterQueueUrl",
                                "OutputValue": f"{BASE}/{DEAD}",
                            },
                        ],
                    }
                ]
            },
            {"StackName": "flowdeploy"},
        )
        for name in (DEAD, QUEUE):
            queues.add_response(
                "get_queue_attributes",
                {"Attributes": {"QueueArn": arn[name]}},
                {"QueueUrl": f"{BASE}/{name}", "AttributeNames": ["QueueArn"]},
            )
        queues.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-1"},
            {"SourceArn": arn[DEAD], "DestinationArn": arn[QUEUE]},
        )
        with calls.acting_as("Operator (make redrive)"):
            said = redrive_stack(cloudformation, sqs, "flowdeploy")
        stacks.assert_no_pending_responses()
        queues.assert_no_pending_responses()
    assert said == f"moving messages from {BASE}/{DEAD} to {BASE}/{QUEUE}: task task-1"
