"""Per-user key-value stores for the `kv_*` nodes: limits, values, and the run's access.

A user (the deployment's owner: a run uses its owner's stores, as upstream's nodes use the
flow owner's) has at most MAX_STORES stores and MAX_TOTAL_BYTES bytes in them (upstream's
defaults; a store's name, and each item's key and IValue JSON count), a store at most
MAX_ITEMS_PER_STORE items, and a value at most MAX_VALUE_BYTES of IValue JSON (a DynamoDB
item holds 400 KB). Past a limit the node fails with a message naming it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TypeVar

from flowdeploy.engine.services import ServiceFailure
from flowdeploy.store import kv as store
from flowdeploy.store.kv import KvFailure, Limits
from flowdeploy.values import IValue

MAX_STORES = 100
MAX_TOTAL_BYTES = 100 * 1024 * 1024
MAX_ITEMS_PER_STORE = 10_000
MAX_VALUE_BYTES = 300_000
LIMITS = Limits(MAX_STORES, MAX_TOTAL_BYTES, MAX_ITEMS_PER_STORE)

__all__ = ["LIMITS", "KvFailure", "OwnerStores"]


def _text(value: IValue) -> str:
    text = json.dumps(value.to_json(), separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise KvFailure(
            f"the value is {len(text.encode())} bytes of IValue JSON; a value is at most "
            f"{MAX_VALUE_BYTES}"
        )
    return text


def _value(text: str | None) -> IValue | None:
    return None if text is None else IValue.from_json(json.loads(text))


_R = TypeVar("_R")


class OwnerStores:
    """One user's stores, as a run's nodes use them (the engine's KeyValueStore)."""

    def __init__(self, user_id: str, *, read_only: bool = False) -> None:
        self.user_id = user_id
        # A read (`/deployment/read`) may read items but change nothing, as upstream's
        # read-only runs refuse its "mutating" kv nodes.
        self.read_only = read_only

    async def _call(self, operation: Callable[..., _R], *args: object) -> _R:
        if self.read_only and operation is not store.read_item:
            raise ServiceFailure("a read (/deployment/read) cannot change key-value stores")
        try:
            return await asyncio.to_thread(operation, self.user_id, *args)
        except KvFailure as failure:
            raise ServiceFailure(str(failure)) from None

    async def create_store(self, name: str) -> bool:
        await self._call(store.create_store, name, LIMITS)
        return True

    async def delete_store(self, name: str) -> bool:
        return await self._call(store.delete_store, name, LIMITS)

    async def read_item(self, name: str, key: str) -> IValue | None:
        return _value(await self._call(store.read_item, name, key))

    async def write_item(self, name: str, key: str, value: IValue) -> IValue | None:
        if self.read_only:
            raise ServiceFailure("a read (/deployment/read) cannot change key-value stores")
        try:
            text = _text(value)
        except KvFailure as failure:
            raise ServiceFailure(str(failure)) from None
        return _value(await self._call(store.write_item, name, key, text, LIMITS))

    async def delete_item(self, name: str, key: str) -> IValue | None:
        return _value(await self._call(store.delete_item, name, key, LIMITS))


def ensure_store(user_id: str, name: str) -> bool:
    """Create the store unless the user has it; whether it was created (import)."""
    if any(item.name == name for item in store.stores_of(user_id)):
        return False
    store.create_store(user_id, name, LIMITS)
    return True


def put_exported(user_id: str, name: str, key: str, text: str) -> None:
    """One item of an export: its value is IValue JSON (upstream stores Value's JSON form),
    or plain JSON."""
    from flowdeploy.engine.convert import config_value

    try:
        value = config_value(json.loads(text), f"kvstore.{name}.{key}")
    except (ValueError, RecursionError) as error:
        raise KvFailure(f"item {key!r}: its value is not JSON: {error}") from None
    store.write_item(user_id, name, key, _text(value), LIMITS)


def exported(user_id: str) -> tuple[list[list[str | None]], list[list[str | None]]]:
    """(kvstore_metadata rows, kvstore rows) of the user's stores, upstream's columns."""
    metadata: list[list[str | None]] = []
    items: list[list[str | None]] = []
    for kept in store.stores_of(user_id):
        metadata.append([user_id, kept.name, str(int(kept.size))])
        for item in store.items_of(kept):
            items.append([user_id, kept.name, item.sk, item.value, item.updated_at])
    return metadata, items
