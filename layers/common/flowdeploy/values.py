"""IValue, Space Operator's JSON encoding of flow values: strict decoding, canonical encoding.

Every value is a JSON object with exactly one key naming its type, e.g. `{"U": "100"}`:

    N null (payload 0)   S string        B bool          U u64 "100"     I i64 "-5"
    U1 u128 "..."        I1 i128 "..."   F f64 "1e16"    D decimal "3.14"
    B3 32 bytes base58   B6 64 bytes base58              BY bytes, padded standard base64
    A [IValue, ...]      M {name: IValue, ...}

Integers, floats and decimals travel as strings so JavaScript clients keep their precision.
Standard library only: this module sits on Lambda cold-start paths.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, Final, TypeAlias

from flowdeploy import base58

__all__ = [
    "ARRAY",
    "B32",
    "B64",
    "BOOL",
    "BYTES",
    "DECIMAL",
    "F64",
    "I64",
    "I128",
    "MAP",
    "MAX_DEPTH",
    "NULL",
    "STRING",
    "TAGS",
    "U64",
    "U128",
    "IValue",
    "IValueError",
    "decode_map",
    "encode_map",
]

# Named after the upstream Rust `Value` variants they encode.
NULL: Final = "N"
STRING: Final = "S"
BOOL: Final = "B"
U64: Final = "U"
I64: Final = "I"
F64: Final = "F"
DECIMAL: Final = "D"
U128: Final = "U1"
I128: Final = "I1"
B32: Final = "B3"
B64: Final = "B6"
BYTES: Final = "BY"
ARRAY: Final = "A"
MAP: Final = "M"

_TAG_ORDER: Final = (
    NULL, STRING, BOOL, U64, I64, F64, DECIMAL, U128, I128, B32, B64, BYTES, ARRAY, MAP,
)  # fmt: skip
TAGS: Final = frozenset(_TAG_ORDER)

# Deep enough for any real flow input, shallow enough that recursion can never hit Python's limit.
MAX_DEPTH: Final = 64

Payload: TypeAlias = (
    "str | bool | int | float | Decimal | bytes | list[IValue] | dict[str, IValue] | None"
)

_PAYLOAD_TYPES: Final[dict[str, type]] = {
    NULL: type(None),
    STRING: str,
    BOOL: bool,
    U64: int,
    I64: int,
    U128: int,
    I128: int,
    F64: float,
    DECIMAL: Decimal,
    B32: bytes,
    B64: bytes,
    BYTES: bytes,
    ARRAY: list,
    MAP: dict,
}

_INT_RANGES: Final = {
    U64: (0, 2**64 - 1, "u64"),
    I64: (-(2**63), 2**63 - 1, "i64"),
    U128: (0, 2**128 - 1, "u128"),
    I128: (-(2**127), 2**127 - 1, "i128"),
}
_FIXED_LENGTHS: Final = {B32: 32, B64: 64}

# rust_decimal: a 96-bit mantissa (at most 29 digits) and at most 28 fractional digits.
_DECIMAL_MANTISSA_LIMIT: Final = 2**96
_DECIMAL_MAX_DIGITS: Final = 29
_DECIMAL_MAX_SCALE: Final = 28

# Length caps keep int()/Decimal()/float() linear-cost and clear of Python's int digit limit;
# every in-range canonical value is far shorter.
_MAX_INTEGER_TEXT: Final = 64
_MAX_DECIMAL_TEXT: Final = 64
_MAX_FLOAT_TEXT: Final = 1024

# ASCII [0-9] on purpose: `\d` would also accept other scripts' digits, which Rust rejects.
_UNSIGNED: Final = re.compile(r"[0-9]+")
_SIGNED: Final = re.compile(r"-?[0-9]+")
_DECIMAL_TEXT: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Python's float() syntax minus whitespace, underscores and non-ASCII digits, so that what we
# accept is also what Rust's f64 parser accepts.
_FLOAT_TEXT: Final = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


class IValueError(ValueError):
    """A value that is not valid IValue; `str(err)` is f"{path}: {reason}"."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[IValueError], tuple[str, str]]:
        # The default reduce would call __init__ with the formatted message only.
        return (IValueError, (self.path, self.reason))


