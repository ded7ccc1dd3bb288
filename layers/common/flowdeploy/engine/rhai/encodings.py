"""Upstream's additions: base58, hex, JSON and SHA-256."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from decimal import Decimal
from typing import Any

from flowdeploy import base58
from flowdeploy.engine.rhai.functions import (
    Caller,
    as_text,
    check_arity,
    function,
)
from flowdeploy.engine.rhai.runtime import (
    I64_MAX,
    I64_MIN,
    UNIT,
    Char,
    RhaiError,
    to_text,
    type_name,
)

# -- upstream's additions: encodings, JSON, hashes ------------------------------------------


def _blob_of(value: Any, what: str) -> bytes:
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, list) and all(type(b) is int and 0 <= b < 256 for b in value):
        return bytes(value)
    raise RhaiError(f"{what} takes a blob, got {type_name(value)}")


@function("base58_encode")
def _base58_encode(caller: Caller, args: list[Any]) -> Any:
    check_arity("base58_encode", args, 1)
    return base58.encode(_blob_of(args[0], "base58_encode"))


@function("base58_decode")
def _base58_decode(caller: Caller, args: list[Any]) -> Any:
    check_arity("base58_decode", args, 1)
    try:
        return bytearray(base58.decode(as_text(args[0], "base58_decode")))
    except ValueError as error:
        raise RhaiError(f"base58 decode error: {error}") from None


@function("hex_encode")
def _hex_encode(caller: Caller, args: list[Any]) -> Any:
    check_arity("hex_encode", args, 1)
    return _blob_of(args[0], "hex_encode").hex()


@function("hex_decode")
def _hex_decode(caller: Caller, args: list[Any]) -> Any:
    check_arity("hex_decode", args, 1)
    try:
        return bytearray(bytes.fromhex(as_text(args[0], "hex_decode")))
    except ValueError as error:
        raise RhaiError(f"hex decode error: {error}") from None


@function("sha256")
def _sha256(caller: Caller, args: list[Any]) -> Any:
    check_arity("sha256", args, 1)
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
    check_arity("json_encode", args, 1)
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
    check_arity("json_decode", args, 1)
    try:
        parsed = json.loads(as_text(args[0], "json_decode"))
    except (ValueError, RecursionError) as error:
        raise RhaiError(f"json decode error: {error}") from None
    return caller.sized(_from_json(parsed))
