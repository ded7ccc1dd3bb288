"""Decimal arithmetic, comparison and branching."""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext
from typing import Any, ClassVar

from flowdeploy.engine.command import (
    SPACE_OPERATOR,
    Command,
    NodeContext,
    NodeError,
    Port,
    convert_input,
    register,
)
from flowdeploy.engine.convert import (
    NULL_VALUE,
    NUMERIC_TAGS,
    ConversionError,
    decimal_value,
    describe,
    to_bool,
    to_decimal,
    to_string,
)
from flowdeploy.values import ARRAY, BOOL, MAP, NULL, STRING, IValue

# rust_decimal's 28 significant digits, so results fit the D tag.
PRECISION = 28


NUMBER = ("decimal",)


class Arithmetic(Command):
    """`result` = `a` <op> `b`, on decimals (any numeric tag, or a numeric string)."""

    inputs = (Port("a", types=NUMBER), Port("b", types=NUMBER))
    outputs = (Port("result", types=NUMBER),)
    op: ClassVar[Callable[[Decimal, Decimal], Decimal]]

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        a = convert_input(inputs, "a", to_decimal)
        b = convert_input(inputs, "b", to_decimal)
        try:
            with localcontext() as context:
                context.prec = PRECISION
                context.traps[DivisionByZero] = True
                result = type(self).op(a, b)
        except (DivisionByZero, InvalidOperation) as error:
            why = "division by zero" if b == 0 else type(error).__name__.lower()
            raise NodeError(f"cannot compute {a} {self.symbol} {b}: {why}") from None
        except ArithmeticError:
            raise NodeError(f"cannot compute {a} {self.symbol} {b}: the result overflows") from None
        try:
            return {"result": decimal_value(result)}
        except ConversionError as error:
            raise NodeError(str(error)) from None

    @property
    def symbol(self) -> str:
        return {"add": "+", "sub": "-", "mul": "*", "div": "/"}[self.name]


@register
class Add(Arithmetic):
    """`result` = `a` + `b`, in decimals (28 digits; any numeric tag or numeric text)."""

    name = "add"
    op = operator.add


@register
class Sub(Arithmetic):
    """`result` = `a` - `b`, in decimals (28 digits; any numeric tag or numeric text)."""

    name = "sub"
    op = operator.sub


@register
class Mul(Arithmetic):
    """`result` = `a` * `b`, in decimals (28 digits; any numeric tag or numeric text)."""

    name = "mul"
    op = operator.mul


@register
class Div(Arithmetic):
    """`result` = `a` / `b`, in decimals (28 digits; any numeric tag or numeric text); a
    division by zero is a node error."""

    name = "div"
    op = operator.truediv


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def operator_symbol(value: IValue) -> str:
    symbol = value.value if isinstance(value.value, str) else ""
    if symbol not in _COMPARISONS:
        raise ConversionError(f"use one of {', '.join(_COMPARISONS)}")
    return symbol


