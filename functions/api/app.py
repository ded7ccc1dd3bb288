"""ApiFunction: flows, deployments, tags, flow runs and API keys (every other route)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import apikeys, deployments, flow_runs, flows, http
from flowdeploy.deployments import parse_flow_id
from flowdeploy.observability import logger

app = http.make_app()


# -- Flows -------------------------------------------------------------------


@app.post("/flow")
def create_flow() -> tuple[dict[str, Any], int]:
    user_id = http.user(app)
    flow = flows.create_flow(user_id, http.parse_body(app, flows.FlowBody))
    return {"flow_id": flow["id"]}, 201


@app.get("/flow/<flow_id>")
def get_flow(flow_id: str) -> dict[str, Any]:
    return flows.get_flow(http.user(app), parse_flow_id(flow_id))


@app.put("/flow/<flow_id>")
def replace_flow(flow_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    body = http.parse_body(app, flows.FlowBody)
    return flows.replace_flow(user_id, parse_flow_id(flow_id), body)


@app.delete("/flow/<flow_id>")
def delete_flow(flow_id: str) -> Response[str]:
    flows.delete_flow(http.user(app), parse_flow_id(flow_id))
    return Response(status_code=204, body="")


# -- Deployments and tags (owner only) ----------------------------------------


@app.get("/deployment/<deployment_id>")
def get_deployment(deployment_id: str) -> dict[str, Any]:
    return deployments.get_deployment(http.user(app), deployment_id)


@app.patch("/deployment/<deployment_id>")
def update_deployment(deployment_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    changes = http.parse_body(app, deployments.DeploymentChanges)
    return deployments.update_deployment(user_id, deployment_id, changes)


@app.delete("/deployment/<deployment_id>")
def delete_deployment(deployment_id: str) -> Response[str]:
    deployments.delete_deployment(http.user(app), deployment_id)
    return Response(status_code=204, body="")


@app.get("/flow/<flow_id>/deployments")
def list_deployments(flow_id: str) -> list[dict[str, Any]]:
    return deployments.list_deployments(http.user(app), parse_flow_id(flow_id))


@app.get("/flow/<flow_id>/tags")
def list_tags(flow_id: str) -> list[dict[str, Any]]:
    return deployments.list_tags(http.user(app), parse_flow_id(flow_id))


@app.put("/flow/<flow_id>/tags/<tag>")
def set_tag(flow_id: str, tag: str) -> dict[str, Any]:
    user_id = http.user(app)
    body = http.parse_body(app, deployments.TagBody)
    return deployments.set_tag(user_id, parse_flow_id(flow_id), tag, body)


@app.delete("/flow/<flow_id>/tags/<tag>")
def delete_tag(flow_id: str, tag: str) -> Response[str]:
    deployments.delete_tag(http.user(app), parse_flow_id(flow_id), tag)
    return Response(status_code=204, body="")


# -- Flow runs ---------------------------------------------------------------


@app.get("/flow_run/<run_id>")
def get_flow_run(run_id: str) -> dict[str, Any]:
    # A run token is not a caller; only resolve one when no token was sent.
    credentials = http.credentials(app)
    token = credentials.bearer or ""
    caller = None if token.startswith("fr-") else http.caller(app)
    return flow_runs.run_row(flow_runs.readable_run(run_id, credentials, caller))


@app.get("/deployment/<deployment_id>/flow_runs")
def list_flow_runs(deployment_id: str) -> list[dict[str, Any]]:
    return flow_runs.list_runs(http.user(app), deployment_id)


# -- API keys ----------------------------------------------------------------


@app.post("/apikey")
def create_api_key() -> tuple[dict[str, Any], int]:
    user_id = http.user(app)
    return apikeys.create(user_id, http.parse_body(app, apikeys.NewApiKey)), 201


@app.get("/apikey")
def list_api_keys() -> list[dict[str, Any]]:
    return apikeys.list_keys(http.user(app))


@app.delete("/apikey/<key_id>")
def delete_api_key(key_id: str) -> Response[str]:
    apikeys.delete(http.user(app), key_id)
    return Response(status_code=204, body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
