"""http_request: call an HTTP(S) endpoint from a flow."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from flowdeploy.engine.command import (
    Command,
    NodeContext,
    NodeError,
    Port,
    convert_input,
    register,
)
from flowdeploy.engine.convert import (
    NULL_VALUE,
    ConversionError,
    parse_json_text,
    to_decimal,
    to_plain,
    to_string,
)
from flowdeploy.values import BYTES, MAP, STRING, U64, IValue

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_TIMEOUT = Decimal(10)
MAX_TIMEOUT = Decimal(120)
MAX_RESPONSE_BYTES = 5 * 1024 * 1024


@register
class HttpRequest(Command):
    """Sends `method` (default GET) to `url` with `headers` (a map of strings) and `body`
    (sent as JSON). Outputs the response `status`, `headers` (lower-case names) and `body`:
    JSON responses as values, text as a string, anything else as bytes. A non-2xx status is
    a normal result; a network failure or `timeout` (seconds, default 10) is a node error.

    Addresses that are not public (loopback, private, link-local, metadata) are refused
    unless the service allows them (local development).
    """

    name = "http_request"
    inputs = (
        Port("url"),
        Port("method", required=False),
        Port("headers", required=False),
        Port("body", required=False),
        Port("timeout", required=False),
    )
    outputs = (Port("status"), Port("headers"), Port("body"))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.engine import http_client

        url = convert_input(inputs, "url", to_string)
        method = "GET"
        if "method" in inputs:
            method = convert_input(inputs, "method", to_string).upper()
            if method not in METHODS:
                raise NodeError(f"input 'method': use one of {', '.join(METHODS)}")
        headers = _headers(inputs.get("headers"))
        body = None
        if "body" in inputs:
            body = json.dumps(to_plain(inputs["body"]), separators=(",", ":")).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        timeout = DEFAULT_TIMEOUT
        if "timeout" in inputs:
            timeout = convert_input(inputs, "timeout", to_decimal)
            if not 0 < timeout <= MAX_TIMEOUT:
                raise NodeError(f"input 'timeout': must be above 0 and at most {MAX_TIMEOUT}")
        seconds = min(float(timeout), ctx.remaining_seconds)
        request = http_client.Request(method, url, headers, body, MAX_RESPONSE_BYTES)
        loop = asyncio.get_running_loop()
        sending = loop.run_in_executor(
            http_client.executor, http_client.send, request, seconds, ctx.http_allow_private
        )
        try:
            response = await asyncio.wait_for(sending, timeout=seconds + 1)
        except TimeoutError:
            raise NodeError(f"{method} {url}: no response within {seconds:g} s") from None
        except http_client.RequestFailed as error:
            raise NodeError(f"{method} {url}: {error}") from None
        return {
            "status": IValue(U64, response.status),
            "headers": IValue(MAP, {k: IValue(STRING, v) for k, v in response.headers.items()}),
            "body": _body(response.content_type, response.body),
        }


def _headers(value: IValue | None) -> dict[str, str]:
    if value is None:
        return {}
    members = value.value
    if not isinstance(members, dict):
        raise NodeError(f"input 'headers': expected a map (M) of strings, got {value.tag}")
    headers: dict[str, str] = {}
    for name, item in members.items():
        try:
            text = to_string(item)
        except ConversionError as error:
            raise NodeError(f"input 'headers': {name!r}: {error}") from None
        if any(c in name + text for c in "\r\n\0") or not name:
            raise NodeError(f"input 'headers': {name!r} is not a valid header")
        headers[name] = text
    return headers


def _body(content_type: str, content: bytes) -> IValue:
    if not content:
        return NULL_VALUE
    kind = content_type.lower()
    if "json" in kind:
        try:
            return parse_json_text(content.decode("utf-8"), "body")
        except (ConversionError, UnicodeDecodeError):
            pass  # a server that mislabels its body: hand it over as text or bytes
    if kind.startswith("text/") or "json" in kind or "xml" in kind:
        try:
            return IValue(STRING, content.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return IValue(BYTES, content)