@dataclass(frozen=True, slots=True)
class IValue:
    """One flow value: `tag` is one of TAGS, `value` its Python payload (None, str, bool, int,
    float, Decimal, bytes, list[IValue] or dict[str, IValue]); checked on construction."""

    tag: str
    value: Payload
    # Nesting height, kept so every IValue is known to be at most MAX_DEPTH deep and the
    # recursive encoders below can never overflow the stack.
    _depth: int = field(default=1, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expected = _PAYLOAD_TYPES.get(self.tag)
        if expected is None:
            raise ValueError(f"unknown IValue tag {self.tag!r}")
        if type(self.value) is not expected:
            raise TypeError(
                f"{self.tag} payload must be {expected.__name__}, got {type(self.value).__name__}"
            )
        problem = _payload_problem(self.tag, self.value)
        if problem is not None:
            raise IValueError("value", problem)
        object.__setattr__(self, "_depth", 1 + _children_depth(self.value))

    @classmethod
    def from_json(cls, doc: object, path: str = "value") -> IValue:
        """Decode an IValue JSON document strictly; IValueError names the offending path."""
        return _decode(doc, path, 1)

    def to_json(self) -> dict[str, Any]:
        """The canonical IValue JSON document; from_json(doc).to_json() == doc when canonical."""
        value = self.value
        payload: Any
        if isinstance(value, list):
            payload = [item.to_json() for item in value]
        elif isinstance(value, dict):
            payload = {name: item.to_json() for name, item in value.items()}
        elif value is None:
            payload = 0
        elif isinstance(value, bool | str):
            payload = value
        elif isinstance(value, int):
            payload = str(value)
        elif isinstance(value, float):
            payload = _format_f64(value)
        elif isinstance(value, Decimal):
            # Fixed-point keeps the scale ("1.50") and never uses exponents, unlike str().
            payload = f"{value:f}"
        elif self.tag == BYTES:
            payload = base64.b64encode(value).decode("ascii")
        else:
            payload = base58.encode(value)
        return {self.tag: payload}

    def to_python(self) -> object:
        """The payload as plain Python: arrays become lists and maps dicts, recursively."""
        value = self.value
        if isinstance(value, list):
            return [item.to_python() for item in value]
        if isinstance(value, dict):
            return {name: item.to_python() for name, item in value.items()}
        return value

    @classmethod
    def from_python(cls, obj: object, path: str = "value") -> IValue:
        """Wrap plain Python data (see module docs for the mapping); TypeError if unsupported,
        IValueError if out of range. IValues inside `obj` are kept as they are."""
        return _from_python(obj, path, 1)


def decode_map(doc: object, path: str) -> dict[str, IValue]:
    """Decode a bare JSON object of name -> IValue (e.g. a start request's `inputs`)."""
    if not isinstance(doc, dict):
        raise IValueError(path, f"expected a JSON object of name -> IValue, got {_kind(doc)}")
    return _decode_members(doc, path, 1)


def encode_map(values: dict[str, IValue]) -> dict[str, dict[str, Any]]:
    """The JSON object of name -> IValue document; the inverse of decode_map."""
    return {name: value.to_json() for name, value in values.items()}


# --- checks shared by construction and decoding ---------------------------------------------


def _payload_problem(tag: str, value: object) -> str | None:
    """Why a payload of the right Python type is still invalid for `tag`, or None."""
    if tag in _INT_RANGES and isinstance(value, int):
        low, high, name = _INT_RANGES[tag]
        if not low <= value <= high:
            return f'{tag} value "{value}" is out of range for {name}'
    elif tag in _FIXED_LENGTHS and isinstance(value, bytes):
        size = _FIXED_LENGTHS[tag]
        if len(value) != size:
            return f"{tag} value must be {size} bytes, got {len(value)} bytes"
    elif isinstance(value, Decimal):
        return _decimal_problem(value)
    return None


def _decimal_problem(value: Decimal) -> str | None:
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN and infinities carry a letter here
        return f"D value {_quote(str(value))} is not a finite decimal"
    if exponent > 0:
        return f"D value {_quote(str(value))} has a negative scale; write it out in full"
    if -exponent > _DECIMAL_MAX_SCALE:
        return (
            f'D value "{value:f}" has {-exponent} decimal places; '
            f"at most {_DECIMAL_MAX_SCALE} are allowed"
        )
    # Counting digits first keeps int() away from absurdly long coefficients.
    if len(digits) > _DECIMAL_MAX_DIGITS or (
        int("".join(map(str, digits))) >= _DECIMAL_MANTISSA_LIMIT
    ):
        return f'D value "{value:f}" is out of range for a decimal (mantissa must be below 2^96)'
    return None


def _children_depth(value: object) -> int:
    if isinstance(value, list):
        items: list[object] = list(value)
    elif isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            raise TypeError("M payload keys must be str")
        items = list(value.values())
    else:
        return 0
    depth = 0
    for item in items:
        if not isinstance(item, IValue):
            raise TypeError(f"A and M payloads hold IValues, got {type(item).__name__}")
        depth = max(depth, item._depth)
    if depth + 1 > MAX_DEPTH:
        raise IValueError("value", _too_deep())
    return depth


def _too_deep() -> str:
    return f"nesting is deeper than {MAX_DEPTH} levels"


# --- decoding -------------------------------------------------------------------------------


def _decode(doc: object, path: str, depth: int) -> IValue:
    if depth > MAX_DEPTH:
        raise IValueError(path, _too_deep())
    if not isinstance(doc, dict):
        raise IValueError(path, f'expected an IValue object like {{"S": "text"}}, got {_kind(doc)}')
    if len(doc) != 1:
        raise IValueError(path, f"an IValue object has exactly one type key, got {len(doc)}")
    ((tag, payload),) = doc.items()
    if tag not in TAGS:
        expected = ", ".join(_TAG_ORDER)
        raise IValueError(path, f"unknown IValue type {_quote(tag)}; expected one of {expected}")
    if tag == ARRAY:
        if not isinstance(payload, list):
            raise IValueError(path, f"A value must be a JSON array, got {_kind(payload)}")
        items = [_decode(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(payload)]
        return IValue(ARRAY, items)
    if tag == MAP:
        if not isinstance(payload, dict):
            raise IValueError(path, f"M value must be a JSON object, got {_kind(payload)}")
        return IValue(MAP, _decode_members(payload, path, depth + 1))
    return IValue(tag, _decode_scalar(tag, payload, path))


def _decode_members(doc: dict[Any, Any], path: str, depth: int) -> dict[str, IValue]:
    members: dict[str, IValue] = {}
    for name, item in doc.items():
        if not isinstance(name, str):
            raise IValueError(path, f"member names must be strings, got {_kind(name)}")
        members[name] = _decode(item, f"{path}.{name}", depth)
    return members


def _decode_scalar(tag: str, payload: object, path: str) -> Payload:
    if tag == NULL:
        _check_null(payload, path)
        return None
    if tag == BOOL:
        if not isinstance(payload, bool):
            raise IValueError(path, f"B value must be true or false, got {_describe(payload)}")
        return payload
    if tag == F64 and isinstance(payload, int | float | Decimal) and not isinstance(payload, bool):
        return _number_to_f64(payload, path)
    if not isinstance(payload, str):
        raise IValueError(path, f"{tag} value must be a JSON string, got {_describe(payload)}")
    return _TEXT_PARSERS[tag](payload, path)


def _check_null(payload: object, path: str) -> None:
    if type(payload) is int and payload == 0:
        return
    # A DynamoDB read hands the number 0 back as Decimal("0"); nothing else means null.
    if type(payload) is Decimal and payload == 0 and payload.as_tuple().exponent == 0:
        return
    raise IValueError(
        path, f'N is null and carries no value: write it {{"N": 0}}, got {_describe(payload)}'
    )


def _parse_integer(tag: str, text: str, path: str) -> int:
    low, _, name = _INT_RANGES[tag]
    pattern, example = (_UNSIGNED, '"100"') if low == 0 else (_SIGNED, '"-100"')
    if len(text) > _MAX_INTEGER_TEXT or not pattern.fullmatch(text):
        raise IValueError(
            path, f"{tag} value {_quote(text)} is not a decimal {name} string such as {example}"
        )
    number = int(text)
    problem = _payload_problem(tag, number)
    if problem is not None:
        raise IValueError(path, f"{tag} value {_quote(text)} is out of range for {name}")
    return number


def _parse_f64(text: str, path: str) -> float:
    if len(text) > _MAX_FLOAT_TEXT or not _FLOAT_TEXT.fullmatch(text):
        raise IValueError(path, f'F value {_quote(text)} is not a number such as "1.5" or "1e9"')
    return float(text)


def _number_to_f64(number: int | float | Decimal, path: str) -> float:
    try:
        return float(number)
    except (OverflowError, ValueError):  # a huge int; a signalling-NaN Decimal
        raise IValueError(path, "F value is out of range for f64") from None


def _parse_decimal(text: str, path: str) -> Decimal:
    if len(text) > _MAX_DECIMAL_TEXT or not _DECIMAL_TEXT.fullmatch(text):
        raise IValueError(path, f'D value {_quote(text)} is not a decimal such as "3.14"')
    value = Decimal(text)
    problem = _decimal_problem(value)
    if problem is not None:
        raise IValueError(path, problem)
    return value


def _parse_base58(tag: str, text: str, path: str) -> bytes:
    try:
        data = base58.decode(text)
    except ValueError as error:
        raise IValueError(path, f"{tag} value is not valid base58: {error}") from None
    problem = _payload_problem(tag, data)
    if problem is not None:
        raise IValueError(path, problem)
    return data


def _parse_base64(text: str, path: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        data = None
    # Re-encoding rejects what b64decode tolerates: missing or extra '=' and stray low bits.
    if data is None or base64.b64encode(data).decode("ascii") != text:
        raise IValueError(path, "BY value is not canonical standard base64 with '=' padding")
    return data


_TEXT_PARSERS: Final[dict[str, Callable[[str, str], Payload]]] = {
    STRING: lambda text, _path: text,
    U64: partial(_parse_integer, U64),
    I64: partial(_parse_integer, I64),
    U128: partial(_parse_integer, U128),
    I128: partial(_parse_integer, I128),
    F64: _parse_f64,
    DECIMAL: _parse_decimal,
    B32: partial(_parse_base58, B32),
    B64: partial(_parse_base58, B64),
    BYTES: _parse_base64,
}


# --- from Python ----------------------------------------------------------------------------


def _from_python(obj: object, path: str, depth: int) -> IValue:
    if depth > MAX_DEPTH:
        raise IValueError(path, _too_deep())
    if isinstance(obj, IValue):
        return obj
    if isinstance(obj, list | tuple):
        return IValue(
            ARRAY, [_from_python(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(obj)]
        )
    if isinstance(obj, dict):
        members: dict[str, IValue] = {}
        for name, item in obj.items():
            if not isinstance(name, str):
                raise TypeError(f"{path}: map keys must be str, got {type(name).__name__}")
            members[name] = _from_python(item, f"{path}.{name}", depth + 1)
        return IValue(MAP, members)
    tag, payload = _scalar_from_python(obj, path)
    problem = _payload_problem(tag, payload)
    if problem is not None:
        raise IValueError(path, problem)
    return IValue(tag, payload)


def _scalar_from_python(obj: object, path: str) -> tuple[str, Payload]:
    tag: str
    payload: Payload
    if obj is None:
        tag, payload = NULL, None
    elif isinstance(obj, bool):
        tag, payload = BOOL, obj
    elif isinstance(obj, int):
        tag, payload = _integer_tag(int(obj)), int(obj)
    elif isinstance(obj, float):
        tag, payload = F64, float(obj)
    elif isinstance(obj, Decimal):
        tag, payload = DECIMAL, _with_scale(obj)
    elif isinstance(obj, str):
        tag, payload = STRING, str(obj)
    elif isinstance(obj, bytes | bytearray | memoryview):
        payload = bytes(obj)
        tag = {32: B32, 64: B64}.get(len(payload), BYTES)
    else:
        raise TypeError(f"{path}: cannot represent {type(obj).__name__} as an IValue")
    return tag, payload


def _integer_tag(number: int) -> str:
    """The narrowest integer tag holding `number`, or the one whose range check will fail."""
    for tag in (U64, I64, U128, I128):
        low, high, _ = _INT_RANGES[tag]
        if low <= number <= high:
            return tag
    return U128 if number > 0 else I128


def _with_scale(value: Decimal) -> Decimal:
    """`value` with a non-negative exponent (Decimal("1E+2") -> Decimal("100")), as rust_decimal
    has no negative scales; values that are out of range anyway are returned unchanged."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent <= 0:
        return value
    if digits == (0,):
        return Decimal((sign, (0,), 0))
    if len(digits) + exponent > _DECIMAL_MAX_DIGITS:
        return value
    return Decimal((sign, digits + (0,) * exponent, 0))


# --- formatting -----------------------------------------------------------------------------


def _format_f64(number: float) -> str:
    """Shortest round-trip text: repr() with a bare exponent ("1e16", "1e-7"), "inf", "NaN"."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = repr(number)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


_JSON_KINDS: Final[tuple[tuple[type | tuple[type, ...], str], ...]] = (
    (type(None), "null"),
    (bool, "boolean"),  # before int, which bool subclasses
    ((int, float, Decimal), "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _kind(value: object) -> str:
    """The JSON type name of a decoded JSON value, for error messages."""
    for types, name in _JSON_KINDS:
        if isinstance(value, types):
            return name
    return type(value).__name__


def _describe(value: object) -> str:
    """`_kind`, plus the value itself when it is a scalar: 'string "0"', 'number 0.0', 'null'."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, int | float | Decimal):
        return f"number {_quote(value)[1:-1]}"
    return _kind(value)


def _quote(value: object, limit: int = 80) -> str:
    """JSON-quoted and shortened, so hostile input cannot flood or forge log lines."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return json.dumps(text)
