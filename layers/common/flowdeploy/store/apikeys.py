"""ApiKeys table access."""

from __future__ import annotations

from collections.abc import Iterator

from pynamodb.exceptions import DoesNotExist

from flowdeploy.store import applied
from flowdeploy.store.models import ApiKeyItem


def insert(item: ApiKeyItem) -> None:
    item.save(condition=ApiKeyItem.key_hash.does_not_exist())


def by_hash(key_hash: str) -> ApiKeyItem | None:
    """Strongly consistent, so a deleted key stops working at once."""
    try:
        return ApiKeyItem.get(key_hash, consistent_read=True)
    except DoesNotExist:
        return None


def of_user(
    user_id: str, after: str | None = None, limit: int | None = None
) -> Iterator[ApiKeyItem]:
    """The user's keys, oldest first (ids are UUIDv7); those after key `after`."""
    later = ApiKeyItem.id > after if after is not None else None
    return ApiKeyItem.by_user.query(user_id, later, limit=limit)


def delete(user_id: str, key_id: str) -> bool:
    """Delete the user's key with this id; False if there is none."""
    found = next(iter(ApiKeyItem.by_user.query(user_id, ApiKeyItem.id == key_id)), None)
    if found is None:
        return False
    return applied(lambda: found.delete(condition=ApiKeyItem.user_id == user_id))
