"""Decimal arithmetic, comparison and branching."""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any, ClassVar

from flowdeploy.engine.command import (
    Command,
    ConfigError,
    NodeContext,
    NodeError,
    Port,
    convert_input,
    register,
)
from flowdeploy.engine.convert import (
    NUMERIC_TAGS,
    ConversionError,
    decimal_value,
    to_bool,
    to_decimal,
)
from flowdeploy.values import BOOL, STRING, IValue

if TYPE_CHECKING:
    from flowdeploy.engine.graph import FlowGraph

# rust_decimal's 28 significant digits, so results fit the D tag.
PRECISION = 28


class Arithmetic(Command):
    """`result` = `a` <op> `b`, on decimals (any numeric tag, or a numeric string)."""

    inputs = (Port("a"), Port("b"))
    outputs = (Port("result"),)
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
    name = "add"
    op = operator.add


@register
class Sub(Arithmetic):
    name = "sub"
    op = operator.sub


@register
class Mul(Arithmetic):
    name = "mul"
    op = operator.mul


@register
class Div(Arithmetic):
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


@register
class Compare(Command):
    """`result` (B) = `a` <operator> `b`; operator `==` `!=` `<` `<=` `>` `>=` (default `==`).

    Numbers compare by value whatever their tags; strings compare as text; other values
    only for (in)equality.
    """

    name = "compare"
    inputs = (Port("a"), Port("b"), Port("operator", required=False))
    outputs = (Port("result"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        symbol = "=="
        if "operator" in inputs:
            chosen = inputs["operator"]
            symbol = chosen.value if isinstance(chosen.value, str) else ""
            if symbol not in _COMPARISONS:
                raise NodeError(f"input 'operator': use one of {', '.join(_COMPARISONS)}")
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

    def check(self, graph: FlowGraph, node_id: str) -> None:
        chosen = self.config.value("operator")
        if chosen is not None and chosen.value not in _COMPARISONS:
            raise ConfigError("operator", f"use one of {', '.join(_COMPARISONS)}")


@register
class Branch(Command):
    """Sends `value` (or the condition itself) to `true` or `false`, by `condition`.

    Only the taken output gets a value: nodes fed by the other one are skipped.
    """

    name = "branch"
    inputs = (Port("condition"), Port("value", required=False))
    outputs = (Port("true", required=False), Port("false", required=False))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        taken = convert_input(inputs, "condition", to_bool)
        return {"true" if taken else "false": inputs.get("value", inputs["condition"])}
