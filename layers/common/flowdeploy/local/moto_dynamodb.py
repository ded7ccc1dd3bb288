"""moto's DynamoDB made fit for a long-running local stack: isolated, exact and bounded.

Three things in moto 5 break `make dev` under load:

- Reads iterate a table's dicts while other threads write them (`dictionary changed size
  during iteration`), and a TransactWriteItems that fails puts back a copy of the table
  taken before it started, erasing every write other threads committed meanwhile.
  So every DynamoDB request runs alone (one lock around moto's request handler), as
  DynamoDB's own isolation makes it look to a client.
- moto deep-copies each table a transaction touches, once per item of the transaction,
  to roll back: a deploy into a table of large deployments copied megabytes per request.
  Under the lock only the transaction's own items can change, so those are all it saves.
- Every model object moto creates is kept forever in a per-class list (for its dashboard),
  including the copies above and the copies each Query and Scan makes of every item they
  return: memory grew with every request (17 GB was seen). DynamoDB models are not kept.

The cost: requests to the local DynamoDB are served one at a time (moto holds the GIL for
nearly all of a request anyway), and moto's dashboard lists no DynamoDB items.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

_requests = threading.RLock()
_rolling_back = threading.local()


class _NotKept(list[Any]):
    """A list that keeps nothing: moto appends every model instance it creates."""

    def append(self, _: Any) -> None:
        return None


def patch() -> None:
    """Apply the three fixes to moto's DynamoDB (idempotent; in-process and server alike)."""
    from moto.core.model_instances import model_data
    from moto.dynamodb.models import DynamoDBBackend  # also registers the model classes
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    # moto's reset (each new mock) hands every class a fresh list: set ours every time.
    for model in model_data["dynamodb"].values():
        if not isinstance(model.instances_tracked, _NotKept):  # type: ignore[attr-defined]
            model.instances_tracked = _NotKept()  # type: ignore[attr-defined]
    if getattr(DynamoHandler.call_action, "_one_at_a_time", False):
        return

    handle: Callable[..., Any] = DynamoHandler.call_action

    def one_at_a_time(self: Any) -> Any:
        with _requests:
            return handle(self)

    one_at_a_time._one_at_a_time = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]

    transact: Callable[..., Any] = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        with _requests:
            saved = _save_items(self, transact_items)
            _rolling_back.active = True
            try:
                return transact(self, transact_items)
            except Exception:
                _restore_items(saved)
                raise
            finally:
                _rolling_back.active = False

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    table_copy: Callable[..., Any] | None = getattr(Table, "__deepcopy__", None)

    def deepcopy_table(self: Any, memo: dict[int, Any]) -> Any:
        """Inside a transaction moto's table "backup" is the table itself (see above)."""
        if getattr(_rolling_back, "active", False):
            return self
        if table_copy is not None:
            return table_copy(self, memo)
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        for name, value in vars(self).items():
            setattr(copied, name, copy.deepcopy(value, memo))
        return copied

    Table.__deepcopy__ = deepcopy_table  # type: ignore[attr-defined]


_Saved = list[tuple[Any, Any, Any, Any]]  # (table, hash key, range key, item before or None)


def _save_items(backend: Any, transact_items: list[dict[str, Any]]) -> _Saved:
    """A copy of each item the transaction may write, as it is before the transaction."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: _Saved = []
    for entry in transact_items:
        kind, operation = next(iter(entry.items()))
        table = backend.tables.get(operation.get("TableName"))
        if table is None or kind not in {"Put", "Update", "Delete"}:
            continue
        source = operation["Item"] if kind == "Put" else operation.get("Key", {})
        if table.hash_key_attr not in source:
            continue  # moto refuses it before writing anything
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in source:
                continue
            range_key = DynamoType(source[table.range_key_attr])
        before = table.get_item(hash_key, range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(before)))
    return saved


def _restore_items(saved: _Saved) -> None:
    for table, hash_key, range_key, before in reversed(saved):
        if before is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = before
        else:
            table.items[hash_key] = before
