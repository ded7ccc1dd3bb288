"""Data access: one module per table, pynamodb models in `models`."""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException

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
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
