"""JSON text as the service reads it: what Python's `json` accepts, minus what cannot be kept.

Python reads `NaN`, `Infinity`, `1e999` (as infinity) and lone UTF-16 surrogates (`"\\ud800"`);
DynamoDB, UTF-8 and JSON clients cannot carry them, so they are refused where text comes in,
with a message saying what was found, instead of failing later as a 500.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flowdeploy.errors import BadRequest

# A lone surrogate is valid JSON but no Unicode character: UTF-8 cannot encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Python refuses longer integer literals itself (a ValueError, sys.int_info): say so first.
MAX_INTEGER_DIGITS = 4300
# Deep enough for IValues nested 64 levels (two JSON levels each), shallow enough that
# nothing downstream recurses out of stack.
MAX_DEPTH = 160


class _Unreadable(ValueError):
    pass


def load(text: str, what: str, max_depth: int) -> Any:
    """The JSON value of `text`; BadRequest naming `what` (e.g. "body") when it cannot be kept."""

    def refuse_constant(name: str) -> float:
        raise _Unreadable(
            f"{what} contains {name}, which JSON does not allow (numbers must be finite)"
        )

    def finite_float(literal: str) -> float:
        number = float(literal)
        if not math.isfinite(number):
            raise _Unreadable(
                f"{what} contains the number {literal[:40]}, which is out of range of a double"
            )
        return number

    def bounded_int(literal: str) -> int:
        digits = len(literal.lstrip("-"))
        if digits > MAX_INTEGER_DIGITS:
            raise _Unreadable(
                f"{what} contains an integer of {digits} digits; the limit is {MAX_INTEGER_DIGITS}"
            )
        return int(literal)

    try:
        document = json.loads(
            text, parse_constant=refuse_constant, parse_float=finite_float, parse_int=bounded_int
        )
    except _Unreadable as error:
        raise BadRequest(str(error)) from None
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"{what} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply") from None
    problem = _problem(document, what, max_depth)
    if problem is not None:
        raise BadRequest(problem)
    return document


def _problem(document: object, what: str, max_depth: int) -> str | None:
    """Why `document` cannot be kept (too deep, a lone surrogate), found without recursion."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > max_depth:
            return f"{what} is nested deeper than {max_depth} levels"
        found = None
        if isinstance(value, str):
            found = _SURROGATE.search(value)
        elif isinstance(value, dict):
            found = next(filter(None, map(_SURROGATE.search, value)), None)
            pending.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            pending.extend((child, depth + 1) for child in value)
        if found is not None:
            return (
                f"{what} contains a lone UTF-16 surrogate (\\u{ord(found.group()):04x}), "
                "which is not a Unicode character"
            )
    return None