@register
class Compare(Command):
    """`result` (B) = `a` <operator> `b`; operator `==` `!=` `<` `<=` `>` `>=` (default `==`).

    Numbers compare by value whatever their tags; strings compare as text; other values
    only for (in)equality.
    """

    name = "compare"
    inputs = (
        Port("a"),
        Port("b"),
        Port("operator", required=False, types=("string",), rule=operator_symbol),
    )
    outputs = (Port("result", types=("bool",)),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        symbol = self.get(inputs, "operator", "==")
        a, b = inputs["a"], inputs["b"]
        left: object
        right: object
        if a.tag in NUMERIC_TAGS and b.tag in NUMERIC_TAGS:
            left, right = (
                convert_input(inputs, "a", to_decimal),
                convert_input(inputs, "b", to_decimal),
            )
        elif a.tag == b.tag == STRING:
            left, right = a.value, b.value
        elif symbol in {"==", "!="}:
            left, right = a, b
        else:
            raise NodeError(f"cannot order {a.tag} against {b.tag}; only == and != apply")
        return {"result": IValue(BOOL, _COMPARISONS[symbol](left, right))}


@register
class Branch(Command):
    """Sends `value` (or the condition itself) to `true` or `false`, by `condition`.

    Only the taken output gets a value: nodes fed by the other one are skipped.
    """

    name = "branch"
    inputs = (Port("condition", types=("bool",)), Port("value", required=False))
    outputs = (Port("true", required=False), Port("false", required=False))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        taken = convert_input(inputs, "condition", to_bool)
        return {"true" if taken else "false": inputs.get("value", inputs["condition"])}


# -- Space Operator's branch: a condition on a value ------------------------------------

CONDITIONS = (
    "is_null",
    "is_not_null",
    "is_true",
    "is_false",
    "eq",
    "ne",
    "gt",
    "lt",
    "gte",
    "lte",
    "is_empty",
    "is_not_empty",
    "contains",
    "starts_with",
    "ends_with",
)
_ORDERINGS = {"gt": operator.gt, "lt": operator.lt, "gte": operator.ge, "lte": operator.le}


def condition(value: IValue) -> str:
    chosen = to_string(value)
    if chosen not in CONDITIONS:
        raise ConversionError(f"use one of {', '.join(CONDITIONS)}, got {chosen!r}")
    return chosen


def _field(value: IValue, path: str | None) -> IValue:
    """The value at a dot-separated `path` inside `value` (null when there is none)."""
    if not path:
        return value
    current = value
    for step in path.split("."):
        children = current.value
        if current.tag == MAP and isinstance(children, dict) and step in children:
            current = children[step]
        elif current.tag == ARRAY and isinstance(children, list) and step.isdigit():
            index = int(step)
            if index >= len(children) or (step != "0" and step.startswith("0")):
                return NULL_VALUE
            current = children[index]
        else:
            return NULL_VALUE
    return current


def _number(value: IValue, what: str) -> Decimal:
    if value.tag not in NUMERIC_TAGS:
        raise NodeError(f"{what}: {describe(value)}")
    try:
        return to_decimal(value)
    except ConversionError:
        raise NodeError(f"cannot compare non-finite numeric value: {describe(value)}") from None


def _required(compare_to: IValue | None, operator_name: str) -> IValue:
    if compare_to is None:
        what = (
            "numeric comparison operators"
            if operator_name in _ORDERINGS
            else (f"{operator_name} operator")
        )
        raise NodeError(f"compare_to is required for {what}")
    return compare_to


def _text_of(value: IValue) -> str | None:
    return value.value if value.tag == STRING and isinstance(value.value, str) else None


def _ordering(value: IValue, operator_name: str, compare_to: IValue | None) -> bool:
    other = _required(compare_to, operator_name)
    left = _number(value, "cannot compare non-numeric value")
    right = _number(other, "cannot compare to non-numeric value")
    return bool(_ORDERINGS[operator_name](left, right))


def _empty(value: IValue, operator_name: str, compare_to: IValue | None) -> bool:
    payload = value.value
    if value.tag == NULL:
        empty = True
    elif value.tag in {STRING, ARRAY, MAP} and isinstance(payload, str | list | dict):
        empty = len(payload) == 0
    else:
        raise NodeError(f"is_empty not supported for type: {describe(value)}")
    return empty == (operator_name == "is_empty")


def _contains(value: IValue, operator_name: str, compare_to: IValue | None) -> bool:
    other = _required(compare_to, operator_name)
    payload, key = value.value, _text_of(other)
    if _text_of(value) is not None:
        if key is None:
            raise NodeError("contains on string requires a string compare_to")
        return key in str(payload)
    if isinstance(payload, list):
        return any(item == other for item in payload)
    if isinstance(payload, dict):
        if key is None:
            raise NodeError("contains on map requires a string key as compare_to")
        return key in payload
    raise NodeError(f"contains not supported for type: {describe(value)}")


def _affix(value: IValue, operator_name: str, compare_to: IValue | None) -> bool:
    other = _required(compare_to, operator_name)
    text, affix = _text_of(value), _text_of(other)
    if text is None:
        raise NodeError(f"{operator_name} not supported for type: {describe(value)}")
    if affix is None:
        raise NodeError(f"{operator_name} on string requires a string compare_to")
    return text.startswith(affix) if operator_name == "starts_with" else text.endswith(affix)


_CONDITIONS: dict[str, Callable[[IValue, str, IValue | None], bool]] = {
    "is_null": lambda v, _, __: v.tag == NULL,
    "is_not_null": lambda v, _, __: v.tag != NULL,
    "is_true": lambda v, _, __: v.tag == BOOL and v.value is True,
    "is_false": lambda v, _, __: v.tag == BOOL and v.value is False,
    "eq": lambda v, _, c: v == (c if c is not None else NULL_VALUE),
    "ne": lambda v, _, c: v != (c if c is not None else NULL_VALUE),
    **dict.fromkeys(_ORDERINGS, _ordering),
    "is_empty": _empty,
    "is_not_empty": _empty,
    "contains": _contains,
    "starts_with": _affix,
    "ends_with": _affix,
}


def evaluate(value: IValue, operator_name: str, compare_to: IValue | None) -> bool:
    """Upstream's branch/filter condition (crates/flow/src/command/helper/condition.rs)."""
    return _CONDITIONS[operator_name](value, operator_name, compare_to)


@register
class SpaceOperatorBranch(Command):
    """Tests `value` (or its `field`, a dot path) with `operator` against `compare_to`: the
    value goes to `output` when the condition holds, to `rejected` when it does not; nodes
    fed only by the other output do not run."""

    name = "branch"
    formats = (SPACE_OPERATOR,)
    inputs = (
        Port("value", description="the value to test and route"),
        Port("operator", types=("string",), description=", ".join(CONDITIONS), rule=condition),
        Port("field", required=False, types=("string",), description="a dot path in value"),
        Port("compare_to", required=False, description="what eq, gt, contains... compare to"),
    )
    outputs = (
        Port("output", required=False, description="the value, when the condition holds"),
        Port("rejected", required=False, description="the value, when it does not"),
    )

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        value = inputs["value"]
        field = self.given(inputs, "field")
        path = convert_input(inputs, "field", to_string) if field is not None else None
        holds = evaluate(
            _field(value, path), self.get(inputs, "operator"), self.given(inputs, "compare_to")
        )
        return {"output" if holds else "rejected": value}
