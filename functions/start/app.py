"""StartFunction: `POST /deployment/start` as the owner, another user or a wallet."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import http
from flowdeploy.deployments import DeploymentRef
from flowdeploy.flow_runs import StartDeploymentParams, start
from flowdeploy.observability import count, logger, metrics

app = http.make_app()


@app.post("/deployment/start")
def start_deployment() -> dict[str, str]:
    caller = http.any_caller(app)
    ref = DeploymentRef.from_query(app.current_event.query_string_parameters or {})
    params = http.parse_body(app, StartDeploymentParams, optional=True)
    started = start(ref, params, caller)
    count("RunQueued")
    return started


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
