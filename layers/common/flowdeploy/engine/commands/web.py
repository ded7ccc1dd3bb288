"""HTTP from a flow: this service's `http_request`, and upstream's (`http_request` in Space
Operator documents, `http` in ours) on the same client and the same network guard."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import urllib.parse
from decimal import Decimal
from typing import Any

from flowdeploy.engine.command import (
    FLOWDEPLOY,
    SPACE_OPERATOR,
    Command,
    NodeContext,
    NodeError,
    Port,
    register,
)
from flowdeploy.engine.commands.control import headers as header_rule
from flowdeploy.engine.commands.control import http_url
from flowdeploy.engine.convert import (
    NULL_VALUE,
    ConversionError,
    parse_json_text,
    parse_json_value,
    to_decimal,
    to_plain,
    to_string,
)
from flowdeploy.values import BYTES, MAP, STRING, U64, IValue

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_TIMEOUT = Decimal(10)
MAX_TIMEOUT = Decimal(120)
MAX_RESPONSE_BYTES = 5 * 1024 * 1024


def method(value: IValue) -> str:
    chosen = to_string(value).upper()
    if chosen not in METHODS:
        raise ConversionError(f"use one of {', '.join(METHODS)}, got {chosen[:20]!r}")
    return chosen


def timeout(value: IValue) -> Decimal:
    number = to_decimal(value)
    if not 0 < number <= MAX_TIMEOUT:
        raise ConversionError(f"must be above 0 and at most {MAX_TIMEOUT} seconds, got {number}")
    return number


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
        Port("url", types=("string",), rule=http_url),
        Port("method", required=False, types=("string",), description="default GET", rule=method),
        Port("headers", required=False, types=("object",), description="a map of strings"),
        Port("body", required=False, description="sent as JSON"),
        Port(
            "timeout", required=False, types=("decimal",), description="s, default 10", rule=timeout
        ),
    )
    outputs = (
        Port("status", types=("u64",)),
        Port("headers", types=("object",)),
        Port("body"),
    )

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        url = self.get(inputs, "url")
        verb = self.get(inputs, "method", "GET")
        headers = _headers(inputs.get("headers"))
        body = None
        if "body" in inputs:
            body = json.dumps(to_plain(inputs["body"]), separators=(",", ":")).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        limit = self.get(inputs, "timeout", DEFAULT_TIMEOUT)
        response = await send(ctx, verb, url, headers, body, float(limit))
        return {
            "status": IValue(U64, response.status),
            "headers": IValue(MAP, {k: IValue(STRING, v) for k, v in response.headers.items()}),
            "body": _body(response.content_type, response.body),
        }


async def send(
    ctx: NodeContext,
    verb: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    limit: float,
) -> Any:
    """One request through the guarded client, within `limit` and the run's time."""
    from flowdeploy.engine import http_client

    seconds = min(limit, ctx.remaining_seconds)
    request = http_client.Request(verb, url, headers, body, MAX_RESPONSE_BYTES)
    loop = asyncio.get_running_loop()
    sending = loop.run_in_executor(
        http_client.executor, http_client.send, request, seconds, ctx.http_allow_private
    )
    try:
        return await asyncio.wait_for(sending, timeout=seconds + 1)
    except TimeoutError:
        raise NodeError(f"{verb} {url}: no response within {seconds:g} s") from None
    except http_client.RequestFailed as error:
        raise NodeError(f"{verb} {url}: {error}") from None


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


# -- Upstream's HTTP node -----------------------------------------------------------------


def _pairs(value: IValue, what: str) -> list[tuple[str, str]]:
    """Upstream's `Vec<(String, String)>` (a list of pairs), or a map of strings."""
    try:
        return list(header_rule(value).items())
    except ConversionError:
        raise ConversionError(
            f"expected {what} as [key, value] pairs or a map of strings"
        ) from None


def _query(value: IValue) -> list[tuple[str, str]]:
    return _pairs(value, "query parameters")


def _basic_auth(value: IValue) -> tuple[str, str]:
    members = value.value
    if value.tag != MAP or not isinstance(members, dict) or "user" not in members:
        raise ConversionError('expected {"user": "<name>", "password": "<password>"}')
    password = members.get("password")
    return to_string(members["user"]), (to_string(password) if password is not None else "")


def _form(value: IValue) -> list[tuple[str, str]]:
    return _pairs(value, "form fields")


def _multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = f"flowdeploy{secrets.token_hex(12)}"
    parts = []
    for name, text in fields:
        quoted = name.replace('"', "%22")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"\r\n\r\n{text}\r\n'
        )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


@register
class UpstreamHttpRequest(Command):
    """Sends `method` (default GET) to `url` with `headers`, `basic_auth`, `query_params`, a
    JSON `body` or a multipart `form`. A 2xx response gives `body` (JSON as values, text as
    a string, else bytes) and `headers`; any other status fails the node with the status and
    the body, as upstream does. Non-public addresses are refused as for `http_request`."""

    name = "http_request"
    formats = (SPACE_OPERATOR,)
    inputs = (
        Port("url", types=("string",), rule=http_url),
        Port("method", required=False, types=("string",), description="default GET", rule=method),
        Port("headers", required=False, types=("object",), rule=header_rule),
        Port("basic_auth", required=False, types=("object",), rule=_basic_auth),
        Port("query_params", required=False, types=("array",), rule=_query),
        Port("body", required=False, description="sent as JSON"),
        Port("form", required=False, types=("object",), rule=_form),
    )
    outputs = (
        Port("body", description="JSON as values, text as a string, else bytes"),
        Port("headers", types=("object",), description="lower-case names"),
    )

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        url = self.get(inputs, "url")
        query = self.get(inputs, "query_params", [])
        if query:
            url = f"{url}{'&' if urllib.parse.urlsplit(url).query else '?'}"
            url += urllib.parse.urlencode(query)
        headers: dict[str, str] = dict(self.get(inputs, "headers", {}))
        auth = self.get(inputs, "basic_auth")
        if auth is not None:
            user, password = auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        body = None
        sent = self.given(inputs, "body")
        if sent is not None:
            body = json.dumps(to_plain(sent), separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        form = self.get(inputs, "form")
        if form is not None:
            body, headers["Content-Type"] = _multipart(form)
        verb = self.get(inputs, "method", "GET")
        response = await send(ctx, verb, url, headers, body, float(DEFAULT_TIMEOUT))
        if not 200 <= response.status < 300:
            text = response.body.decode("utf-8", "replace")[:2000]
            raise NodeError(f"status code: {response.status}\n{text}")
        return {
            "body": _upstream_body(response.content_type, response.body),
            "headers": IValue(MAP, {k: IValue(STRING, v) for k, v in response.headers.items()}),
        }


def _upstream_body(content_type: str, content: bytes) -> IValue:
    kind = (content_type or "text/plain").lower()
    try:
        if kind.startswith("text/"):
            return IValue(STRING, content.decode("utf-8", "replace"))
        if "json" in kind:
            return parse_json_value(content.decode("utf-8"), "body")
    except (ConversionError, UnicodeDecodeError) as error:
        raise NodeError(f"the response is not valid JSON: {error}") from None
    return IValue(BYTES, content)


@register
class Http(UpstreamHttpRequest):
    """Upstream's HTTP node in this service's format (`http_request` here is ours): same
    ports and behaviour as Space Operator's `http_request`."""

    name = "http"
    formats = (FLOWDEPLOY,)
