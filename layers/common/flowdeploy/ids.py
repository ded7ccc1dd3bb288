"""Identifiers and timestamps, in the formats the docs page shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import uuid6


def new_id() -> str:
    """A UUIDv7 string: ids sort by creation time, as the docs promise for deployments."""
    return str(uuid6.uuid7())


def parse_uuid(text: str) -> str | None:
    """The canonical lower-case form of `text` if it is a UUID, else None."""
    try:
        return str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError):
        return None


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """UTC time as Postgres prints a `timestamp` column: "2025-02-08 13:07:59.35528"."""
    moment = (moment or now()).astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0")
    return text.rstrip(".")
