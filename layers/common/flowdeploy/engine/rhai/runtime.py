"""Rhai's values, operators and limits, in plain Python.

Values: `()` is UNIT, `bool`, `int` (Rhai's i64: every result is checked, an overflow is
an error), `float` (f64), `Decimal` (rust_decimal: 96-bit mantissa, at most 28 decimals),
`str`, Char, `list` (array), `dict` (object map, insertion-ordered as upstream's build),
`bytearray` (blob), FnPtr (a named function or a closure), Wide (u128 / i128 inputs) and
Range. Arrays, maps and blobs have value semantics, as in Rhai: binding one copies it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation
from typing import Any

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
# rust_decimal: |mantissa| < 2^96, scale 0..=28.
DECIMAL_MANTISSA = 2**96
DECIMAL_SCALE = 28
DECIMAL_MAX = Decimal(DECIMAL_MANTISSA - 1)
_WIDE = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero])


@dataclass(frozen=True, slots=True)
class Limits:
    """What one script run may use; each exceeded limit is an error naming it."""

    steps: int = 1_000_000
    seconds: float = 5.0
    call_depth: int = 64
    string_chars: int = 1_000_000
    collection_items: int = 100_000
    variables: int = 1_000


LIMITS = Limits()
# How deep a script's syntax tree may nest (a chain of 100 `+` is 100 deep; upstream's engine
# allows expressions 32 deep), checked when compiling: with the call depth it bounds the
# interpreter's own recursion (call_depth x MAX_EXPR_DEPTH Python frames at most).
MAX_EXPR_DEPTH = 128
# Python frames the interpreter may need: calls 64 deep into bodies 128 deep. Pure Python
# calls take no C stack (Python 3.11+), so this only moves the RecursionError guard.
RECURSION_LIMIT = 12_000
MAX_SOURCE_CHARS = 100_000


class RhaiError(Exception):
    """A script failed; the message is what the node's error says."""


class LimitExceeded(RhaiError):
    pass


class Thrown(RhaiError):
    """`throw value`: catchable with try/catch."""

    def __init__(self, value: object) -> None:
        super().__init__(f"runtime error: {to_text(value)}")
        self.value = value


class _Unit:
    __slots__ = ()

    def __repr__(self) -> str:
        return "()"


UNIT: Any = _Unit()


@dataclass(frozen=True, slots=True)
class Char:
    c: str


@dataclass(frozen=True, slots=True)
class Wide:
    """A u128 (signed False) or i128 value, as upstream hands U1 / I1 inputs to scripts."""

    value: int
    signed: bool

    @property
    def type_name(self) -> str:
        return "i128" if self.signed else "u128"


@dataclass(frozen=True, slots=True)
class Range:
    """`a..b`, `a..=b`, or `range(a, b, step)`."""

    start: int
    end: int
    inclusive: bool
    step: int = 1

    def items(self) -> range:
        end = self.end + (1 if self.step > 0 else -1) if self.inclusive else self.end
        return range(self.start, end, self.step)

    def __contains__(self, value: object) -> bool:
        return type(value) is int and value in self.items()


@dataclass(slots=True)
class FnPtr:
    """`Fn("name")` or a closure (`function` set): called with `.call(...)` or `f(...)`."""

    name: str
    function: Callable[..., Any] | None = None
    curried: list[Any] = field(default_factory=list)
    params: int = -1  # a closure's parameter count


class Budget:
    """Counts a run's steps and call depth, checks its clock."""

    __slots__ = ("_deadline", "cancelled", "depth", "limits", "steps")

    def __init__(self, limits: Limits = LIMITS, cancelled: Callable[[], bool] | None = None):
        self.limits = limits
        self.steps = 0
        self.depth = 0
        self._deadline = time.monotonic() + limits.seconds
        self.cancelled = cancelled

    def step(self, count: int = 1) -> None:
        before = self.steps
        self.steps += count
        if self.steps > self.limits.steps:
            raise LimitExceeded(
                f"the script went past its limit of {self.limits.steps:,} operations"
            )
        if self.steps >> 10 != before >> 10:
            self.check_clock()

    def check_clock(self) -> None:
        if time.monotonic() > self._deadline:
            raise LimitExceeded(f"the script ran past its time limit of {self.limits.seconds:g} s")
        if self.cancelled is not None and self.cancelled():
            raise LimitExceeded("the script was stopped: the run ended")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.call_depth:
            raise LimitExceeded(
                f"function calls nest deeper than the limit of {self.limits.call_depth}"
            )

    def leave(self) -> None:
        self.depth -= 1

    def sized(self, value: Any) -> Any:
        """`value`, or LimitExceeded when it is a string or collection over its limit."""
        if isinstance(value, str) and len(value) > self.limits.string_chars:
            raise LimitExceeded(
                f"a string of {len(value):,} characters is over the limit of "
                f"{self.limits.string_chars:,}"
            )
        if isinstance(value, list | dict | bytearray) and (
            len(value) > self.limits.collection_items
        ):
            kind = {list: "an array", dict: "an object map"}.get(type(value), "a blob")
            raise LimitExceeded(
                f"{kind} of {len(value):,} items is over the limit of "
                f"{self.limits.collection_items:,}"
            )
        return value


