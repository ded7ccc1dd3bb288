"""Conversions between IValues and what node commands compute with.

Node inputs decode leniently, as upstream does: numeric tags interconvert when the value
fits, and JSON-shaped values (maps, arrays, scalars) convert to and from plain JSON.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from flowdeploy import base58
from flowdeploy.values import (
    ARRAY,
    BOOL,
    BYTES,
    DECIMAL,
    F64,
    MAP,
    NULL,
    STRING,
    TAGS,
    IValue,
    IValueError,
)

NUMERIC_TAGS = frozenset({"U", "I", "U1", "I1", F64, DECIMAL})
NULL_VALUE = IValue(NULL, None)


class Absent(IValue):
    """Null standing for a flow input the start did not give (and that has no default):
    wherever it reaches a node that needs a value, the error says which input was missing."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        super().__init__(NULL, None)
        object.__setattr__(self, "label", label)

    @property
    def reason(self) -> str:
        return f"flow input {self.label!r} was not given"  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IValue) and other.tag == NULL

    def __hash__(self) -> int:
        return hash((NULL, None))


# The largest string or byte value a node may produce; values feed each other, and doubling
# a string a few dozen times would otherwise exhaust the worker's memory.
MAX_VALUE_CHARS = 1_000_000


class ConversionError(ValueError):
    """An input value of the wrong kind; the message says what was expected."""


def bounded(text: str) -> IValue:
    """`text` as an S value, or ConversionError past MAX_VALUE_CHARS."""
    if len(text) > MAX_VALUE_CHARS:
        raise ConversionError(
            f"the result is {len(text)} characters; values stop at {MAX_VALUE_CHARS}"
        )
    return IValue(STRING, text)


def check_size(value: IValue, limit: int = MAX_VALUE_CHARS) -> IValue:
    """`value` unchanged, or ConversionError when its JSON would exceed `limit` characters."""
    budget = limit
    pending = [value]
    while pending:
        current = pending.pop()
        payload = current.value
        if isinstance(payload, list):
            pending.extend(payload)
            budget -= 2 + len(payload)
        elif isinstance(payload, dict):
            pending.extend(payload.values())
            budget -= 2 + sum(len(name) + 4 for name in payload)
        elif isinstance(payload, str | bytes):
            budget -= len(payload) + 8
        else:
            budget -= 16
        if budget < 0:
            raise ConversionError(f"the result is over {limit} characters of JSON")
    return value


def config_value(raw: object, path: str) -> IValue:
    """A node config value: an IValue document, or plain JSON (numbers become U/I/D)."""
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in TAGS:
        return IValue.from_json(raw, path)
    try:
        return from_plain(raw, path)
    except TypeError as error:
        raise IValueError(path, str(error)) from None


def from_plain(obj: object, path: str = "value") -> IValue:
    """Plain JSON data (as json.loads gives it, floats or Decimals) as an IValue.

    Numbers become U/I or D; one that neither can hold (1e30, 40 digits) becomes F.
    """
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return IValue(F64, obj)
        obj = Decimal(repr(obj))
    if isinstance(obj, int | Decimal) and not isinstance(obj, bool):
        try:
            return IValue.from_python(obj, path)
        except IValueError:
            number = float(obj)
            if not math.isfinite(number):
                raise
            return IValue(F64, number)
    if isinstance(obj, list):
        return IValue(ARRAY, [from_plain(item, f"{path}[{i}]") for i, item in enumerate(obj)])
    if isinstance(obj, dict):
        return IValue(MAP, {str(k): from_plain(v, f"{path}.{k}") for k, v in obj.items()})
    return IValue.from_python(obj, path)


def parse_json_text(text: str, path: str = "value") -> IValue:
    """JSON text as an IValue, keeping decimal precision."""
    try:
        return from_plain(json.loads(text, parse_float=Decimal), path)
    except (ValueError, RecursionError) as error:
        raise ConversionError(f"not valid JSON: {error}") from None


def parse_json_value(text: str, path: str = "value") -> IValue:
    """JSON text as upstream reads a JSON string into a value (`value::to_value`): integers
    become U (I when negative), every other number F."""
    try:
        return _serialized(json.loads(text), path)
    except (ValueError, RecursionError) as error:
        raise ConversionError(f"not valid JSON: {error}") from None


def _serialized(obj: object, path: str) -> IValue:
    if isinstance(obj, list):
        return IValue(ARRAY, [_serialized(item, f"{path}[{i}]") for i, item in enumerate(obj)])
    if isinstance(obj, dict):
        return IValue(MAP, {str(k): _serialized(v, f"{path}.{k}") for k, v in obj.items()})
    if isinstance(obj, int) and not isinstance(obj, bool):
        if 0 <= obj < 2**64:
            return IValue("U", obj)
        if -(2**63) <= obj < 0:
            return IValue("I", obj)
        obj = float(obj)
    if isinstance(obj, float):
        return IValue(F64, obj)
    return IValue.from_python(obj, path)


def to_plain(value: IValue) -> Any:
    """The IValue as plain JSON-able data: numbers stay numbers, bytes become text."""
    payload = value.value
    if isinstance(payload, list):
        return [to_plain(item) for item in payload]
    if isinstance(payload, dict):
        return {name: to_plain(item) for name, item in payload.items()}
    if isinstance(payload, Decimal):
        return int(payload) if payload == payload.to_integral_value() else float(payload)
    if isinstance(payload, bytes):
        if value.tag == BYTES:
            import base64

            return base64.b64encode(payload).decode("ascii")
        return base58.encode(payload)
    return payload


def to_text(value: IValue) -> str:
    """A value as text for messages and templates: strings raw, everything else as JSON."""
    if value.tag == STRING:
        return str(value.value)
    if value.tag in NUMERIC_TAGS:
        return str(value.to_json()[value.tag])
    return json.dumps(to_plain(value), ensure_ascii=False, separators=(",", ":"))


def to_decimal(value: IValue) -> Decimal:
    payload = value.value
    if value.tag in {"U", "I", "U1", "I1"} and isinstance(payload, int):
        return Decimal(payload)
    if value.tag == DECIMAL and isinstance(payload, Decimal):
        return payload
    if value.tag == F64 and isinstance(payload, float) and math.isfinite(payload):
        return Decimal(repr(payload))
    if value.tag == STRING and isinstance(payload, str):
        try:
            number = Decimal(payload.strip())
        except InvalidOperation:
            pass
        else:
            if number.is_finite():
                return number
    raise ConversionError(f"expected a number, got {describe(value)}")


def to_bool(value: IValue) -> bool:
    if value.tag == BOOL and isinstance(value.value, bool):
        return value.value
    raise ConversionError(f"expected a bool (B), got {describe(value)}")


def to_string(value: IValue) -> str:
    if value.tag == STRING and isinstance(value.value, str):
        return value.value
    raise ConversionError(f"expected a string (S), got {describe(value)}")


def decimal_value(number: Decimal) -> IValue:
    """A computed decimal as a D value, or ConversionError when it leaves D's range."""
    try:
        return IValue.from_python(number)
    except IValueError as error:
        raise ConversionError(f"result {number} is out of range: {error.reason}") from None


def describe(value: IValue) -> str:
    if isinstance(value, Absent):
        return f"nothing: {value.reason}"
    text = json.dumps(value.to_json(), separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."
