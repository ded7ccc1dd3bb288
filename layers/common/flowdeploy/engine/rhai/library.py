"""The functions and methods scripts may call: Rhai's standard ones that flows use, and those
upstream's engine registers (`Decimal`, `json_encode`, `base58_encode`, `sha256`, …).

Each takes the caller (to call back into the script) and the arguments; a method call
`x.f(a)` is `f(x, a)`. A method that changes a string in place (Rhai's `trim`, `replace`…)
returns Changed, and the caller writes the new string back where it came from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cmp_to_key
from typing import Any, Protocol

from flowdeploy import base58
from flowdeploy.engine.rhai.operators import binary, contains, equals, not_found
from flowdeploy.engine.rhai.runtime import (
    I64_MAX,
    I64_MIN,
    UNIT,
    Char,
    FnPtr,
    Range,
    RhaiError,
    Wide,
    clone,
    decimal,
    to_debug,
    to_text,
    truthy,
    type_name,
)

PI = math.pi
E = math.e


class Caller(Protocol):
    def call(self, fn: Any, *args: Any) -> Any: ...

    def log(self, text: str) -> None: ...

    def sized(self, value: Any) -> Any: ...


@dataclass(slots=True)
class Changed:
    """A method's new value for its target (a string changed in place) and its result."""

    value: Any
    result: Any = UNIT


Function = Callable[[Caller, list[Any]], Any]
FUNCTIONS: dict[str, Function] = {}
# Names Rhai has that scripts here cannot use, with what to say at save time.
UNSUPPORTED = {
    "eval": "eval()",
    "exit": "exit()",
    "sleep": "sleep()",
    "is_def_var": "is_def_var() (scope introspection)",
    "is_def_fn": "is_def_fn() (scope introspection)",
    "get_fn_metadata_list": "function metadata",
    "is_shared": "shared values",
    "shared": "shared values",
    "take": "take()",
    "set_tag": "tags on values",
    "tag": "tags on values",
}


def function(*names: str) -> Callable[[Function], Function]:
    def register(fn: Function) -> Function:
        for name in names:
            FUNCTIONS[name] = fn
        return fn

    return register


def _arity(name: str, args: list[Any], *counts: int) -> None:
    if len(args) not in counts:
        raise not_found(name, *args)


def _int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise RhaiError(f"{what} must be an integer (i64), got {type_name(value)}")
    return value


def _string(value: Any, what: str) -> str:
    if isinstance(value, Char):
        return value.c
    if not isinstance(value, str):
        raise RhaiError(f"{what} must be a string, got {type_name(value)}")
    return value


def as_map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RhaiError(f"expected an object map, got {type_name(value)}")
    return value


# -- properties, indexing, iteration -----------------------------------------------------

_PROPERTIES = {"len", "is_empty", "is_odd", "is_even", "is_zero", "floor", "ceiling", "round",
               "int", "fraction", "is_nan", "is_finite", "is_infinite", "bytes"}  # fmt: skip


def get_property(value: Any, name: str) -> Any:
    """`value.name`: a map's entry (() when absent), or a property getter."""
    if isinstance(value, dict):
        return value.get(name, UNIT)
    if name in _PROPERTIES and name in FUNCTIONS:
        try:
            return FUNCTIONS[name](_NO_CALLER, [value])
        except RhaiError:
            pass
    raise RhaiError(f"property not found: {name} ({type_name(value)})")


def _position(index: int, length: int) -> int:
    position = index + length if index < 0 else index
    if not 0 <= position < length:
        raise RhaiError(f"index {index} out of bounds: length {length}")
    return position


def get_item(value: Any, key: Any) -> Any:
    if isinstance(value, list):
        return value[_position(_int(key, "an array index"), len(value))]
    if isinstance(value, dict):
        return value.get(_string(key, "an object map key"), UNIT)
    if isinstance(value, str):
        return Char(value[_position(_int(key, "a string index"), len(value))])
    if isinstance(value, bytearray):
        return value[_position(_int(key, "a blob index"), len(value))]
    raise RhaiError(f"cannot index into {type_name(value)}")


