"""Arrays, strings, object maps and blobs: their methods."""

from __future__ import annotations

from decimal import Decimal
from functools import cmp_to_key
from typing import Any

from flowdeploy.engine.rhai.functions import (
    Caller,
    Changed,
    as_int,
    as_map,
    as_text,
    check_arity,
    function,
    get_item,
    set_item,
)
from flowdeploy.engine.rhai.operators import contains, equals, not_found
from flowdeploy.engine.rhai.runtime import (
    UNIT,
    Char,
    FnPtr,
    RhaiError,
    clone,
    to_text,
    truthy,
    type_name,
)

# -- containers: arrays, strings, maps, blobs -----------------------------------------------


@function("len")
def _len(caller: Caller, args: list[Any]) -> Any:
    check_arity("len", args, 1)
    value = args[0]
    if isinstance(value, str | list | dict | bytearray):
        return len(value)
    raise not_found("len", value)


@function("is_empty")
def _is_empty(caller: Caller, args: list[Any]) -> Any:
    return _len(caller, args) == 0


@function("push", "append")
def _push(caller: Caller, args: list[Any]) -> Any:
    check_arity("push", args, 2)
    target, item = args
    if isinstance(target, list):
        target.append(clone(item))
        return UNIT
    if isinstance(target, bytearray):
        target.append(as_int(item, "a byte") & 255)
        return UNIT
    if isinstance(target, str):
        return Changed(target + to_text(item))
    raise not_found("push", *args)


@function("pop")
def _pop(caller: Caller, args: list[Any]) -> Any:
    check_arity("pop", args, 1)
    target = args[0]
    if isinstance(target, list | bytearray):
        return target.pop() if target else UNIT
    if isinstance(target, str):
        return Changed(target[:-1], Char(target[-1]) if target else UNIT)
    raise not_found("pop", *args)


@function("shift")
def _shift(caller: Caller, args: list[Any]) -> Any:
    check_arity("shift", args, 1)
    if isinstance(args[0], list):
        return args[0].pop(0) if args[0] else UNIT
    raise not_found("shift", *args)


@function("insert")
def _insert(caller: Caller, args: list[Any]) -> Any:
    check_arity("insert", args, 3)
    target, index, item = args
    if not isinstance(target, list):
        raise not_found("insert", *args)
    position = as_int(index, "insert's position")
    if position < 0:
        position = max(0, len(target) + position)
    target.insert(min(position, len(target)), clone(item))
    return UNIT


@function("remove")
def _remove(caller: Caller, args: list[Any]) -> Any:
    check_arity("remove", args, 2)
    target, key = args
    if isinstance(target, list):
        index = as_int(key, "remove's index")
        if -len(target) <= index < len(target):
            return target.pop(index)
        return UNIT
    if isinstance(target, dict):
        return target.pop(as_text(key, "remove's key"), UNIT)
    if isinstance(target, str):
        return Changed(target.replace(as_text(key, "remove's text"), ""))
    raise not_found("remove", *args)


@function("clear")
def _clear(caller: Caller, args: list[Any]) -> Any:
    check_arity("clear", args, 1)
    target = args[0]
    if isinstance(target, list | dict | bytearray):
        target.clear()
        return UNIT
    if isinstance(target, str):
        return Changed("")
    raise not_found("clear", *args)


@function("truncate")
def _truncate(caller: Caller, args: list[Any]) -> Any:
    check_arity("truncate", args, 2)
    target, size = args[0], max(0, as_int(args[1], "truncate's length"))
    if isinstance(target, list | bytearray):
        del target[size:]
        return UNIT
    if isinstance(target, str):
        return Changed(target[:size])
    raise not_found("truncate", *args)


@function("reverse")
def _reverse(caller: Caller, args: list[Any]) -> Any:
    check_arity("reverse", args, 1)
    if isinstance(args[0], list | bytearray):
        args[0].reverse()
        return UNIT
    raise not_found("reverse", *args)


@function("contains")
def _contains(caller: Caller, args: list[Any]) -> Any:
    check_arity("contains", args, 2)
    return contains(args[0], args[1])


@function("get")
def _get(caller: Caller, args: list[Any]) -> Any:
    check_arity("get", args, 2)
    target, key = args
    try:
        return get_item(target, key)
    except RhaiError:
        if isinstance(target, list | str | bytearray) and type(key) is int:
            return UNIT
        raise


@function("set")
def _set(caller: Caller, args: list[Any]) -> Any:
    check_arity("set", args, 3)
    set_item(args[0], args[1], clone(args[2]))
    return UNIT


