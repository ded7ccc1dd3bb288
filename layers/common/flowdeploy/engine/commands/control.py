"""Timing and observability: wait, log."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from flowdeploy.engine.command import (
    Command,
    NodeContext,
    NodeError,
    Port,
    convert_input,
    register,
)
from flowdeploy.engine.convert import NULL_VALUE, to_decimal, to_string, to_text
from flowdeploy.values import IValue

MAX_WAIT_SECONDS = Decimal(900)  # Lambda's own limit; a run's deadline is shorter anyway
LOG_LEVELS = ("debug", "info", "warn", "error")


@register
class Wait(Command):
    """Waits `seconds`, then passes `value` (null when unconnected) on to `value`."""

    name = "wait"
    inputs = (Port("seconds"), Port("value", required=False))
    outputs = (Port("value"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        seconds = convert_input(inputs, "seconds", to_decimal)
        if not 0 <= seconds <= MAX_WAIT_SECONDS:
            raise NodeError(f"input 'seconds': must be 0 to {MAX_WAIT_SECONDS}, got {seconds}")
        await asyncio.sleep(float(seconds))
        return {"value": inputs.get("value", NULL_VALUE)}


@register
class Log(Command):
    """Writes `message` to the run log at `level` (debug, info, warn, error; default info),
    and passes it on to `message`."""

    name = "log"
    inputs = (Port("message"), Port("level", required=False))
    outputs = (Port("message"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        level = "info"
        if "level" in inputs:
            level = convert_input(inputs, "level", to_string).lower()
            if level not in LOG_LEVELS:
                raise NodeError(f"input 'level': use one of {', '.join(LOG_LEVELS)}")
        ctx.log(level, to_text(inputs["message"]))
        return {"message": inputs["message"]}
