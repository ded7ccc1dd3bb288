"""Upstream's WebSocket requests and replies (flow-server's `ws.rs`), parsed and written.

A request is `{"id": <i64>, "method": "<Method>", "params": {...}}`; its reply is
`{"id": <same>, "Ok": {...}}` or `{"id": <same>, "Err": "<message>"}`. A message that is
not a request gets an `Err` with its `id` if one can be found, else -1, as upstream does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from flowdeploy.errors import describe

AUTHENTICATE = "Authenticate"
SUBSCRIBE_FLOW_RUN_EVENTS = "SubscribeFlowRunEvents"
SUBSCRIBE_SIGNATURE_REQUESTS = "SubscribeSignatureRequests"
METHODS = (AUTHENTICATE, SUBSCRIBE_FLOW_RUN_EVENTS, SUBSCRIBE_SIGNATURE_REQUESTS)
NO_ID = -1
I64 = (-(2**63), 2**63 - 1)
TOKEN = Annotated[str, StringConstraints(min_length=1, max_length=4_096)]


class AuthenticateParams(BaseModel):
    """An API key or an access token (JWT), or a run's `fr-` token; without `Bearer `."""

    model_config = ConfigDict(defer_build=True)

    token: TOKEN


class SubscribeFlowRunEventsParams(BaseModel):
    """The run, and optionally its `fr-` token (or any token Authenticate takes)."""

    model_config = ConfigDict(defer_build=True)

    flow_run_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    token: TOKEN | None = None


class SubscribeSignatureRequestsParams(BaseModel):
    model_config = ConfigDict(defer_build=True)


PARAMS: dict[str, type[BaseModel]] = {
    AUTHENTICATE: AuthenticateParams,
    SUBSCRIBE_FLOW_RUN_EVENTS: SubscribeFlowRunEventsParams,
    SUBSCRIBE_SIGNATURE_REQUESTS: SubscribeSignatureRequestsParams,
}


class _Envelope(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: Annotated[StrictInt, Field(ge=I64[0], le=I64[1])]
    method: str
    params: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    method: str
    params: BaseModel


class Malformed(Exception):
    """Not a request this API answers: `reply` is the `Err` to send."""

    def __init__(self, request_id: int, message: str) -> None:
        super().__init__(message)
        self.reply = err(request_id, message)


def parse(text: str | None) -> Request:
    """The request in a message; Malformed with the reply to send if it is not one."""
    try:
        document = json.loads(text or "")
    except json.JSONDecodeError as error:
        raise Malformed(NO_ID, f"the message is not JSON: {error}") from None
    request_id = _id_of(document)
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as error:
        raise Malformed(request_id, f"invalid request: {describe(error)}") from None
    model = PARAMS.get(envelope.method)
    if model is None:
        known = ", ".join(METHODS)
        raise Malformed(request_id, f"unknown method {envelope.method!r}: expected one of {known}")
    try:
        params = model.model_validate(envelope.params)
    except ValidationError as error:
        raise Malformed(request_id, f"invalid params: {describe(error)}") from None
    return Request(envelope.id, envelope.method, params)


def _id_of(document: Any) -> int:
    """The request id, when the message has a usable one (upstream's `find_id`)."""
    if isinstance(document, dict):
        found = document.get("id")
        if isinstance(found, int) and not isinstance(found, bool) and I64[0] <= found <= I64[1]:
            return found
    return NO_ID


def ok(request_id: int, value: Any) -> str:
    return json.dumps({"id": request_id, "Ok": value}, separators=(",", ":"))


def err(request_id: int, message: str) -> str:
    return json.dumps({"id": request_id, "Err": message}, separators=(",", ":"))
