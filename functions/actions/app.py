"""ActionsFunction: a deployment as a Solana Action (Blink): `GET /actions.json`,
`GET`/`OPTIONS`/`POST /action/{deployment_id}` and the default icon.

CORS is API Gateway's (template.yaml's CorsConfiguration): it ignores CORS headers a
function returns, so none are set here.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import actions, http
from flowdeploy.http import openapi
from flowdeploy.observability import logger
from flowdeploy.settings import settings
from flowdeploy.store.models import DeploymentItem

app = http.make_app(error_key="message")
# The deployment's chain (X-Blockchain-Ids), once a route has found the deployment.
_chain: ContextVar[str | None] = ContextVar("chain", default=None)
_ACTION = {"tag": "Solana Actions", "auth": openapi.PUBLIC, "error_model": openapi.ActionError}


def _json(body: Any) -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, json.dumps(body))


def _deployment(deployment_id: str) -> DeploymentItem:
    deployment = actions.action_deployment(deployment_id)
    _chain.set(actions.blockchain_id(deployment))
    return deployment


def _base_url() -> str:
    """Where this API is, as the caller reached it (for absolute URLs in answers)."""
    event = app.current_event
    host = event.request_context.domain_name
    proto = event.headers.get("x-forwarded-proto")
    if proto is None:
        proto = "http" if host.split(":")[0] in {"127.0.0.1", "localhost"} else "https"
    return f"{proto}://{host}"


@app.get(
    "/actions.json",
    **openapi.route("Which URLs of this API are Solana Actions", ok=dict[str, Any], **_ACTION),
)
def actions_json() -> Response[str]:
    return _json(actions.ACTIONS_JSON)


@app.route(
    "/actions.json",
    method="OPTIONS",
    **openapi.route("The same as GET (the specification's OPTIONS)", ok=dict[str, Any], **_ACTION),
)
def actions_json_options() -> Response[str]:
    return actions_json()


@app.get(
    "/actions/icon.svg",
    **openapi.route(
        "The icon of Actions whose deployment sets none",
        ok=str,
        content_type="image/svg+xml",
        **_ACTION,
    ),
)
def default_icon() -> Response[str]:
    return Response(200, "image/svg+xml", actions.DEFAULT_ICON, {"Cache-Control": "max-age=86400"})


@app.get(
    "/action/<deployment_id>",
    **openapi.route(
        "The deployment as a Solana Action: title, icon, description, label, parameters",
        ok=openapi.ActionMetadata,
        errors=(404,),
        **_ACTION,
    ),
)
def get_action(deployment_id: str) -> Response[str]:
    return _json(actions.describe_action(_deployment(deployment_id), _base_url()))


@app.route(
    "/action/<deployment_id>",
    method="OPTIONS",
    **openapi.route(
        "The same as GET (the specification's OPTIONS)",
        ok=openapi.ActionMetadata,
        errors=(404,),
        **_ACTION,
    ),
)
def options_action(deployment_id: str) -> Response[str]:
    return get_action(deployment_id)


@app.post(
    "/action/<deployment_id>",
    **openapi.route(
        "Run the deployment as the wallet `account`: the transaction for it to sign",
        description=(
            "Starts the deployment as `Authorization: Bearer <account>` would, with "
            "action_signer = account and input `account`, and waits for the transaction (at "
            "most ACTION_WAIT_SECONDS, 25 s). With an action_identity the run goes on once "
            "the wallet sends it (found on chain by its identity memo); without, the run "
            "stops at it (output_instructions)."
        ),
        ok=openapi.ActionTransaction,
        body=actions.ActionPostBody,
        errors=(400, 404, 413, 415, 422, 503, 504),
        **_ACTION,
    ),
)
def post_action(deployment_id: str) -> Response[str]:
    deployment = _deployment(deployment_id)
    body = http.parse_body(app, actions.ActionPostBody)
    query = app.current_event.query_string_parameters or {}
    started = actions.start_action(deployment, body, query)
    wait = min(settings().action_wait_seconds, _remaining_seconds() - 2.0)
    return _json(actions.wait_for_transaction(started, max(wait, 0.0)))


def _remaining_seconds() -> float:
    context = app.lambda_context
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return float("inf")
    return float(context.get_remaining_time_in_millis()) / 1000


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = _chain.set(None)
    try:
        result = app.resolve(event, context)
        headers = result.setdefault("headers", {})
        headers["X-Action-Version"] = actions.ACTION_VERSION
        chain = _chain.get()
        if chain is not None:
            headers["X-Blockchain-Ids"] = chain
        return result
    finally:
        _chain.reset(token)