def _items(value: Any, limit: int) -> int:
    """Items in `value`, nested collections counted, stopping once past `limit`."""
    total = 0
    pending = [value]
    while pending and total <= limit:
        current = pending.pop()
        if isinstance(current, list):
            total += len(current)
            pending.extend(item for item in current if isinstance(item, list | dict))
        elif isinstance(current, dict):
            total += len(current)
            pending.extend(item for item in current.values() if isinstance(item, list | dict))
        elif isinstance(current, bytearray):
            total += len(current)
    return total


# -- types ------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    """Rhai's `type_of`."""
    if value is UNIT:
        return "()"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "i64"
    if isinstance(value, float):
        return "f64"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Char):
        return "char"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, bytearray):
        return "blob"
    if isinstance(value, FnPtr):
        return "Fn"
    if isinstance(value, Wide):
        return value.type_name
    if isinstance(value, Range):
        return "range=" if value.inclusive else "range"
    return type(value).__name__


def is_int(value: Any) -> bool:
    return type(value) is int


def is_numeric(value: Any) -> bool:
    return type(value) in (int, float, Decimal) or isinstance(value, Wide)


_RUNNING = threading.local()  # the Budget of the script running on this thread


def running(budget: Budget | None) -> None:
    _RUNNING.budget = budget


def clone(value: Any) -> Any:
    """A copy of an array, map or blob (value semantics); other values are immutable. Each
    item copied costs the running script one operation, so copies cannot outgrow its
    operations limit (nor its memory)."""
    if not isinstance(value, list | dict | bytearray):
        return value
    copied = _copy(value)
    budget: Budget | None = getattr(_RUNNING, "budget", None)
    if budget is not None:
        budget.step(_items(copied, budget.limits.steps))
    return copied


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, bytearray):
        return bytearray(value)
    return value


def truthy(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RhaiError(f"{what} must be a bool, got {type_name(value)}")


# -- numbers --------------------------------------------------------------------------------


def checked_int(value: int, text: Callable[[], str]) -> int:
    if I64_MIN <= value <= I64_MAX:
        return value
    raise RhaiError(text())


def decimal(value: Decimal, what: Callable[[], str]) -> Decimal:
    """`value` fitted to rust_decimal: rounded (half even) to at most 28 decimals and to its
    96-bit mantissa; RhaiError(what()) when the integer part does not fit."""
    if not value.is_finite() or value.copy_abs() > DECIMAL_MAX:
        raise RhaiError(what())
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent >= 0:
        return Decimal(int(value))
    for scale in range(min(-exponent, DECIMAL_SCALE), -1, -1):
        fitted = value.quantize(Decimal((0, (1,), -scale)), ROUND_HALF_EVEN, _WIDE)
        if abs(int(fitted.scaleb(scale, _WIDE))) < DECIMAL_MANTISSA:
            return fitted
    raise RhaiError(what())


def decimal_text(value: Decimal) -> str:
    return f"{value:f}"


def float_text(value: float) -> str:
    """Rhai prints floats with a decimal point: 3.0, 0.5, 1e100 as 1e100."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e16:
        return f"{int(value)}.0"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def to_text(value: Any) -> str:
    """Rhai's `to_string` / string interpolation."""
    if isinstance(value, str):
        return value
    if value is UNIT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, Char):
        return value.c
    if isinstance(value, Wide):
        return str(value.value)
    return to_debug(value)


def to_debug(value: Any) -> str:
    """Rhai's debug form: strings quoted, arrays and maps spelled out."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Char):
        return repr(value.c)
    if value is UNIT:
        return "()"
    if isinstance(value, list):
        return "[" + ", ".join(to_debug(item) for item in value) + "]"
    if isinstance(value, dict):
        return "#{" + ", ".join(f"{k}: {to_debug(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytearray):
        return "[" + "".join(f"{b:02x}" for b in value) + "]"
    if isinstance(value, FnPtr):
        return f'Fn("{value.name}")' if value.function is None else "Fn(<closure>)"
    if isinstance(value, Range):
        return f"{value.start}..{'=' if value.inclusive else ''}{value.end}"
    return to_text(value)
