"""API plumbing shared by the HTTP handlers: the resolver, request parsing, error mapping.

Every error a caller can cause becomes `{"error": "..."}` with its 4xx status here,
in one place; anything else is logged and becomes a 500 without internals.
"""

from __future__ import annotations

import json
from typing import TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from pydantic import BaseModel, ValidationError

from flowdeploy import apikeys
from flowdeploy.auth import Caller, Credentials, require_user, resolve_caller
from flowdeploy.errors import (
    ApiError,
    BadRequest,
    ConcurrentChange,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    describe,
)
from flowdeploy.observability import logger
from flowdeploy.store import is_conflict, is_transient

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 1_048_576
# Deep enough for IValues nested 64 levels (two JSON levels each), shallow enough that
# nothing downstream recurses out of stack.
MAX_BODY_DEPTH = 160
# curl -d sends form-urlencoded unless told otherwise; a JSON body is what we read.
JSON_LIKE_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


def error_response(
    status: int, message: str, retry_after: int | None = None, key: str = "error"
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({key: message}),
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


def unexpected_error(error: Exception) -> ApiError | None:
    """The caller-visible form of a failure of DynamoDB or SQS, if it has one.

    Throttling, timeouts and a failing service (after botocore's retries) are a 503 and a
    write that lost a race is a 409, both with Retry-After; anything else is a bug (500).
    """
    if is_transient(error):
        return ServiceUnavailable("a dependency is busy or failing; nothing was changed, retry")
    if is_conflict(error):
        return ConcurrentChange("changed by another request at the same time; retry")
    return None


def make_app(error_key: str = "error") -> APIGatewayHttpResolver:
    """A resolver with the project's error mapping; each function adds its routes. Errors
    are `{error_key: "..."}`: "error" everywhere but the Solana Actions routes ("message")."""
    app = APIGatewayHttpResolver()

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response[str]:
        logger.info("request refused", extra={"status": error.status, "error": error.message})
        return error_response(error.status, error.message, error.retry_after, error_key)

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        mapped = unexpected_error(error)
        if mapped is not None:
            logger.warning("dependency failure", extra={"status": mapped.status}, exc_info=True)
            return error_response(mapped.status, mapped.message, mapped.retry_after, error_key)
        logger.exception("unhandled error")
        return error_response(500, "internal error", key=error_key)

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        event = app.current_event
        return error_response(404, f"no route for {event.http_method} {event.path}", key=error_key)

    return app


def _deeper_than(document: object, limit: int) -> bool:
    """Whether JSON `document` nests deeper than `limit`, found without recursion."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            pending.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            pending.extend((child, depth + 1) for child in value)
    return False


def parse_body(
    app: APIGatewayHttpResolver,
    model: type[M],
    *,
    optional: bool = False,
    max_bytes: int = MAX_BODY_BYTES,
) -> M:
    """The JSON body as `model`; 400/413/415 with a precise message when it is not.
    `max_bytes` tightens the size limit for routes whose bodies are small."""
    event = app.current_event
    raw_body = event.body or ""
    if len(raw_body) > max_bytes * 4 // 3 + 4:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if raw_body.strip() and content_type and content_type not in JSON_LIKE_TYPES:
        raise UnsupportedMediaType(f"send the body as application/json, not {content_type}")
    try:
        raw = event.decoded_body or ""
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8 text") from None
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    if not raw.strip():
        if optional:
            return model()
        raise BadRequest("request body is required (JSON)")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    if _deeper_than(data, MAX_BODY_DEPTH):
        raise BadRequest(f"body is nested deeper than {MAX_BODY_DEPTH} levels")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None


def credentials(app: APIGatewayHttpResolver) -> Credentials:
    return Credentials.from_headers(app.current_event.headers)


def caller(app: APIGatewayHttpResolver) -> Caller | None:
    """The caller of the current request, None if it sent no credential; 401 if one is bad."""
    return resolve_caller(credentials(app), apikeys.owner_of)


def any_caller(app: APIGatewayHttpResolver) -> Caller:
    """An authenticated user or a public-key caller; 401 when no credential was sent."""
    found = caller(app)
    if found is None:
        raise Unauthorized(
            "unauthenticated: send Authorization: Bearer <access token or public key> or x-api-key"
        )
    return found


def user(app: APIGatewayHttpResolver) -> str:
    """The user id of an authenticated caller (access token or API key); 401 otherwise."""
    return require_user(caller(app))
