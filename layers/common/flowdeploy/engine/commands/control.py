"""Timing, observability and outside input: wait, log, api_input."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from flowdeploy.engine.command import (
    BOTH,
    SPACE_OPERATOR,
    Command,
    NodeContext,
    NodeError,
    Port,
    register,
)
from flowdeploy.engine.convert import (
    NULL_VALUE,
    ConversionError,
    to_decimal,
    to_string,
    to_text,
)
from flowdeploy.engine.services import ApiInputFailed, ApiInputRequest
from flowdeploy.settings import settings
from flowdeploy.values import ARRAY, MAP, IValue

MAX_WAIT_SECONDS = Decimal(900)  # Lambda's own limit; a run's deadline is shorter anyway
LOG_LEVELS = ("debug", "info", "warn", "error")


def longest_wait() -> Decimal:
    """No wait may outlast the run: the smaller of 900 s and the run deadline."""
    deadline = Decimal(str(settings().flow_run_deadline_seconds))
    if deadline == deadline.to_integral_value():
        deadline = deadline.quantize(Decimal(1))
    return min(MAX_WAIT_SECONDS, deadline)


def seconds(value: IValue) -> Decimal:
    """A wait in seconds: a number from 0 to the run's deadline (at most 900)."""
    number = to_decimal(value)
    limit = longest_wait()
    if not 0 <= number <= limit:
        raise ConversionError(f"must be 0 to {limit} seconds (the run's deadline), got {number}")
    return number


def milliseconds(value: IValue) -> Decimal:
    """A wait in milliseconds, whole, up to the run's deadline."""
    number = to_decimal(value)
    limit = longest_wait() * 1000
    if number != number.to_integral_value() or not 0 <= number <= limit:
        raise ConversionError(
            f"must be a whole number of milliseconds from 0 to {limit} (the run's deadline), "
            f"got {number}"
        )
    return number / 1000


def level(value: IValue) -> str:
    chosen = to_string(value).lower()
    if chosen not in LOG_LEVELS:
        raise ConversionError(f"use one of {', '.join(LOG_LEVELS)}, got {chosen!r}")
    return chosen


@register
class Wait(Command):
    """Waits `seconds`, then passes `value` (null when unconnected) on to `value`."""

    name = "wait"
    inputs = (
        Port("seconds", types=("decimal",), description="0 to the run's deadline", rule=seconds),
        Port("value", required=False, description="passed on after the wait"),
    )
    outputs = (Port("value"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        await asyncio.sleep(float(self.get(inputs, "seconds")))
        return {"value": inputs.get("value", NULL_VALUE)}


@register
class Log(Command):
    """Writes `message` to the run log at `level` (debug, info, warn, error; default info),
    and passes it on to `message`."""

    name = "log"
    inputs = (
        Port("message", description="written as text"),
        Port("level", required=False, types=("string",), rule=level),
    )
    outputs = (Port("message"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        ctx.log(self.get(inputs, "level", "info"), to_text(inputs["message"]))
        return {"message": inputs["message"]}


@register
class SpaceOperatorWait(Command):
    """Waits until `wait_for` has a value, plus `duration_ms`; passes `value` and `wait_for`
    through unchanged."""

    name = "wait"
    formats = (SPACE_OPERATOR,)
    inputs = (
        Port("value", passthrough=True, description="passed through"),
        Port("wait_for", passthrough=True, description="what to wait for"),
        Port(
            "duration_ms",
            required=False,
            types=("u64",),
            description="a further delay in milliseconds",
            rule=milliseconds,
        ),
    )

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        delay = self.get(inputs, "duration_ms", Decimal(0))
        if delay:
            await asyncio.sleep(float(delay))
        return {}


def timeout(value: IValue) -> float:
    number = to_decimal(value)
    limit = longest_wait()
    if not 0 < number <= limit:
        raise ConversionError(f"must be above 0 and at most {limit} seconds, got {number}")
    return float(number)


def http_url(value: IValue) -> str:
    url = to_string(value).strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ConversionError(f"must be an http:// or https:// URL, got {url[:100]!r}")
    return url


def headers(value: IValue) -> dict[str, str]:
    """Headers as a map of strings, or upstream's list of [name, value] pairs."""
    pairs: list[tuple[str, IValue]] = []
    payload = value.value
    if value.tag == MAP and isinstance(payload, dict):
        pairs = list(payload.items())
    elif value.tag == ARRAY and isinstance(payload, list):
        for item in payload:
            pair = item.value
            if item.tag != ARRAY or not isinstance(pair, list) or len(pair) != 2:
                raise ConversionError("expected [name, value] pairs or a map of strings")
            pairs.append((to_string(pair[0]), pair[1]))
    else:
        raise ConversionError("expected a map of strings or [name, value] pairs")
    found: dict[str, str] = {}
    for name, item in pairs:
        text = to_string(item)
        if not name or any(c in name + text for c in "\r\n\0"):
            raise ConversionError(f"{name!r} is not a valid header")
        found[name] = text
    return found


@register
class ApiInput(Command):
    """Pauses until a value is POSTed to the URL the run publishes for this node (upstream's
    `POST /flow/submit/{key}` with `{"value": <IValue>}`); a DELETE there cancels it, and
    `timeout` (seconds; default: the rest of the run) ends the wait with a `timeout` error.
    `webhook_url`, when given, is told the URL (with `extra`) as upstream does."""

    name = "api_input"
    formats = BOTH
    inputs = (
        Port("timeout", required=False, types=("f64",), rule=timeout),
        Port("webhook_url", required=False, types=("string",), rule=http_url),
        Port("webhook_headers", required=False, rule=headers),
        Port("extra", required=False, types=("object",), description="sent to the webhook"),
    )
    outputs = (Port("value", description="the value POSTed"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        broker = ctx.services.api_inputs
        if broker is None:
            raise NodeError("this run cannot receive API inputs")
        wait = self.get(inputs, "timeout")
        request = ApiInputRequest(
            node_id=ctx.node_id,
            times=ctx.times,
            timeout=min(wait if wait is not None else ctx.remaining_seconds, ctx.remaining_seconds),
            webhook_url=self.get(inputs, "webhook_url"),
            webhook_headers=self.get(inputs, "webhook_headers", {}),
            extra=self.given(inputs, "extra"),
            log=ctx.log,
        )
        try:
            value = await broker.wait(request)
        except ApiInputFailed as failure:
            raise NodeError(str(failure)) from None
        return {"value": value}