def _array(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise RhaiError(f"{name}: expected an array, got {type_name(value)}")
    return value


def _with_index(caller: Caller, fn: Any, item: Any, index: int) -> Any:
    """Calls `fn` with the element, and its index when `fn` takes two parameters."""
    if isinstance(fn, FnPtr) and fn.params - len(fn.curried) == 2:
        return caller.call(fn, item, index)
    return caller.call(fn, item)


@function("map")
def _map(caller: Caller, args: list[Any]) -> Any:
    check_arity("map", args, 2)
    items = _array("map", args[0])
    return caller.sized([_with_index(caller, args[1], x, i) for i, x in enumerate(items)])


@function("filter")
def _filter(caller: Caller, args: list[Any]) -> Any:
    check_arity("filter", args, 2)
    items = _array("filter", args[0])
    return [clone(x) for i, x in enumerate(items) if _test(caller, args[1], x, i, "filter")]


def _test(caller: Caller, fn: Any, item: Any, index: int, name: str) -> bool:
    return truthy(_with_index(caller, fn, item, index), f"{name}'s function result")


@function("find")
def _find(caller: Caller, args: list[Any]) -> Any:
    check_arity("find", args, 2)
    for index, item in enumerate(_array("find", args[0])):
        if _test(caller, args[1], item, index, "find"):
            return clone(item)
    return UNIT


@function("find_map")
def _find_map(caller: Caller, args: list[Any]) -> Any:
    check_arity("find_map", args, 2)
    for index, item in enumerate(_array("find_map", args[0])):
        found = _with_index(caller, args[1], item, index)
        if found is not UNIT:
            return found
    return UNIT


@function("index_of")
def _index_of(caller: Caller, args: list[Any]) -> Any:
    check_arity("index_of", args, 2)
    target, wanted = args
    if isinstance(target, str):
        return target.find(as_text(wanted, "index_of's text"))
    for index, item in enumerate(_array("index_of", target)):
        if isinstance(wanted, FnPtr):
            if _test(caller, wanted, item, index, "index_of"):
                return index
        elif equals(item, wanted):
            return index
    return -1


@function("some")
def _some(caller: Caller, args: list[Any]) -> Any:
    check_arity("some", args, 2)
    return any(_test(caller, args[1], x, i, "some") for i, x in enumerate(_array("some", args[0])))


@function("all")
def _all(caller: Caller, args: list[Any]) -> Any:
    check_arity("all", args, 2)
    return all(_test(caller, args[1], x, i, "all") for i, x in enumerate(_array("all", args[0])))


@function("reduce")
def _reduce(caller: Caller, args: list[Any]) -> Any:
    check_arity("reduce", args, 2, 3)
    accumulated = args[2] if len(args) == 3 else UNIT
    for item in _array("reduce", args[0]):
        accumulated = caller.call(args[1], accumulated, item)
    return accumulated


@function("for_each")
def _for_each(caller: Caller, args: list[Any]) -> Any:
    check_arity("for_each", args, 2)
    for index, item in enumerate(_array("for_each", args[0])):
        _with_index(caller, args[1], item, index)
    return UNIT


@function("retain")
def _retain(caller: Caller, args: list[Any]) -> Any:
    check_arity("retain", args, 2)
    items = _array("retain", args[0])
    kept = [x for i, x in enumerate(items) if _test(caller, args[1], x, i, "retain")]
    removed = [x for x in items if not any(x is k for k in kept)]
    items[:] = kept
    return removed


@function("extract")
def _extract(caller: Caller, args: list[Any]) -> Any:
    check_arity("extract", args, 2, 3)
    items = _array("extract", args[0])
    start = as_int(args[1], "extract's start")
    start = max(0, len(items) + start) if start < 0 else min(start, len(items))
    end = len(items) if len(args) == 2 else start + max(0, as_int(args[2], "extract's length"))
    return clone(items[start:end])


@function("sort")
def _sort(caller: Caller, args: list[Any]) -> Any:
    check_arity("sort", args, 1, 2)
    items = _array("sort", args[0])
    if len(args) == 2:
        fn = args[1]

        def compare(a: Any, b: Any) -> int:
            result = caller.call(fn, a, b)
            return as_int(result, "sort's comparer result")

        items.sort(key=cmp_to_key(compare))
        return UNIT
    kinds = {type(item) for item in items}
    if len(kinds) > 1 or not kinds <= {int, float, str, bool, Decimal, Char}:
        raise RhaiError("sort: without a comparer, elements must all be numbers, strings or chars")
    items.sort(key=lambda item: item.c if isinstance(item, Char) else item)
    return UNIT


@function("dedup")
def _dedup(caller: Caller, args: list[Any]) -> Any:
    check_arity("dedup", args, 1)
    items = _array("dedup", args[0])
    kept: list[Any] = []
    for item in items:
        if not kept or not equals(kept[-1], item):
            kept.append(item)
    items[:] = kept
    return UNIT


@function("split")
def _split(caller: Caller, args: list[Any]) -> Any:
    check_arity("split", args, 1, 2)
    target = args[0]
    if isinstance(target, str):
        if len(args) == 1:
            return target.split()
        separator = args[1]
        if type(separator) is int:  # split at a position
            position = max(0, min(len(target), separator))
            return [target[:position], target[position:]]
        text = as_text(separator, "split's separator")
        return caller.sized(list(target) if text == "" else target.split(text))
    raise not_found("split", *args)


@function("to_upper")
def _to_upper(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_upper", args, 1)
    value = args[0]
    return Char(value.c.upper()) if isinstance(value, Char) else as_text(value, "to_upper").upper()


@function("to_lower")
def _to_lower(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_lower", args, 1)
    value = args[0]
    return Char(value.c.lower()) if isinstance(value, Char) else as_text(value, "to_lower").lower()


@function("make_upper")
def _make_upper(caller: Caller, args: list[Any]) -> Any:
    check_arity("make_upper", args, 1)
    return Changed(as_text(args[0], "make_upper").upper())


@function("make_lower")
def _make_lower(caller: Caller, args: list[Any]) -> Any:
    check_arity("make_lower", args, 1)
    return Changed(as_text(args[0], "make_lower").lower())


@function("trim")
def _trim(caller: Caller, args: list[Any]) -> Any:
    check_arity("trim", args, 1)
    return Changed(as_text(args[0], "trim").strip())


@function("replace")
def _replace(caller: Caller, args: list[Any]) -> Any:
    check_arity("replace", args, 3)
    text = as_text(args[0], "replace")
    old, new = as_text(args[1], "replace's pattern"), as_text(args[2], "replace's replacement")
    return Changed(caller.sized(text.replace(old, new)))


@function("starts_with")
def _starts_with(caller: Caller, args: list[Any]) -> Any:
    check_arity("starts_with", args, 2)
    return as_text(args[0], "starts_with").startswith(as_text(args[1], "starts_with's text"))


@function("ends_with")
def _ends_with(caller: Caller, args: list[Any]) -> Any:
    check_arity("ends_with", args, 2)
    return as_text(args[0], "ends_with").endswith(as_text(args[1], "ends_with's text"))


@function("sub_string")
def _sub_string(caller: Caller, args: list[Any]) -> Any:
    check_arity("sub_string", args, 2, 3)
    text = as_text(args[0], "sub_string")
    start = as_int(args[1], "sub_string's start")
    start = max(0, len(text) + start) if start < 0 else min(start, len(text))
    if len(args) == 2:
        return text[start:]
    return text[start : start + max(0, as_int(args[2], "sub_string's length"))]


@function("to_chars")
def _to_chars(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_chars", args, 1)
    return [Char(c) for c in as_text(args[0], "to_chars")]


@function("chars")
def _chars(caller: Caller, args: list[Any]) -> Any:
    return _to_chars(caller, args)


@function("pad")
def _pad(caller: Caller, args: list[Any]) -> Any:
    check_arity("pad", args, 3)
    target, length, filler = args[0], as_int(args[1], "pad's length"), args[2]
    if isinstance(target, list):
        while len(target) < length:
            target.append(clone(filler))
            caller.sized(target)
        return UNIT
    text = as_text(target, "pad")
    fill = as_text(filler, "pad's filler")
    if fill and len(text) < length:
        text = caller.sized(text + (fill * (length - len(text)))[: length - len(text)])
    return Changed(text)


@function("bytes")
def _bytes(caller: Caller, args: list[Any]) -> Any:
    check_arity("bytes", args, 1)
    return len(as_text(args[0], "bytes").encode())


@function("keys")
def _keys(caller: Caller, args: list[Any]) -> Any:
    check_arity("keys", args, 1)
    return list(as_map(args[0]))


@function("values")
def _values(caller: Caller, args: list[Any]) -> Any:
    check_arity("values", args, 1)
    return [clone(value) for value in as_map(args[0]).values()]


@function("mixin", "merge")
def _mixin(caller: Caller, args: list[Any]) -> Any:
    check_arity("mixin", args, 2)
    as_map(args[0]).update(clone(as_map(args[1])))
    return UNIT


@function("fill_with")
def _fill_with(caller: Caller, args: list[Any]) -> Any:
    check_arity("fill_with", args, 2)
    target = as_map(args[0])
    for key, value in as_map(args[1]).items():
        target.setdefault(key, clone(value))
    return UNIT


@function("blob")
def _blob(caller: Caller, args: list[Any]) -> Any:
    check_arity("blob", args, 0, 1, 2)
    size = as_int(args[0], "blob's size") if args else 0
    fill = as_int(args[1], "blob's byte") & 255 if len(args) == 2 else 0
    return caller.sized(bytearray([fill]) * max(0, min(size, 10_000_001)))


@function("to_blob")
def _to_blob(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_blob", args, 1)
    return bytearray(as_text(args[0], "to_blob").encode())


@function("to_array")
def _to_array(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_array", args, 1)
    if isinstance(args[0], bytearray):
        return list(args[0])
    raise not_found("to_array", *args)
