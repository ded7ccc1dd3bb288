"""Rhai's binary operators: integer arithmetic checked for i64 overflow, decimals as
rust_decimal, floats compared with Rhai's relative epsilon, `==` across unlike types false
(and an error between unlike numbers, as Rhai has no such operator)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from decimal import Decimal, DecimalException
from typing import Any

from flowdeploy.engine.rhai.runtime import (
    _WIDE,
    I64_MAX,
    I64_MIN,
    UNIT,
    Budget,
    Char,
    FnPtr,
    Range,
    RhaiError,
    Wide,
    checked_int,
    clone,
    decimal,
    is_numeric,
    to_text,
    type_name,
)

EPSILON = sys.float_info.epsilon
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


def not_found(op: str, *values: Any) -> RhaiError:
    return RhaiError(f"function not found: {op} ({', '.join(type_name(v) for v in values)})")


def _trunc_div(x: int, y: int) -> int:
    quotient = abs(x) // abs(y)
    return quotient if (x < 0) == (y < 0) else -quotient


def _int_op(op: str, x: int, y: int) -> Any:
    if op == "+":
        return checked_int(x + y, lambda: f"Addition overflow: {x} + {y}")
    if op == "-":
        return checked_int(x - y, lambda: f"Subtraction overflow: {x} - {y}")
    if op == "*":
        return checked_int(x * y, lambda: f"Multiplication overflow: {x} * {y}")
    if op == "/":
        if y == 0:
            raise RhaiError(f"Division by zero: {x} / {y}")
        return checked_int(_trunc_div(x, y), lambda: f"Division overflow: {x} / {y}")
    if op == "%":
        if y == 0 or (x == I64_MIN and y == -1):
            raise RhaiError(f"Modulo division by zero or overflow: {x} % {y}")
        return x - y * _trunc_div(x, y)
    if op == "**":
        if y < 0:
            raise RhaiError(f"Integer raised to a negative power: {x} ** {y}")
        if y > 0xFFFFFFFF or (abs(x) > 1 and y > 64):
            raise RhaiError(f"Exponential overflow: {x} ** {y}")
        return checked_int(x**y, lambda: f"Exponential overflow: {x} ** {y}")
    if op in ("<<", ">>"):
        left = op == "<<"
        if y < 0:
            left, y = not left, -y
        if left:
            return 0 if y >= 64 else _wrap(x << y)
        return x >> min(y, 63)
    if op == "&":
        return x & y
    if op == "|":
        return x | y
    if op == "^":
        return x ^ y
    if op == "..":
        return Range(x, y, False)
    if op == "..=":
        return Range(x, y, True)
    return _compare(op, x, y)


def _wrap(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value > I64_MAX else value


def _compare(op: str, x: Any, y: Any) -> Any:
    if op == "==":
        return x == y
    if op == "!=":
        return x != y
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    if op == ">=":
        return x >= y
    return None


def _float_op(op: str, x: float, y: float) -> Any:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        if y == 0:
            return (
                math.nan
                if x == 0 or math.isnan(x)
                else math.copysign(math.inf, x) * (math.copysign(1, y))
            )
        return x / y
    if op == "%":
        return math.nan if y == 0 else math.fmod(x, y)
    if op == "**":
        try:
            return math.pow(x, y)
        except (OverflowError, ValueError):
            return math.inf if x > 0 else math.nan
    if op in COMPARISONS:
        # Rhai compares floats within a relative epsilon.
        big = 1.0 if x * y == 0 else max(abs(x), abs(y))
        if big == 0 or math.isnan(big):
            return {"==": big == 0, "!=": big != 0}.get(op, op in ("<=", ">=") and big == 0)
        difference = (x - y) / big
        return {
            "==": abs(difference) <= EPSILON,
            "!=": abs(difference) > EPSILON,
            ">": difference > EPSILON,
            ">=": difference > -EPSILON,
            "<": -difference > EPSILON,
            "<=": -difference > -EPSILON,
        }[op]
    return None


def _decimal_op(op: str, x: Decimal, y: Decimal) -> Any:
    def overflow(name: str, symbol: str) -> Callable[[], str]:
        return lambda: f"{name} overflow: {x} {symbol} {y}"

    try:
        if op == "+":
            return decimal(_WIDE.add(x, y), overflow("Addition", "+"))
        if op == "-":
            return decimal(_WIDE.subtract(x, y), overflow("Subtraction", "-"))
        if op == "*":
            return decimal(_WIDE.multiply(x, y), overflow("Multiplication", "*"))
        if op == "/":
            if y == 0:
                raise RhaiError(f"Division by zero: {x} / {y}")
            return decimal(_WIDE.divide(x, y), overflow("Division", "/"))
        if op == "%":
            if y == 0:
                raise RhaiError(f"Modulo division by zero or overflow: {x} % {y}")
            return decimal(_WIDE.remainder(x, y), overflow("Modulo", "%"))
        if op == "**":
            if y.to_integral_value() > 1_000_000:
                raise RhaiError(f"Exponential overflow: {x} ** {y}")
            return decimal(_WIDE.power(x, y), overflow("Exponential", "**"))
    except DecimalException:
        raise RhaiError(f"Arithmetic error: {x} {op} {y}") from None
    return _compare(op, x, y)


def _wide_op(op: str, x: Wide, y: Wide) -> Any:
    bits = 127 if x.signed else 128
    low, high = (-(2**bits), 2**bits - 1) if x.signed else (0, 2**bits - 1)
    a, b = x.value, y.value
    result: int
    if op in COMPARISONS:
        return _compare(op, a, b)
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b
    elif op in ("/", "%"):
        if b == 0:
            raise RhaiError(f"Division by zero: {a} {op} {b}")
        quotient = _trunc_div(a, b)
        result = quotient if op == "/" else a - b * quotient
    else:
        raise not_found(op, x, y)
    if not low <= result <= high:
        raise RhaiError(f"Arithmetic overflow: {a} {op} {b}")
    return Wide(result, x.signed)


def _equal_containers(x: Any, y: Any) -> bool:
    if isinstance(x, list):
        return len(x) == len(y) and all(equals(a, b) for a, b in zip(x, y, strict=True))
    return x.keys() == y.keys() and all(equals(x[k], y[k]) for k in x)


def equals(x: Any, y: Any) -> bool:
    result = binary("==", x, y, None)
    return result is True


def binary(op: str, x: Any, y: Any, budget: Budget | None) -> Any:
    """`x op y` as Rhai computes it (the short-circuit `&&`, `||` are the compiler's)."""
    tx, ty = type(x), type(y)
    if tx is int and ty is int:
        result = _int_op(op, x, y)
        if result is not None:
            return result
    elif tx is bool and ty is bool:
        if op == "&":
            return x and y
        if op == "|":
            return x or y
        if op == "^":
            return x != y
        if op in COMPARISONS:
            return _compare(op, x, y)
    elif tx is str and ty is str:
        if op == "+":
            return _sized(x + y, budget)
        if op == "-":
            return x.replace(y, "") if y else x
        if op in COMPARISONS:
            return _compare(op, x, y)
    elif tx is Decimal and ty in (Decimal, int):
        return _decimal_op(op, x, Decimal(y))
    elif tx is int and ty is Decimal:
        return _decimal_op(op, Decimal(x), y)
    elif tx in (float, int) and ty in (float, int):
        if op in ("..", "..="):
            raise not_found(op, x, y)
        result = _float_op(op, float(x), float(y))
        if result is not None:
            return result
    elif tx is Char and ty is Char:
        if op == "+":
            return x.c + y.c
        if op in COMPARISONS:
            return _compare(op, x.c, y.c)
    elif x is UNIT and y is UNIT:
        if op in COMPARISONS:
            return op in ("==", "<=", ">=") and op == "=="
    elif tx is Wide and ty is Wide and x.signed == y.signed:
        return _wide_op(op, x, y)
    elif tx is bytearray and ty is bytearray:
        if op == "+":
            return _sized(x + y, budget)
        if op in ("==", "!="):
            return (x == y) == (op == "==")
    elif tx is list and ty is list:
        if op == "+":
            return _sized(clone(x) + clone(y), budget)
        if op in ("==", "!="):
            return _equal_containers(x, y) == (op == "==")
    elif tx is dict and ty is dict:
        if op == "+":
            return _sized({**clone(x), **clone(y)}, budget)
        if op in ("==", "!="):
            return _equal_containers(x, y) == (op == "==")
    elif tx is Range and ty is Range and op in ("==", "!="):
        return (x == y) == (op == "==")
    if op == "+":
        # A string with anything: the other's text, as Rhai's string package appends it.
        if tx is str:
            return _sized(x + _appended(y), budget)
        if ty is str:
            return _sized(_appended(x) + y, budget)
        if tx is Char and ty is str:
            return _sized(x.c + y, budget)
        if tx is bytearray and ty is Char:
            return _sized(x + y.c.encode(), budget)
    if op in ("==", "!=") and tx is Char and ty is str:
        return (x.c == y) == (op == "==")
    if op in ("==", "!=") and tx is str and ty is Char:
        return (x == y.c) == (op == "==")
    if op in COMPARISONS and tx is not ty and not (is_numeric(x) and is_numeric(y)):
        # Unlike, non-numeric types: never equal, never ordered (Rhai's default operators).
        return op == "!="
    if op in ("==", "!=") and isinstance(x, FnPtr) and isinstance(y, FnPtr):
        return (x.name == y.name and x.function is y.function) == (op == "==")
    raise not_found(op, x, y)


def _appended(value: Any) -> str:
    return "" if value is UNIT else to_text(value)


def _sized(value: Any, budget: Budget | None) -> Any:
    return budget.sized(value) if budget is not None else value


def contains(container: Any, item: Any) -> bool:
    """`item in container`."""
    if isinstance(container, list):
        return any(equals(element, item) for element in container)
    if isinstance(container, str):
        if isinstance(item, Char):
            return item.c in container
        if isinstance(item, str):
            return item in container
    if isinstance(container, dict) and isinstance(item, str | Char):
        return (item.c if isinstance(item, Char) else item) in container
    if isinstance(container, Range):
        return item in container
    if isinstance(container, bytearray) and type(item) is int:
        return item in container
    raise not_found("in", item, container)


def unary(op: str, value: Any) -> Any:
    if op == "!":
        if isinstance(value, bool):
            return not value
        raise not_found("!", value)
    if op == "+":
        if is_numeric(value) and not isinstance(value, bool):
            return value
        raise not_found("+", value)
    kind = type(value)
    if kind is int:
        return checked_int(-value, lambda: f"Negation overflow: -{value}")
    if kind in (float, Decimal):
        return -value
    if kind is Wide and value.signed:
        return _wide_op("-", Wide(0, True), value)
    raise not_found("-", value)


__all__ = ["I64_MAX", "binary", "contains", "equals", "not_found", "unary"]
