"""Data access: one module per table, pynamodb models in `models`."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError

# Codes of DynamoDB and SQS failures that a later attempt may not meet (after botocore's
# own retries gave up): throttling, capacity, and the service failing.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottlingError",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "TransactionConflict",
        "TransactionConflictException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
    }
)
CONFLICT_CODES = frozenset({"ConditionalCheckFailed", "ConditionalCheckFailedException"})


def response_code(error: PynamoDBException) -> str | None:
    """The AWS error code behind a pynamodb error; None for a timeout or connection error
    (pynamodb's own `cause_response_code` raises AttributeError on those)."""
    response = getattr(error.cause, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def _codes(error: BaseException) -> set[str]:
    codes: set[str] = set()
    if isinstance(error, TransactWriteError):
        codes |= {r.code for r in error.cancellation_reasons if r is not None and r.code}
    if isinstance(error, PynamoDBException) and (code := response_code(error)):
        codes.add(code)
    if isinstance(error, ClientError):
        codes.add(str(error.response.get("Error", {}).get("Code", "")))
    cause = error.__cause__
    if cause is not None and cause is not error:
        codes |= _codes(cause)
    return codes


def is_transient(error: BaseException) -> bool:
    """Whether a store or queue failure may pass if the request is repeated later."""
    if isinstance(error, BotoCoreError):  # timeouts, connection errors
        return True
    cause = error.cause if isinstance(error, PynamoDBException) else error.__cause__
    if isinstance(cause, BotoCoreError):
        return True
    return bool(_codes(error) & TRANSIENT_CODES)


def is_conflict(error: BaseException) -> bool:
    """Whether a write lost a race (its condition no longer held) and may simply be repeated."""
    return bool(_codes(error) & CONFLICT_CODES)


_connection: Connection | None = None


def transactions() -> Connection:
    """The connection TransactWrite needs; one per process, as boto3 recommends."""
    global _connection  # noqa: PLW0603
    if _connection is None:
        _connection = Connection()
    return _connection


def applied(write: Callable[[], object]) -> bool:
    """Run a conditional write; False if its condition did not hold (other errors raise)."""
    try:
        write()
    except PynamoDBException as error:
        if response_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True
