"""Key-value store nodes: the deployment owner's stores, kept in DynamoDB (`flowdeploy.kvstore`
states the limits)."""

from __future__ import annotations

from flowdeploy.engine.command import BOTH, Command, NodeContext, NodeError, Port, register
from flowdeploy.engine.convert import ConversionError, to_string
from flowdeploy.engine.services import KeyValueStore
from flowdeploy.values import BOOL, IValue

MAX_STORE_NAME_BYTES = 256
MAX_KEY_BYTES = 1_024


def store_name(value: IValue) -> str:
    name = to_string(value)
    if not 0 < len(name.encode()) <= MAX_STORE_NAME_BYTES:
        raise ConversionError(f"a store name is 1 to {MAX_STORE_NAME_BYTES} bytes")
    return name


def item_key(value: IValue) -> str:
    key = to_string(value)
    if not 0 < len(key.encode()) <= MAX_KEY_BYTES:
        raise ConversionError(f"a key is 1 to {MAX_KEY_BYTES} bytes")
    return key


def _store(ctx: NodeContext) -> KeyValueStore:
    store = ctx.services.kvstore
    if store is None:
        raise NodeError("this run has no key-value store")
    return store


STORE = Port("store", types=("string",), description="the store's name", rule=store_name)
KEY = Port("key", types=("string",), description="the item's key", rule=item_key)


@register
class CreateStore(Command):
    """Creates the store named `store` (an error if it exists or the quota is reached)."""

    name = "kv_create_store"
    formats = BOTH
    inputs = (Port(STORE.name, types=STORE.types, passthrough=True, rule=store_name),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        await _store(ctx).create_store(self.get(inputs, "store"))
        return {}


@register
class DeleteStore(Command):
    """Deletes the store named `store` with all its items (nothing happens if it does not
    exist)."""

    name = "kv_delete_store"
    formats = BOTH
    inputs = (Port(STORE.name, types=STORE.types, passthrough=True, rule=store_name),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        await _store(ctx).delete_store(self.get(inputs, "store"))
        return {}


@register
class ReadItem(Command):
    """The `value` stored at `key` in `store` and `found` true; when there is none, `default`
    with `found` false, or an error (`not found`) without a default."""

    name = "kv_read_item"
    formats = BOTH
    inputs = (STORE, KEY, Port("default", required=False, description="when the key is absent"))
    outputs = (Port("value"), Port("found", types=("bool",)))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        found = await _store(ctx).read_item(self.get(inputs, "store"), self.get(inputs, "key"))
        if found is not None:
            return {"value": found, "found": IValue(BOOL, True)}
        default = self.given(inputs, "default")
        if default is not None:
            return {"value": default, "found": IValue(BOOL, False)}
        raise NodeError("not found")


@register
class WriteItem(Command):
    """Stores `value` at `key` in `store` (which must exist); `old_value` is what it
    replaced, absent when the key is new."""

    name = "kv_write_item"
    formats = BOTH
    inputs = (
        Port("store", types=("string",), passthrough=True, rule=store_name),
        Port("key", types=("string",), passthrough=True, rule=item_key),
        Port("value", passthrough=True, description="the value to store"),
    )
    outputs = (Port("old_value", required=False, description="the value it replaced"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        old = await _store(ctx).write_item(
            self.get(inputs, "store"), self.get(inputs, "key"), inputs["value"]
        )
        return {} if old is None else {"old_value": old}


@register
class DeleteItem(Command):
    """Removes `key` from `store`; `old_value` is the value it held (an error, `not found`,
    when there was none). Upstream has the route (`/kv/delete_item`) but no node."""

    name = "kv_delete_item"
    formats = BOTH
    inputs = (
        Port("store", types=("string",), passthrough=True, rule=store_name),
        Port("key", types=("string",), passthrough=True, rule=item_key),
    )
    outputs = (Port("old_value", description="the value the key held"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        old = await _store(ctx).delete_item(self.get(inputs, "store"), self.get(inputs, "key"))
        if old is None:
            raise NodeError("not found")
        return {"old_value": old}
