"""ReadFunction: `GET` and `POST /deployment/read`, a deployment run synchronously.

A function of its own: a read runs the engine inside the request (ApiFunction stays free
of it, and of a read's longer time), and answers from the cache without loading it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import http, reads
from flowdeploy.auth import Caller
from flowdeploy.deployments import DeploymentRef
from flowdeploy.http import openapi
from flowdeploy.observability import logger

app = http.make_app()

_TARGET = [
    openapi.query("id", "the deployment id"),
    openapi.query("flow", "the flow id (instead of id)"),
    openapi.query("tag", "with flow: the tag (default latest)"),
]
_READ = {
    "tag": "reads",
    "ok": openapi.IValueOutput,
    "errors": (400, 403, 404, 408, 413, 415, 422),
    "auth": openapi.STARTER,
    "other_responses": {304: "If-None-Match names the current answer: no body"},
}
_DESCRIPTION = (
    "Runs the deployment now (no transaction is ever signed or sent) and answers its outputs, "
    "cached 300 s per (deployment, caller, inputs) with ETag, Cache-Control and Last-Modified. "
    "Callers as for a start (others 404); the flow must have been deployed with read_enabled "
    "(else 403). Space Operator clients: deployments.read."
)


@app.get(
    "/deployment/read",
    **openapi.route(
        "Read a deployment: its outputs for `inputs` (JSON in the query, up to 8 KB)",
        description=_DESCRIPTION,
        parameters=[
            *_TARGET,
            openapi.query("inputs", "JSON object of name -> IValue"),
            openapi.query("skip_cache", "true: run it afresh"),
            openapi.header("If-None-Match", "the ETag of the answer you hold"),
        ],
        **_READ,
    ),
)
def read_get() -> Response[Any]:
    caller = http.any_caller(app)
    query = http.query(app, *DeploymentRef.QUERY, "inputs", "skip_cache")
    return _answer(caller, DeploymentRef.from_query(query), reads.query_params(query))


@app.post(
    "/deployment/read",
    **openapi.route(
        "Read a deployment: its outputs for the body's `inputs`",
        description=_DESCRIPTION,
        body=reads.ReadDeploymentParams,
        optional_body=True,
        parameters=[*_TARGET, openapi.header("If-None-Match", "the ETag of the answer you hold")],
        **_READ,
    ),
)
def read_post() -> Response[Any]:
    caller = http.any_caller(app)
    ref = DeploymentRef.from_query(http.query(app, *DeploymentRef.QUERY))
    params = http.parse_body(app, reads.ReadDeploymentParams, optional=True)
    return _answer(caller, ref, params)


def _answer(
    caller: Caller, ref: DeploymentRef, params: reads.ReadDeploymentParams
) -> Response[Any]:
    time_left = app.lambda_context.get_remaining_time_in_millis() / 1000
    answer = reads.read_deployment(ref, params, caller, time_left)
    headers = answer.headers()
    if answer.matches(app.current_event.headers.get("if-none-match")):
        return Response(304, None, "", headers)
    return Response(200, content_types.APPLICATION_JSON, answer.body, headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
