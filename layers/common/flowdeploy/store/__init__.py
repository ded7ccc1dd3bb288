"""Data access: one module per table, pynamodb models in `models`."""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import PynamoDBException


def applied(write: Callable[[], object]) -> bool:
    """Run a conditional write; False if its condition did not hold (other errors raise)."""
    try:
        write()
    except PynamoDBException as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