def set_item(container: Any, key: Any, value: Any) -> None:
    if isinstance(container, list):
        container[_position(_int(key, "an array index"), len(container))] = value
    elif isinstance(container, dict):
        container[_string(key, "an object map key")] = value
    elif isinstance(container, bytearray):
        container[_position(_int(key, "a blob index"), len(container))] = (
            _int(value, "a byte") & 255
        )
    else:
        raise RhaiError(f"cannot set an element of {type_name(container)}")


def iterate(value: Any) -> Iterable[Any]:
    if isinstance(value, list):
        return [clone(item) for item in value]
    if isinstance(value, Range):
        return value.items()
    if isinstance(value, str):
        return [Char(c) for c in value]
    if isinstance(value, bytearray):
        return list(value)
    raise RhaiError(f"cannot iterate over {type_name(value)}")


class _NoCaller:
    def call(self, fn: Any, *args: Any) -> Any:
        raise RhaiError("a property cannot call functions")

    def log(self, text: str) -> None:
        pass

    def sized(self, value: Any) -> Any:
        return value


_NO_CALLER = _NoCaller()


# -- general --------------------------------------------------------------------------------


@function("type_of")
def _type_of(caller: Caller, args: list[Any]) -> Any:
    _arity("type_of", args, 1)
    return type_name(args[0])


@function("print", "debug")
def _print(caller: Caller, args: list[Any]) -> Any:
    caller.log(" ".join(to_text(a) if isinstance(a, str) else to_debug(a) for a in args))
    return UNIT


@function("to_string")
def _to_string(caller: Caller, args: list[Any]) -> Any:
    _arity("to_string", args, 1)
    return to_text(args[0])


@function("to_debug")
def _to_debug(caller: Caller, args: list[Any]) -> Any:
    _arity("to_debug", args, 1)
    return to_debug(args[0])


@function("Fn")
def _fn(caller: Caller, args: list[Any]) -> Any:
    _arity("Fn", args, 1)
    return FnPtr(_string(args[0], "Fn's name"))


@function("call")
def _call(caller: Caller, args: list[Any]) -> Any:
    if not args:
        raise not_found("call")
    return caller.call(args[0], *args[1:])


@function("curry")
def _curry(caller: Caller, args: list[Any]) -> Any:
    if not args or not isinstance(args[0], FnPtr):
        raise not_found("curry", *args)
    fn = args[0]
    return FnPtr(fn.name, fn.function, [*fn.curried, *args[1:]], fn.params)


@function("range")
def _range(caller: Caller, args: list[Any]) -> Any:
    _arity("range", args, 2, 3)
    start, end = _int(args[0], "range's start"), _int(args[1], "range's end")
    step = _int(args[2], "range's step") if len(args) == 3 else 1
    if step == 0:
        raise RhaiError("range's step cannot be 0")
    return Range(start, end, False, step)


@function("timestamp")
def _timestamp(caller: Caller, args: list[Any]) -> Any:
    _arity("timestamp", args, 0)
    return int(time.time())


@function("utc_now")
def _utc_now(caller: Caller, args: list[Any]) -> Any:
    _arity("utc_now", args, 0)
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 UTC"


@function("rand::rand")
def _rand(caller: Caller, args: list[Any]) -> Any:
    _arity("rand::rand", args, 0, 2)
    if not args:
        return random.randint(I64_MIN, I64_MAX)  # noqa: S311 - not for secrets
    return random.randint(_int(args[0], "rand's min"), _int(args[1], "rand's max"))  # noqa: S311


@function("rand::rand_float")
def _rand_float(caller: Caller, args: list[Any]) -> Any:
    _arity("rand::rand_float", args, 0)
    return random.random()  # noqa: S311


