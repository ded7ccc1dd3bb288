"""DeployFunction: `POST /flow/deploy/{flow_id}` freezes the owner's flow as a deployment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import http
from flowdeploy.deployments import deploy, parse_flow_id
from flowdeploy.http import openapi
from flowdeploy.observability import count, logger, metrics

app = http.make_app()


@app.post(
    "/flow/deploy/<flow_id>",
    **openapi.route(
        "Deploy your flow: freeze it and the flows it calls; latest moves to it",
        tag="deployments",
        ok=openapi.DeploymentCreated,
        errors=(400, 404, 413),
        description=(
            "A 400 also when a run of it would do more than a run may: nested flows deeper "
            "than FLOW_MAX_NESTING levels (the message names the chain), or more node runs "
            "than FLOW_MAX_NODE_RUNS, counting each nested flow each time it is called (the "
            "message names the heaviest calls). Recursion deploys: it is bounded as it runs."
        ),
    ),
)
def deploy_flow(flow_id: str) -> dict[str, str]:
    user_id = http.user(app)
    deployment_id = deploy(user_id, parse_flow_id(flow_id))
    count("DeploymentCreated")
    return {"deployment_id": deployment_id}


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
