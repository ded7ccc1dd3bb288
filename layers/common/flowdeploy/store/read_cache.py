"""ReadCache table access: a read's answer, kept for a few minutes."""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import DoesNotExist

from flowdeploy.store.models import CachedReadItem


def get(key: str) -> CachedReadItem | None:
    """The cached answer under `key`, unless it expired (TTL deletes lazily)."""
    try:
        item = CachedReadItem.get(key)
    except DoesNotExist:
        return None
    return item if float(item.expires_at) > time.time() else None


def put(key: str, body: Any, etag: str, cached_at: float, ttl: float) -> CachedReadItem:
    item = CachedReadItem(
        key, body=body, etag=etag, cached_at=cached_at, expires_at=int(cached_at + ttl)
    )
    item.save()
    return item