@function("rand::rand_bool")
def _rand_bool(caller: Caller, args: list[Any]) -> Any:
    _arity("rand::rand_bool", args, 0)
    return random.random() < 0.5  # noqa: S311


# -- numbers --------------------------------------------------------------------------------


def _decimal_of(value: Any, what: str = "Decimal") -> Decimal:
    """Upstream's `Decimal(x)`: numbers, and text (scientific notation too)."""
    if isinstance(value, Decimal):
        return value
    if type(value) is int:
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RhaiError(f"{what}: {to_text(value)} is not a finite number")
        return decimal(Decimal(repr(value)), lambda: f"{what}: {value} is out of range")
    if isinstance(value, Wide):
        return decimal(Decimal(value.value), lambda: f"{what}: {value.value} is out of range")
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise RhaiError(f"{what}: {value!r} is not a decimal number") from None
        return decimal(parsed, lambda: f"{what}: {value!r} is out of range")
    raise RhaiError(f"{what}: cannot make a decimal of {type_name(value)}")


@function("Decimal")
def _decimal(caller: Caller, args: list[Any]) -> Any:
    _arity("Decimal", args, 1)
    return _decimal_of(args[0])


@function("parse_decimal")
def _parse_decimal(caller: Caller, args: list[Any]) -> Any:
    _arity("parse_decimal", args, 1)
    return _decimal_of(_string(args[0], "parse_decimal's argument"), "parse_decimal")


@function("to_decimal")
def _to_decimal(caller: Caller, args: list[Any]) -> Any:
    _arity("to_decimal", args, 1)
    if isinstance(args[0], str):
        raise not_found("to_decimal", *args)
    return _decimal_of(args[0], "to_decimal")


@function("parse_int")
def _parse_int(caller: Caller, args: list[Any]) -> Any:
    _arity("parse_int", args, 1, 2)
    text = _string(args[0], "parse_int's argument").strip()
    radix = _int(args[1], "parse_int's radix") if len(args) == 2 else 10
    if not 2 <= radix <= 36:
        raise RhaiError(f"parse_int: radix {radix} is not 2 to 36")
    try:
        value = int(text, radix)
        if "_" in text or (text[:1] not in "+-" and not text[:1].isalnum()):
            raise ValueError
    except ValueError:
        raise RhaiError(f"Error parsing integer number '{text}': invalid digit") from None
    if not I64_MIN <= value <= I64_MAX:
        raise RhaiError(f"Error parsing integer number '{text}': too large for i64")
    return value


@function("parse_float")
def _parse_float(caller: Caller, args: list[Any]) -> Any:
    _arity("parse_float", args, 1)
    text = _string(args[0], "parse_float's argument").strip()
    try:
        if "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        raise RhaiError(f"Error parsing floating-point number '{text}'") from None


@function("to_int")
def _to_int(caller: Caller, args: list[Any]) -> Any:
    _arity("to_int", args, 1)
    value = args[0]
    if type(value) is int:
        return value
    if isinstance(value, Char):
        return ord(value.c)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise RhaiError(f"Integer overflow: to_int({to_text(value)})")
        truncated = int(value)
        if not I64_MIN <= truncated <= I64_MAX:
            raise RhaiError(f"Integer overflow: to_int({to_text(value)})")
        return truncated
    raise not_found("to_int", value)


@function("to_float")
def _to_float(caller: Caller, args: list[Any]) -> Any:
    _arity("to_float", args, 1)
    value = args[0]
    if type(value) in (int, float, Decimal):
        return float(value)
    raise not_found("to_float", value)


def _numeric(name: str, on_int: Callable[[int], Any] | None, on_float: Callable[[float], Any],
             on_decimal: Callable[[Decimal], Any] | None) -> None:  # fmt: skip
    def run(caller: Caller, args: list[Any]) -> Any:
        _arity(name, args, 1)
        value = args[0]
        if type(value) is int and on_int is not None:
            return on_int(value)
        if isinstance(value, float):
            return on_float(value)
        if isinstance(value, Decimal) and on_decimal is not None:
            return on_decimal(value)
        raise not_found(name, value)

    FUNCTIONS[name] = run


