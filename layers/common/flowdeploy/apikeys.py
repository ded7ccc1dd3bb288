"""API keys: created for a user, shown once, stored only as a hash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from flowdeploy import paging
from flowdeploy.auth import hash_api_key, new_api_key, trim_api_key
from flowdeploy.errors import NotFound
from flowdeploy.ids import new_id, parse_uuid, timestamp
from flowdeploy.store import apikeys as store
from flowdeploy.store.models import ApiKeyItem


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


def _row(item: ApiKeyItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "trimmed_key": item.trimmed_key,
        "created_at": item.created_at,
    }


def create(user_id: str, body: NewApiKey) -> dict[str, Any]:
    """A new key for `user_id`; the response is the only place the key ever appears."""
    key = new_api_key()
    item = ApiKeyItem(
        key_hash=hash_api_key(key),
        id=new_id(),
        user_id=user_id,
        name=body.name,
        trimmed_key=trim_api_key(key),
        created_at=timestamp(),
    )
    store.insert(item)
    return {"key": key, **_row(item)}


def owner_of(key_hash: str) -> str | None:
    item = store.by_hash(key_hash)
    return item.user_id if item is not None else None


MAX_PAGE = 100


def list_keys(user_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the user's keys, oldest first: `{"api_keys": [...], "next": <id> | null}`."""
    page = paging.request(query, MAX_PAGE, parse_uuid)
    found = store.of_user(user_id, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, _row, lambda item: item.id)
    return {"api_keys": rows, "next": following}


def delete(user_id: str, key_id: str) -> None:
    if not store.delete(user_id, key_id):
        raise NotFound(f"API key not found: {key_id}")
