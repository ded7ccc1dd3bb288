"""Fault injection at the AWS SDK's edge: every DynamoDB (pynamodb) and SQS (boto3) call
goes through `BaseClient._make_api_call`, below which botocore retries. A fault raised
here is what the code sees once botocore's own retries have given up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

THROTTLED = "ProvisionedThroughputExceededException"
CONDITION_FAILED = "ConditionalCheckFailedException"
TIMEOUT = "ReadTimeout"  # the reply never came: botocore's ReadTimeoutError


@dataclass
class Fault:
    operation: str  # e.g. "PutItem", "SendMessage"
    code: str
    times: int | None = None  # None: every call
    after: bool = False  # make the call, then lose its reply
    when: Callable[[dict[str, Any]], bool] = lambda _: True
    hits: list[dict[str, Any]] = field(default_factory=list)

    def error(self) -> Exception:
        if self.code == TIMEOUT:
            return ReadTimeoutError(endpoint_url="https://dynamodb.local")
        status = 400 if self.code in {THROTTLED, CONDITION_FAILED} else 503
        return ClientError(
            {
                "Error": {"Code": self.code, "Message": f"injected {self.code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            self.operation,
        )


@contextmanager
def injected(*faults: Fault) -> Iterator[tuple[Fault, ...]]:
    """Make the matching SDK calls fail while the block runs."""
    real = BaseClient._make_api_call

    def call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        for fault in faults:
            active = fault.times is None or len(fault.hits) < fault.times
            if fault.operation == operation and active and fault.when(params):
                fault.hits.append(params)
                if fault.after:
                    real(client, operation, params)
                raise fault.error()
        return real(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield faults


def on_table(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda params: params.get("TableName") == name