def _abs_int(value: int) -> int:
    if value == I64_MIN:
        raise RhaiError(f"Negation overflow: -{value}")
    return abs(value)


def _sign(value: Any) -> int:
    if isinstance(value, float) and math.isnan(value):
        raise RhaiError("Sign of NaN is undefined")
    return int(value > 0) - int(value < 0)


def _float_int(value: float) -> float:
    return float(math.trunc(value)) if math.isfinite(value) else value


_numeric("abs", _abs_int, abs, abs)
_numeric("sign", _sign, _sign, _sign)
_numeric("floor", None, lambda x: float(math.floor(x)) if math.isfinite(x) else x,
         lambda d: d.to_integral_value(rounding="ROUND_FLOOR"))  # fmt: skip
_numeric("ceiling", None, lambda x: float(math.ceil(x)) if math.isfinite(x) else x,
         lambda d: d.to_integral_value(rounding="ROUND_CEILING"))  # fmt: skip
_numeric("int", None, _float_int, lambda d: d.to_integral_value(rounding="ROUND_DOWN"))
_numeric(
    "fraction", None, lambda x: x - _float_int(x), lambda d: d - d.to_integral_value("ROUND_DOWN")
)
_numeric("sqrt", None, lambda x: math.sqrt(x) if x >= 0 else math.nan, None)
_numeric("exp", None, lambda x: math.exp(min(x, 709.0)), None)
_numeric("ln", None, lambda x: math.log(x) if x > 0 else math.nan, None)
_numeric("is_nan", None, math.isnan, None)
_numeric("is_finite", None, math.isfinite, None)
_numeric("is_infinite", None, math.isinf, None)
_numeric("is_zero", lambda i: i == 0, lambda x: x == 0, lambda d: d == 0)
_numeric("is_odd", lambda i: i % 2 != 0, lambda x: False, None)
_numeric("is_even", lambda i: i % 2 == 0, lambda x: False, None)


@function("round")
def _round(caller: Caller, args: list[Any]) -> Any:
    _arity("round", args, 1, 2)
    value = args[0]
    if isinstance(value, float) and len(args) == 1:
        if not math.isfinite(value):
            return value
        return float(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)
    if isinstance(value, Decimal):
        places = _int(args[1], "round's decimal places") if len(args) == 2 else 0
        if not 0 <= places <= 28:
            raise RhaiError(f"round: {places} decimal places is not 0 to 28")
        return value.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_EVEN")
    raise not_found("round", *args)


def _pick(name: str) -> Function:
    def run(caller: Caller, args: list[Any]) -> Any:
        _arity(name, args, 2)
        first, second = args
        first_is_smaller = binary("<=", first, second, None)
        return first if first_is_smaller == (name == "min") else second

    return run


FUNCTIONS["min"] = _pick("min")
FUNCTIONS["max"] = _pick("max")


# -- containers: arrays, strings, maps, blobs -----------------------------------------------


@function("len")
def _len(caller: Caller, args: list[Any]) -> Any:
    _arity("len", args, 1)
    value = args[0]
    if isinstance(value, str | list | dict | bytearray):
        return len(value)
    raise not_found("len", value)


@function("is_empty")
def _is_empty(caller: Caller, args: list[Any]) -> Any:
    return _len(caller, args) == 0


@function("push", "append")
def _push(caller: Caller, args: list[Any]) -> Any:
    _arity("push", args, 2)
    target, item = args
    if isinstance(target, list):
        target.append(clone(item))
        return UNIT
    if isinstance(target, bytearray):
        target.append(_int(item, "a byte") & 255)
        return UNIT
    if isinstance(target, str):
        return Changed(target + to_text(item))
    raise not_found("push", *args)


