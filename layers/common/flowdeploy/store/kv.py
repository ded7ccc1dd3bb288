"""Key-value store table access: stores, items and the per-user quota, changed together.

Every change is one transaction that also moves the store's and the user's totals, each
conditional on the limits, so concurrent writers can never take a user past a limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from flowdeploy.ids import new_id, timestamp
from flowdeploy.store import transactions as _transactions
from flowdeploy.store.models import KvQuotaItem, KvStoreItem, KvValueItem

ATTEMPTS = 4  # a write that loses a race with another write of the same key tries again


class KvFailure(Exception):
    """A store operation the caller's data refuses; the message is upstream's wording."""


@dataclass(frozen=True, slots=True)
class Limits:
    stores: int
    total_bytes: int
    items_per_store: int


def _codes(error: TransactWriteError) -> list[str | None]:
    return [r.code if r is not None else None for r in error.cancellation_reasons]


def _store(user_id: str, name: str) -> KvStoreItem | None:
    try:
        return KvStoreItem.get(*KvStoreItem.key(user_id, name), consistent_read=True)
    except DoesNotExist:
        return None


def _item(store: KvStoreItem, key: str) -> KvValueItem | None:
    try:
        return KvValueItem.get(store.items_pk(), key, consistent_read=True)
    except DoesNotExist:
        return None


def _quota_change(
    user_id: str, stores: int, size: int, limits: Limits
) -> tuple[KvQuotaItem, list[Any], Any]:
    """The quota item's update and its condition for a change of `stores` and `size`."""
    quota = KvQuotaItem(*KvQuotaItem.key(user_id))
    actions: list[Any] = [KvQuotaItem.size.add(size)]
    condition: Any = None
    if stores:
        actions.append(KvQuotaItem.store_count.add(stores))
    if stores > 0:
        condition = KvQuotaItem.store_count.does_not_exist() | (
            KvQuotaItem.store_count <= limits.stores - stores
        )
    if size > 0:
        fits = KvQuotaItem.size.does_not_exist() | (KvQuotaItem.size <= limits.total_bytes - size)
        condition = fits if condition is None else condition & fits
    return quota, actions, condition


def create_store(user_id: str, name: str, limits: Limits) -> None:
    store = KvStoreItem(
        *KvStoreItem.key(user_id, name),
        name=name,
        generation=new_id(),
        size=0,
        item_count=0,
        created_at=timestamp(),
    )
    size = len(name.encode())
    if size > limits.total_bytes:
        raise KvFailure("user's storage limit exceeded")
    quota, actions, condition = _quota_change(user_id, 1, size, limits)
    try:
        with TransactWrite(connection=_transactions()) as transaction:
            transaction.save(store, condition=KvStoreItem.pk.does_not_exist())
            transaction.update(quota, actions=actions, condition=condition)
    except TransactWriteError as error:
        codes = _codes(error)
        if codes and codes[0] == "ConditionalCheckFailed":
            raise KvFailure("store already exists") from None
        if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
            raise KvFailure(
                f"store limit reached: a user has at most {limits.stores} stores and "
                f"{limits.total_bytes} bytes"
            ) from None
        raise


def delete_store(user_id: str, name: str, limits: Limits) -> bool:
    """Delete the store and its items; False if there was no such store."""
    store = _store(user_id, name)
    if store is None:
        return False
    freed = int(store.size) + len(name.encode())
    quota, actions, _ = _quota_change(user_id, -1, -freed, limits)
    try:
        with TransactWrite(connection=_transactions()) as transaction:
            transaction.delete(store, condition=KvStoreItem.generation == store.generation)
            transaction.update(quota, actions=actions)
    except TransactWriteError as error:
        if _codes(error)[:1] == ["ConditionalCheckFailed"]:
            return False  # deleted meanwhile
        raise
    # The store is gone: writes to it fail from now on; its items are unreachable and go.
    with KvValueItem.batch_write() as batch:
        for item in KvValueItem.query(store.items_pk(), consistent_read=True):
            batch.delete(item)
    return True


def read_item(user_id: str, name: str, key: str) -> str | None:
    """The item's value (IValue JSON text); None when the store or the key is missing."""
    store = _store(user_id, name)
    if store is None:
        raise KvFailure("store not found")
    item = _item(store, key)
    return item.value if item is not None else None


def write_item(user_id: str, name: str, key: str, value: str, limits: Limits) -> str | None:
    """Store `value` (IValue JSON text) at `key`; the value it replaced, if any."""
    for _ in range(ATTEMPTS):
        store = _store(user_id, name)
        if store is None:
            raise KvFailure("store not found")
        old = _item(store, key)
        size = len(key.encode()) + len(value.encode())
        delta = size - (int(old.size) if old is not None else 0)
        item = KvValueItem(
            store.items_pk(),
            key,
            value=value,
            size=size,
            version=int(old.version) + 1 if old is not None else 0,
            updated_at=timestamp(),
        )
        written = (
            KvValueItem.version == old.version
            if old is not None
            else KvValueItem.pk.does_not_exist()
        )
        same_store = KvStoreItem.generation == store.generation
        if old is None:
            same_store = same_store & (KvStoreItem.item_count < limits.items_per_store)
        store_actions: list[Any] = [KvStoreItem.size.add(delta)]
        if old is None:
            store_actions.append(KvStoreItem.item_count.add(1))
        quota, actions, condition = _quota_change(user_id, 0, delta, limits)
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.save(item, condition=written)
                transaction.update(store, actions=store_actions, condition=same_store)
                transaction.update(quota, actions=actions, condition=condition)
        except TransactWriteError as error:
            codes = [*_codes(error), None, None, None]
            if codes[2] == "ConditionalCheckFailed":
                raise KvFailure("user's storage limit exceeded") from None
            if codes[1] == "ConditionalCheckFailed":
                if _store(user_id, name) is None:
                    raise KvFailure("store not found") from None
                if old is None:
                    raise KvFailure(
                        f"store {name!r} is full: a store holds at most "
                        f"{limits.items_per_store} items"
                    ) from None
                continue
            if codes[0] == "ConditionalCheckFailed":
                continue  # another write of this key came first: read again
            raise
        return old.value if old is not None else None
    raise KvFailure(f"key {key!r} is being written by others at the same time; try again")


def delete_item(user_id: str, name: str, key: str, limits: Limits) -> str | None:
    """Remove `key`; the value it held, None if there was none."""
    for _ in range(ATTEMPTS):
        store = _store(user_id, name)
        if store is None:
            raise KvFailure("store not found")
        old = _item(store, key)
        if old is None:
            return None
        quota, actions, _ = _quota_change(user_id, 0, -int(old.size), limits)
        try:
            with TransactWrite(connection=_transactions()) as transaction:
                transaction.delete(old, condition=KvValueItem.version == old.version)
                transaction.update(
                    store,
                    actions=[KvStoreItem.size.add(-old.size), KvStoreItem.item_count.add(-1)],
                    condition=KvStoreItem.generation == store.generation,
                )
                transaction.update(quota, actions=actions)
        except TransactWriteError as error:
            if "ConditionalCheckFailed" in _codes(error):
                continue
            raise
        return old.value
    raise KvFailure(f"key {key!r} is being written by others at the same time; try again")


def stores_of(user_id: str) -> list[KvStoreItem]:
    return list(
        KvStoreItem.query(
            f"USER#{user_id}", KvStoreItem.sk.startswith("STORE#"), consistent_read=True
        )
    )


def items_of(store: KvStoreItem) -> Iterator[KvValueItem]:
    return iter(KvValueItem.query(store.items_pk(), consistent_read=True))
