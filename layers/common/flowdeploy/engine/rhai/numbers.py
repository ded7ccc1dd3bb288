"""Numbers: conversions, parsing, rounding and the math scripts use."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from flowdeploy.engine.rhai.functions import (
    FUNCTIONS,
    Caller,
    Function,
    as_int,
    as_text,
    check_arity,
    function,
)
from flowdeploy.engine.rhai.operators import binary, not_found
from flowdeploy.engine.rhai.runtime import (
    I64_MAX,
    I64_MIN,
    Char,
    RhaiError,
    Wide,
    decimal,
    to_text,
    type_name,
)

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
    check_arity("Decimal", args, 1)
    return _decimal_of(args[0])


@function("parse_decimal")
def _parse_decimal(caller: Caller, args: list[Any]) -> Any:
    check_arity("parse_decimal", args, 1)
    return _decimal_of(as_text(args[0], "parse_decimal's argument"), "parse_decimal")


@function("to_decimal")
def _to_decimal(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_decimal", args, 1)
    if isinstance(args[0], str):
        raise not_found("to_decimal", *args)
    return _decimal_of(args[0], "to_decimal")


@function("parse_int")
def _parse_int(caller: Caller, args: list[Any]) -> Any:
    check_arity("parse_int", args, 1, 2)
    text = as_text(args[0], "parse_int's argument").strip()
    radix = as_int(args[1], "parse_int's radix") if len(args) == 2 else 10
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
    check_arity("parse_float", args, 1)
    text = as_text(args[0], "parse_float's argument").strip()
    try:
        if "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        raise RhaiError(f"Error parsing floating-point number '{text}'") from None


@function("to_int")
def _to_int(caller: Caller, args: list[Any]) -> Any:
    check_arity("to_int", args, 1)
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
    check_arity("to_float", args, 1)
    value = args[0]
    if type(value) in (int, float, Decimal):
        return float(value)
    raise not_found("to_float", value)


def _numeric(name: str, on_int: Callable[[int], Any] | None, on_float: Callable[[float], Any],
             on_decimal: Callable[[Decimal], Any] | None) -> None:  # fmt: skip
    def run(caller: Caller, args: list[Any]) -> Any:
        check_arity(name, args, 1)
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
    check_arity("round", args, 1, 2)
    value = args[0]
    if isinstance(value, float) and len(args) == 1:
        if not math.isfinite(value):
            return value
        return float(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)
    if isinstance(value, Decimal):
        places = as_int(args[1], "round's decimal places") if len(args) == 2 else 0
        if not 0 <= places <= 28:
            raise RhaiError(f"round: {places} decimal places is not 0 to 28")
        return value.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_EVEN")
    raise not_found("round", *args)


def _pick(name: str) -> Function:
    def run(caller: Caller, args: list[Any]) -> Any:
        check_arity(name, args, 2)
        first, second = args
        first_is_smaller = binary("<=", first, second, None)
        return first if first_is_smaller == (name == "min") else second

    return run


FUNCTIONS["min"] = _pick("min")
FUNCTIONS["max"] = _pick("max")