@function("pop")
def _pop(caller: Caller, args: list[Any]) -> Any:
    _arity("pop", args, 1)
    target = args[0]
    if isinstance(target, list | bytearray):
        return target.pop() if target else UNIT
    if isinstance(target, str):
        return Changed(target[:-1], Char(target[-1]) if target else UNIT)
    raise not_found("pop", *args)


@function("shift")
def _shift(caller: Caller, args: list[Any]) -> Any:
    _arity("shift", args, 1)
    if isinstance(args[0], list):
        return args[0].pop(0) if args[0] else UNIT
    raise not_found("shift", *args)


@function("insert")
def _insert(caller: Caller, args: list[Any]) -> Any:
    _arity("insert", args, 3)
    target, index, item = args
    if not isinstance(target, list):
        raise not_found("insert", *args)
    position = _int(index, "insert's position")
    if position < 0:
        position = max(0, len(target) + position)
    target.insert(min(position, len(target)), clone(item))
    return UNIT


@function("remove")
def _remove(caller: Caller, args: list[Any]) -> Any:
    _arity("remove", args, 2)
    target, key = args
    if isinstance(target, list):
        index = _int(key, "remove's index")
        if -len(target) <= index < len(target):
            return target.pop(index)
        return UNIT
    if isinstance(target, dict):
        return target.pop(_string(key, "remove's key"), UNIT)
    if isinstance(target, str):
        return Changed(target.replace(_string(key, "remove's text"), ""))
    raise not_found("remove", *args)


@function("clear")
def _clear(caller: Caller, args: list[Any]) -> Any:
    _arity("clear", args, 1)
    target = args[0]
    if isinstance(target, list | dict | bytearray):
        target.clear()
        return UNIT
    if isinstance(target, str):
        return Changed("")
    raise not_found("clear", *args)


@function("truncate")
def _truncate(caller: Caller, args: list[Any]) -> Any:
    _arity("truncate", args, 2)
    target, size = args[0], max(0, _int(args[1], "truncate's length"))
    if isinstance(target, list | bytearray):
        del target[size:]
        return UNIT
    if isinstance(target, str):
        return Changed(target[:size])
    raise not_found("truncate", *args)


@function("reverse")
def _reverse(caller: Caller, args: list[Any]) -> Any:
    _arity("reverse", args, 1)
    if isinstance(args[0], list | bytearray):
        args[0].reverse()
        return UNIT
    raise not_found("reverse", *args)


@function("contains")
def _contains(caller: Caller, args: list[Any]) -> Any:
    _arity("contains", args, 2)
    return contains(args[0], args[1])


@function("get")
def _get(caller: Caller, args: list[Any]) -> Any:
    _arity("get", args, 2)
    target, key = args
    try:
        return get_item(target, key)
    except RhaiError:
        if isinstance(target, list | str | bytearray) and type(key) is int:
            return UNIT
        raise


@function("set")
def _set(caller: Caller, args: list[Any]) -> Any:
    _arity("set", args, 3)
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
    _arity("map", args, 2)
    items = _array("map", args[0])
    return caller.sized([_with_index(caller, args[1], x, i) for i, x in enumerate(items)])


@function("filter")
def _filter(caller: Caller, args: list[Any]) -> Any:
    _arity("filter", args, 2)
    items = _array("filter", args[0])
    return [clone(x) for i, x in enumerate(items) if _test(caller, args[1], x, i, "filter")]


def _test(caller: Caller, fn: Any, item: Any, index: int, name: str) -> bool:
    return truthy(_with_index(caller, fn, item, index), f"{name}'s function result")


@function("find")
def _find(caller: Caller, args: list[Any]) -> Any:
    _arity("find", args, 2)
    for index, item in enumerate(_array("find", args[0])):
        if _test(caller, args[1], item, index, "find"):
            return clone(item)
    return UNIT


@function("find_map")
def _find_map(caller: Caller, args: list[Any]) -> Any:
    _arity("find_map", args, 2)
    for index, item in enumerate(_array("find_map", args[0])):
        found = _with_index(caller, args[1], item, index)
        if found is not UNIT:
            return found
    return UNIT


