"""Rhai scripts (upstream's `rhai_script_*` nodes): compile once, run under limits.

Inputs arrive as upstream's engine hands them to Rhai: U (u64) as a decimal, I as an
integer, F as a float, D as a decimal, keys and signatures as base58 strings, bytes as a
blob, N as `()`; U1 / I1 as u128 / i128 values. Results go back the same way: an integer
is I, a decimal D, `()` no value. Importing this package does not import lark: the parser
is loaded when the first script is compiled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flowdeploy import base58
from flowdeploy.engine.rhai.compiler import Program, Scope, ScriptInvalid, compile_source
from flowdeploy.engine.rhai.runtime import (
    LIMITS,
    RECURSION_LIMIT,
    UNIT,
    Budget,
    Char,
    FnPtr,
    LimitExceeded,
    Limits,
    Range,
    RhaiError,
    Wide,
    decimal,
    type_name,
)
from flowdeploy.values import (
    ARRAY,
    B32,
    B64,
    BOOL,
    BYTES,
    DECIMAL,
    F64,
    I64,
    I128,
    MAP,
    NULL,
    STRING,
    U64,
    U128,
    IValue,
)

__all__ = [
    "LIMITS",
    "LimitExceeded",
    "Limits",
    "Program",
    "RhaiError",
    "ScriptInvalid",
    "compile_source",
    "from_ivalue",
    "run",
    "to_ivalue",
]


if sys.getrecursionlimit() < RECURSION_LIMIT:
    sys.setrecursionlimit(RECURSION_LIMIT)


def from_ivalue(value: IValue) -> Any:
    """An IValue as upstream's `value_to_dynamic` gives it to a script."""
    tag, payload = value.tag, value.value
    if tag == NULL:
        return UNIT
    if tag == U64:
        assert isinstance(payload, int)
        return Decimal(payload)  # upstream: Value::U64 -> Decimal
    if tag == DECIMAL or tag in (STRING, BOOL, I64, F64):
        return payload
    if tag in (U128, I128):
        assert isinstance(payload, int)
        return Wide(payload, tag == I128)
    if tag in (B32, B64):
        assert isinstance(payload, bytes)
        return base58.encode(payload)
    if tag == BYTES:
        assert isinstance(payload, bytes)
        return bytearray(payload)
    if isinstance(payload, list):
        return [from_ivalue(item) for item in payload]
    if isinstance(payload, dict):
        return {name: from_ivalue(item) for name, item in payload.items()}
    raise RhaiError(f"cannot pass a {tag} value to a script")


def to_ivalue(value: Any, where: str) -> IValue:
    """A script's value as upstream's `dynamic_to_value` makes it: `()` is N (no output when
    it is a whole output), an integer I, a decimal D; a blob is BY (upstream has no
    conversion for it), a char a string."""
    if value is UNIT:
        return IValue(NULL, None)
    if isinstance(value, bool):
        return IValue(BOOL, value)
    if isinstance(value, int):
        return IValue(I64, value)
    if isinstance(value, float):
        return IValue(F64, value)
    if isinstance(value, Decimal):
        return IValue(DECIMAL, decimal(value, lambda: f"{where}: {value} is out of range"))
    if isinstance(value, str):
        return IValue(STRING, value)
    if isinstance(value, Char):
        return IValue(STRING, value.c)
    if isinstance(value, Wide):
        return IValue(I128 if value.signed else U128, value.value)
    if isinstance(value, bytearray):
        return IValue(BYTES, bytes(value))
    if isinstance(value, list):
        return IValue(ARRAY, [to_ivalue(item, where) for item in value])
    if isinstance(value, dict):
        return IValue(MAP, {name: to_ivalue(item, where) for name, item in value.items()})
    if isinstance(value, FnPtr | Range):
        raise RhaiError(f"{where}: unknown type: {type_name(value)} cannot be a value")
    raise RhaiError(f"{where}: unknown type: {type_name(value)}")


def run(
    program: Program,
    inputs: dict[str, IValue | None],
    outputs: list[str],
    *,
    log: Callable[[str], None] = lambda _: None,
    limits: Limits = LIMITS,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, IValue]:
    """Runs `program` as upstream's rhai command does: each input a variable (`()` when not
    given), each output read from the variable of its name after the run (the script's
    value when there is one output and no such variable); an output that is `()` is left
    out. RhaiError (LimitExceeded for a limit) when the script fails."""
    scope = Scope()
    scope.vars["ENV"] = {}
    scope.consts.add("ENV")
    for name, value in inputs.items():
        scope.vars[name] = UNIT if value is None else from_ivalue(value)
    budget = Budget(limits, cancelled)
    result = program.run(scope, budget, log)
    produced: dict[str, IValue] = {}
    for name in outputs:
        if name in scope.vars:
            value = to_ivalue(scope.vars[name], f"output {name!r}")
            if value.tag != NULL:
                produced[name] = value
    if not produced and len(outputs) == 1:
        value = to_ivalue(result, f"output {outputs[0]!r}")
        if value.tag != NULL:
            produced[outputs[0]] = value
    return produced
