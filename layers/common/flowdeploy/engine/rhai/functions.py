"""The registry of the functions scripts may call, and the helpers they share: each takes
the caller (to call back into the script) and the arguments; a method call `x.f(a)` is
`f(x, a)`. A method that changes a string in place (Rhai's `trim`, `replace`…) returns
Changed, and the caller writes the new string back where it came from."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from flowdeploy.engine.rhai.operators import not_found
from flowdeploy.engine.rhai.runtime import (
    UNIT,
    Char,
    Range,
    RhaiError,
    clone,
    type_name,
)


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


def check_arity(name: str, args: list[Any], *counts: int) -> None:
    if len(args) not in counts:
        raise not_found(name, *args)


def as_int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise RhaiError(f"{what} must be an integer (i64), got {type_name(value)}")
    return value


def as_text(value: Any, what: str) -> str:
    if isinstance(value, Char):
        return value.c
    if not isinstance(value, str):
        raise RhaiError(f"{what} must be a string, got {type_name(value)}")
    return value


def as_map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RhaiError(f"expected an object map, got {type_name(value)}")
    return value


def _position(index: int, length: int) -> int:
    position = index + length if index < 0 else index
    if not 0 <= position < length:
        raise RhaiError(f"index {index} out of bounds: length {length}")
    return position


def get_item(value: Any, key: Any) -> Any:
    if isinstance(value, list):
        return value[_position(as_int(key, "an array index"), len(value))]
    if isinstance(value, dict):
        return value.get(as_text(key, "an object map key"), UNIT)
    if isinstance(value, str):
        return Char(value[_position(as_int(key, "a string index"), len(value))])
    if isinstance(value, bytearray):
        return value[_position(as_int(key, "a blob index"), len(value))]
    raise RhaiError(f"cannot index into {type_name(value)}")


def set_item(container: Any, key: Any, value: Any) -> None:
    if isinstance(container, list):
        container[_position(as_int(key, "an array index"), len(container))] = value
    elif isinstance(container, dict):
        container[as_text(key, "an object map key")] = value
    elif isinstance(container, bytearray):
        container[_position(as_int(key, "a blob index"), len(container))] = (
            as_int(value, "a byte") & 255
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