@function("index_of")
def _index_of(caller: Caller, args: list[Any]) -> Any:
    _arity("index_of", args, 2)
    target, wanted = args
    if isinstance(target, str):
        return target.find(_string(wanted, "index_of's text"))
    for index, item in enumerate(_array("index_of", target)):
        if isinstance(wanted, FnPtr):
            if _test(caller, wanted, item, index, "index_of"):
                return index
        elif equals(item, wanted):
            return index
    return -1


@function("some")
def _some(caller: Caller, args: list[Any]) -> Any:
    _arity("some", args, 2)
    return any(_test(caller, args[1], x, i, "some") for i, x in enumerate(_array("some", args[0])))


@function("all")
def _all(caller: Caller, args: list[Any]) -> Any:
    _arity("all", args, 2)
    return all(_test(caller, args[1], x, i, "all") for i, x in enumerate(_array("all", args[0])))


@function("reduce")
def _reduce(caller: Caller, args: list[Any]) -> Any:
    _arity("reduce", args, 2, 3)
    accumulated = args[2] if len(args) == 3 else UNIT
    for item in _array("reduce", args[0]):
        accumulated = caller.call(args[1], accumulated, item)
    return accumulated


@function("for_each")
def _for_each(caller: Caller, args: list[Any]) -> Any:
    _arity("for_each", args, 2)
    for index, item in enumerate(_array("for_each", args[0])):
        _with_index(caller, args[1], item, index)
    return UNIT


@function("retain")
def _retain(caller: Caller, args: list[Any]) -> Any:
    _arity("retain", args, 2)
    items = _array("retain", args[0])
    kept = [x for i, x in enumerate(items) if _test(caller, args[1], x, i, "retain")]
    removed = [x for x in items if not any(x is k for k in kept)]
    items[:] = kept
    return removed


@function("extract")
def _extract(caller: Caller, args: list[Any]) -> Any:
    _arity("extract", args, 2, 3)
    items = _array("extract", args[0])
    start = _int(args[1], "extract's start")
    start = max(0, len(items) + start) if start < 0 else min(start, len(items))
    end = len(items) if len(args) == 2 else start + max(0, _int(args[2], "extract's length"))
    return clone(items[start:end])


@function("sort")
def _sort(caller: Caller, args: list[Any]) -> Any:
    _arity("sort", args, 1, 2)
    items = _array("sort", args[0])
    if len(args) == 2:
        fn = args[1]

        def compare(a: Any, b: Any) -> int:
            result = caller.call(fn, a, b)
            return _int(result, "sort's comparer result")

        items.sort(key=cmp_to_key(compare))
        return UNIT
    kinds = {type(item) for item in items}
    if len(kinds) > 1 or not kinds <= {int, float, str, bool, Decimal, Char}:
        raise RhaiError("sort: without a comparer, elements must all be numbers, strings or chars")
    items.sort(key=lambda item: item.c if isinstance(item, Char) else item)
    return UNIT


@function("dedup")
def _dedup(caller: Caller, args: list[Any]) -> Any:
    _arity("dedup", args, 1)
    items = _array("dedup", args[0])
    kept: list[Any] = []
    for item in items:
        if not kept or not equals(kept[-1], item):
            kept.append(item)
    items[:] = kept
    return UNIT


@function("split")
def _split(caller: Caller, args: list[Any]) -> Any:
    _arity("split", args, 1, 2)
    target = args[0]
    if isinstance(target, str):
        if len(args) == 1:
            return target.split()
        separator = args[1]
        if type(separator) is int:  # split at a position
            position = max(0, min(len(target), separator))
            return [target[:position], target[position:]]
        text = _string(separator, "split's separator")
        return caller.sized(list(target) if text == "" else target.split(text))
    raise not_found("split", *args)


