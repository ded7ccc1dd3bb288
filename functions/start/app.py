"""StartFunction: `POST /deployment/start` as the owner, another user or a wallet."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import http, idempotent_starts
from flowdeploy.deployments import DeploymentRef
from flowdeploy.flow_runs import StartDeploymentParams, start
from flowdeploy.http import openapi
from flowdeploy.observability import count, logger, metrics

app = http.make_app()


@app.post(
    "/deployment/start",
    **openapi.route(
        "Start a deployment: by ?id=, or ?flow= and &tag= (default latest)",
        description=(
            "The owner, another user or a wallet, as the deployment's start_permission allows; "
            "anyone else gets 404. With an Idempotency-Key (users only), a repeat within 24 "
            "hours answers the first response (header Idempotent-Replayed: true) and starts "
            "nothing."
        ),
        tag="flow runs",
        ok=openapi.StartedRun,
        body=StartDeploymentParams,
        optional_body=True,
        errors=(400, 404, 409, 413, 415, 429, 503),
        auth=openapi.STARTER,
        parameters=[
            openapi.query("id", "the deployment id"),
            openapi.query("flow", "the flow id (instead of id)"),
            openapi.query("tag", "with flow: the tag (default latest)"),
            openapi.header(idempotent_starts.HEADER, "1-255 visible ASCII characters"),
        ],
    ),
)
def start_deployment() -> Response[dict[str, str]]:
    caller = http.any_caller(app)
    ref = DeploymentRef.from_query(http.query(app, *DeploymentRef.QUERY))
    params = http.parse_body(app, StartDeploymentParams, optional=True)
    key = app.current_event.headers.get(idempotent_starts.HEADER)
    if key is None:
        started, replayed = start(ref, params, caller), False
    else:
        key = idempotent_starts.parse_key(key)
        started, replayed = idempotent_starts.start_once(key, ref, params, caller)
    count("StartReplayed" if replayed else "RunQueued")
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Response(200, content_types.APPLICATION_JSON, started, headers)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotent_starts.register(context)
    return app.resolve(event, context)
