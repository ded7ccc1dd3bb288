"""The functions and methods scripts may call: Rhai's standard ones that flows use, and those
upstream's engine registers (`Decimal`, `json_encode`, `base58_encode`, `sha256`, …).
This module has properties and the general functions; numbers,
containers and encodings register theirs when imported below."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime
from typing import Any

from flowdeploy.engine.rhai.functions import (
    FUNCTIONS,
    UNSUPPORTED,
    Caller,
    Changed,
    as_int,
    as_map,
    as_text,
    check_arity,
    function,
    get_item,
    iterate,
    set_item,
)
from flowdeploy.engine.rhai.operators import not_found
from flowdeploy.engine.rhai.runtime import (
    I64_MAX,
    I64_MIN,
    UNIT,
    FnPtr,
    Range,
    RhaiError,
    to_debug,
    to_text,
    type_name,
)

PI = math.pi
E = math.e


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
    check_arity("type_of", args, 1)
    return type_name(args[0])


@function("print", "debug")
def _print(caller: Caller, args: list[Any]) -> Any:
    caller.log(" ".join(to_text(a) if isinstance(a, str) else to_debug(a) for a in args))
    return UNIT


@function("to_string")
def _to_string(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_string", args, 1)
    return to_text(args[0])


@function("to_debug")
def _to_debug(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_debug", args, 1)
    return to_debug(args[0])


@function("Fn")
def _fn(caller: Caller, args: list[Any]) -> Any:
    check_arity("Fn", args, 1)
    return FnPtr(as_text(args[0], "Fn's name"))


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
    check_arity("range", args, 2, 3)
    start, end = as_int(args[0], "range's start"), as_int(args[1], "range's end")
    step = as_int(args[2], "range's step") if len(args) == 3 else 1
    if step == 0:
        raise RhaiError("range's step cannot be 0")
    return Range(start, end, False, step)


@function("timestamp")
def _timestamp(caller: Caller, args: list[Any]) -> Any:
    check_arity("timestamp", args, 0)
    return int(time.time())


@function("utc_now")
def _utc_now(caller: Caller, args: list[Any]) -> Any:
    check_arity("utc_now", args, 0)
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 UTC"


@function("rand::rand")
def _rand(caller: Caller, args: list[Any]) -> Any:
    check_arity("rand::rand", args, 0, 2)
    if not args:
        return random.randint(I64_MIN, I64_MAX)  # noqa: S311 - not for secrets
    return random.randint(as_int(args[0], "rand's min"), as_int(args[1], "rand's max"))  # noqa: S311


@function("rand::rand_float")
def _rand_float(caller: Caller, args: list[Any]) -> Any:
    check_arity("rand::rand_float", args, 0)
    return random.random()  # noqa: S311


@function("rand::rand_bool")
def _rand_bool(caller: Caller, args: list[Any]) -> Any:
    check_arity("rand::rand_bool", args, 0)
    return random.random() < 0.5  # noqa: S311


from flowdeploy.engine.rhai import containers, encodings, numbers  # noqa: E402 - they register

__all__ = [
    "FUNCTIONS",
    "PI",
    "UNSUPPORTED",
    "Changed",
    "E",
    "as_map",
    "containers",
    "encodings",
    "get_item",
    "iterate",
    "numbers",
    "set_item",
]