@function("to_upper")
def _to_upper(caller: Caller, args: list[Any]) -> Any:
    _arity("to_upper", args, 1)
    value = args[0]
    return Char(value.c.upper()) if isinstance(value, Char) else _string(value, "to_upper").upper()


@function("to_lower")
def _to_lower(caller: Caller, args: list[Any]) -> Any:
    _arity("to_lower", args, 1)
    value = args[0]
    return Char(value.c.lower()) if isinstance(value, Char) else _string(value, "to_lower").lower()


@function("make_upper")
def _make_upper(caller: Caller, args: list[Any]) -> Any:
    _arity("make_upper", args, 1)
    return Changed(_string(args[0], "make_upper").upper())


@function("make_lower")
def _make_lower(caller: Caller, args: list[Any]) -> Any:
    _arity("make_lower", args, 1)
    return Changed(_string(args[0], "make_lower").lower())


@function("trim")
def _trim(caller: Caller, args: list[Any]) -> Any:
    _arity("trim", args, 1)
    return Changed(_string(args[0], "trim").strip())


@function("replace")
def _replace(caller: Caller, args: list[Any]) -> Any:
    _arity("replace", args, 3)
    text = _string(args[0], "replace")
    old, new = _string(args[1], "replace's pattern"), _string(args[2], "replace's replacement")
    return Changed(caller.sized(text.replace(old, new)))


@function("starts_with")
def _starts_with(caller: Caller, args: list[Any]) -> Any:
    _arity("starts_with", args, 2)
    return _string(args[0], "starts_with").startswith(_string(args[1], "starts_with's text"))


@function("ends_with")
def _ends_with(caller: Caller, args: list[Any]) -> Any:
    _arity("ends_with", args, 2)
    return _string(args[0], "ends_with").endswith(_string(args[1], "ends_with's text"))


@function("sub_string")
def _sub_string(caller: Caller, args: list[Any]) -> Any:
    _arity("sub_string", args, 2, 3)
    text = _string(args[0], "sub_string")
    start = _int(args[1], "sub_string's start")
    start = max(0, len(text) + start) if start < 0 else min(start, len(text))
    if len(args) == 2:
        return text[start:]
    return text[start : start + max(0, _int(args[2], "sub_string's length"))]


@function("to_chars")
def _to_chars(caller: Caller, args: list[Any]) -> Any:
    _arity("to_chars", args, 1)
    return [Char(c) for c in _string(args[0], "to_chars")]


@function("chars")
def _chars(caller: Caller, args: list[Any]) -> Any:
    return _to_chars(caller, args)


@function("pad")
def _pad(caller: Caller, args: list[Any]) -> Any:
    _arity("pad", args, 3)
    target, length, filler = args[0], _int(args[1], "pad's length"), args[2]
    if isinstance(target, list):
        while len(target) < length:
            target.append(clone(filler))
            caller.sized(target)
        return UNIT
    text = _string(target, "pad")
    fill = _string(filler, "pad's filler")
    if fill and len(text) < length:
        text = caller.sized(text + (fill * (length - len(text)))[: length - len(text)])
    return Changed(text)


@function("bytes")
def _bytes(caller: Caller, args: list[Any]) -> Any:
    _arity("bytes", args, 1)
    return len(_string(args[0], "bytes").encode())


@function("keys")
def _keys(caller: Caller, args: list[Any]) -> Any:
    _arity("keys", args, 1)
    return list(as_map(args[0]))


@function("values")
def _values(caller: Caller, args: list[Any]) -> Any:
    _arity("values", args, 1)
    return [clone(value) for value in as_map(args[0]).values()]


@function("mixin", "merge")
def _mixin(caller: Caller, args: list[Any]) -> Any:
    _arity("mixin", args, 2)
    as_map(args[0]).update(clone(as_map(args[1])))
    return UNIT


@function("fill_with")
def _fill_with(caller: Caller, args: list[Any]) -> Any:
    _arity("fill_with", args, 2)
    target = as_map(args[0])
    for key, value in as_map(args[1]).items():
        target.setdefault(key, clone(value))
    return UNIT


