"""API plumbing shared by the HTTP handlers: the resolver, request parsing, error mapping.

Every error a caller can cause becomes `{"error": "..."}` with its 4xx status here,
in one place; anything else is logged and becomes a 500 without internals.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import BaseModel, ValidationError

from flowdeploy import apikeys, strict_json
from flowdeploy.auth import Caller, Credentials, require_user, resolve_caller
from flowdeploy.errors import (
    ApiError,
    BadRequest,
    ConcurrentChange,
    MethodNotAllowed,
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
MAX_BODY_DEPTH = strict_json.MAX_DEPTH
# curl -d sends form-urlencoded unless told otherwise; a JSON body is what we read.
FORM = "application/x-www-form-urlencoded"
JSON_LIKE_TYPES = ("application/json", FORM, "text/plain")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, key: str = "error"
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({key: message}),
        headers=headers or None,
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
        return error_response(error.status, error.message, error.headers(), error_key)

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        mapped = unexpected_error(error)
        if mapped is not None:
            logger.warning("dependency failure", extra={"status": mapped.status}, exc_info=True)
            return error_response(mapped.status, mapped.message, mapped.headers(), error_key)
        logger.exception("unhandled error")
        return error_response(500, "internal error", key=error_key)

    app.use(middlewares=[_method_guard])

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        event = app.current_event
        return error_response(404, f"no route for {event.http_method} {event.path}", key=error_key)

    return app


def _specificity(path: str) -> tuple[int, int]:
    """As API Gateway ranks routes: more literal segments first (`/deployment/read` before
    `/deployment/<deployment_id>`), then more segments."""
    segments = path.strip("/").split("/")
    return sum(not s.startswith("<") for s in segments), len(segments)


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods of the resolver's most specific routes matching `path`; [] if none match.

    Read from the resolver's own route table, so every route a function declares counts.
    """
    matching = [r for r in (*app._static_routes, *app._dynamic_routes) if r.rule.match(path)]
    if not matching:
        return []
    best = max(_specificity(r.path) for r in matching)
    return sorted({r.method for r in matching if _specificity(r.path) == best})


def _method_guard(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """405 with Allow for a path the function serves with other methods: also when API
    Gateway (or the resolver) would hand it to a route whose parameter swallows a literal
    segment (`GET /deployment/start` to `GET /deployment/{deployment_id}`)."""
    event = app.current_event
    method = event.http_method.upper()
    allowed = allowed_methods(app, event.path)
    if allowed and method not in allowed:
        raise MethodNotAllowed(method, event.path, allowed)
    return next_middleware(app)


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
    if content_type == FORM and raw.lstrip()[:1] not in {"{", "["}:
        # curl -d labels JSON as a form: JSON under that label is read, a real form is not.
        raise UnsupportedMediaType(f"send the body as application/json, not {content_type}")
    data = strict_json.load(raw, "body", MAX_BODY_DEPTH)
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None


def query(app: APIGatewayHttpResolver, *names: str) -> dict[str, str]:
    """The query string parameters; 400 naming those the route does not take (a typo such
    as `?tagg=` must not silently fall back to a default)."""
    params = dict(app.current_event.query_string_parameters or {})
    unknown = sorted(set(params) - set(names))
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        takes = f"this route takes {', '.join(names)}" if names else "this route takes none"
        raise BadRequest(f"unknown query {noun}: {', '.join(unknown)} ({takes})")
    return params


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