@function("blob")
def _blob(caller: Caller, args: list[Any]) -> Any:
    _arity("blob", args, 0, 1, 2)
    size = _int(args[0], "blob's size") if args else 0
    fill = _int(args[1], "blob's byte") & 255 if len(args) == 2 else 0
    return caller.sized(bytearray([fill]) * max(0, min(size, 10_000_001)))


@function("to_blob")
def _to_blob(caller: Caller, args: list[Any]) -> Any:
    _arity("to_blob", args, 1)
    return bytearray(_string(args[0], "to_blob").encode())


@function("to_array")
def _to_array(caller: Caller, args: list[Any]) -> Any:
    _arity("to_array", args, 1)
    if isinstance(args[0], bytearray):
        return list(args[0])
    raise not_found("to_array", *args)


# -- upstream's additions: encodings, JSON, hashes ------------------------------------------


def _blob_of(value: Any, what: str) -> bytes:
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, list) and all(type(b) is int and 0 <= b < 256 for b in value):
        return bytes(value)
    raise RhaiError(f"{what} takes a blob, got {type_name(value)}")


@function("base58_encode")
def _base58_encode(caller: Caller, args: list[Any]) -> Any:
    _arity("base58_encode", args, 1)
    return base58.encode(_blob_of(args[0], "base58_encode"))


@function("base58_decode")
def _base58_decode(caller: Caller, args: list[Any]) -> Any:
    _arity("base58_decode", args, 1)
    try:
        return bytearray(base58.decode(_string(args[0], "base58_decode")))
    except ValueError as error:
        raise RhaiError(f"base58 decode error: {error}") from None


@function("hex_encode")
def _hex_encode(caller: Caller, args: list[Any]) -> Any:
    _arity("hex_encode", args, 1)
    return _blob_of(args[0], "hex_encode").hex()


@function("hex_decode")
def _hex_decode(caller: Caller, args: list[Any]) -> Any:
    _arity("hex_decode", args, 1)
    try:
        return bytearray(bytes.fromhex(_string(args[0], "hex_decode")))
    except ValueError as error:
        raise RhaiError(f"hex decode error: {error}") from None


@function("sha256")
def _sha256(caller: Caller, args: list[Any]) -> Any:
    _arity("sha256", args, 1)
    value = args[0]
    data = value.encode() if isinstance(value, str) else _blob_of(value, "sha256")
    return hashlib.sha256(data).hexdigest()


def _to_json(value: Any) -> Any:
    if value is UNIT:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RhaiError(f"json encode error: {to_text(value)} is not a JSON number")
        return value
    if isinstance(value, Decimal):
        return float(value)  # upstream converts through its Value's JSON form
    if isinstance(value, Char):
        return value.c
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, bytearray):
        return base64.b64encode(value).decode()
    raise RhaiError(f"json encode error: unknown type: {type_name(value)}")


@function("json_encode", "to_json")
def _json_encode(caller: Caller, args: list[Any]) -> Any:
    _arity("json_encode", args, 1)
    return caller.sized(json.dumps(_to_json(args[0]), separators=(",", ":"), ensure_ascii=False))


def _from_json(value: Any) -> Any:
    if value is None:
        return UNIT
    if isinstance(value, int) and not isinstance(value, bool):
        return value if I64_MIN <= value <= I64_MAX else float(value)
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _from_json(item) for key, item in value.items()}
    return value


@function("json_decode", "parse_json")
def _json_decode(caller: Caller, args: list[Any]) -> Any:
    _arity("json_decode", args, 1)
    try:
        parsed = json.loads(_string(args[0], "json_decode"))
    except (ValueError, RecursionError) as error:
        raise RhaiError(f"json decode error: {error}") from None
    return caller.sized(_from_json(parsed))


__all__ = ["FUNCTIONS", "UNSUPPORTED", "Changed"]
