"""ApiFunction: flows, deployments, tags, flow runs, API keys and wallets (every other route)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import apikeys, deployments, flow_runs, flows, http, paging, wallets
from flowdeploy.deployments import parse_flow_id
from flowdeploy.http import openapi
from flowdeploy.observability import logger

app = http.make_app()


# -- Flows -------------------------------------------------------------------


@app.post(
    "/flow",
    **openapi.route(
        "Create a flow",
        tag="flows",
        ok=openapi.FlowCreated,
        status=201,
        body=flows.FlowBody,
        errors=(400, 413, 415),
    ),
)
def create_flow() -> tuple[dict[str, Any], int]:
    user_id = http.user(app)
    flow = flows.create_flow(user_id, http.parse_body(app, flows.FlowBody))
    return {"flow_id": flow["id"]}, 201


_PAGE = [
    openapi.query("limit", "rows per page, 1-100 (default 100); a page may hold fewer"),
    openapi.query("after", "the `next` of the previous page"),
]


@app.get(
    "/flow",
    **openapi.route(
        "Your flows, newest first, without their nodes and edges",
        tag="flows",
        ok=openapi.FlowPage,
        errors=(400,),
        parameters=_PAGE,
    ),
)
def list_flows() -> dict[str, Any]:
    user_id = http.user(app)
    return flows.list_flows(user_id, http.query(app, *paging.QUERY))


@app.get(
    "/flow/<flow_id>",
    **openapi.route("Read your flow", tag="flows", ok=openapi.Flow, errors=(400, 404)),
)
def get_flow(flow_id: str) -> dict[str, Any]:
    return flows.get_flow(http.user(app), parse_flow_id(flow_id))


@app.put(
    "/flow/<flow_id>",
    **openapi.route(
        "Replace your flow (its deployments keep their snapshots)",
        tag="flows",
        ok=openapi.Flow,
        body=flows.FlowBody,
        errors=(400, 404, 413, 415),
    ),
)
def replace_flow(flow_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    body = http.parse_body(app, flows.FlowBody)
    return flows.replace_flow(user_id, parse_flow_id(flow_id), body)


@app.delete(
    "/flow/<flow_id>",
    **openapi.route(
        "Delete your flow (its deployments keep running)",
        tag="flows",
        status=204,
        errors=(400, 404),
    ),
)
def delete_flow(flow_id: str) -> Response[str]:
    flows.delete_flow(http.user(app), parse_flow_id(flow_id))
    return Response(status_code=204, body="")


# -- Deployments and tags (owner only) ----------------------------------------


@app.get(
    "/deployment/<deployment_id>",
    **openapi.route(
        "Read your deployment: the docs' flow_deployments row",
        tag="deployments",
        ok=openapi.Deployment,
        errors=(404,),
    ),
)
def get_deployment(deployment_id: str) -> dict[str, Any]:
    return deployments.get_deployment(http.user(app), deployment_id)


@app.patch(
    "/deployment/<deployment_id>",
    **openapi.route(
        "Change your deployment's customizable columns (read-only ones are a 400)",
        tag="deployments",
        ok=openapi.Deployment,
        body=deployments.DeploymentChanges,
        errors=(400, 404, 413, 415),
    ),
)
def update_deployment(deployment_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    changes = http.parse_body(app, deployments.DeploymentChanges)
    return deployments.update_deployment(user_id, deployment_id, changes)


@app.delete(
    "/deployment/<deployment_id>",
    **openapi.route(
        "Delete your deployment with its snapshot and tags (latest moves back; runs stay)",
        tag="deployments",
        status=204,
        errors=(404,),
    ),
)
def delete_deployment(deployment_id: str) -> Response[str]:
    deployments.delete_deployment(http.user(app), deployment_id)
    return Response(status_code=204, body="")


@app.get(
    "/flow/<flow_id>/deployments",
    **openapi.route(
        "Your deployments of a flow, newest first",
        tag="deployments",
        ok=openapi.DeploymentPage,
        errors=(400, 404),
        parameters=_PAGE,
    ),
)
def list_deployments(flow_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    query = http.query(app, *paging.QUERY)
    return deployments.list_deployments(user_id, parse_flow_id(flow_id), query)


@app.get(
    "/flow/<flow_id>/tags",
    **openapi.route(
        "Tags of your flow: the docs' flow_deployments_tags rows, by name",
        tag="tags",
        ok=openapi.TagPage,
        errors=(400, 404),
        parameters=_PAGE,
    ),
)
def list_tags(flow_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    query = http.query(app, *paging.QUERY)
    return deployments.list_tags(user_id, parse_flow_id(flow_id), query)


@app.put(
    "/flow/<flow_id>/tags/<tag>",
    **openapi.route(
        "Create a tag or move it to another of your deployments of the flow (not latest)",
        tag="tags",
        ok=openapi.Tag,
        body=deployments.TagBody,
        errors=(400, 404, 413, 415),
    ),
)
def set_tag(flow_id: str, tag: str) -> dict[str, Any]:
    user_id = http.user(app)
    body = http.parse_body(app, deployments.TagBody)
    return deployments.set_tag(user_id, parse_flow_id(flow_id), tag, body)


@app.delete(
    "/flow/<flow_id>/tags/<tag>",
    **openapi.route("Delete a tag (not latest)", tag="tags", status=204, errors=(400, 404)),
)
def delete_tag(flow_id: str, tag: str) -> Response[str]:
    deployments.delete_tag(http.user(app), parse_flow_id(flow_id), tag)
    return Response(status_code=204, body="")


# -- Flow runs ---------------------------------------------------------------


def _readable_run(run_id: str) -> flow_runs.FlowRunItem:
    # A run token is not a caller; only resolve one when no token was sent.
    credentials = http.credentials(app)
    token = credentials.bearer or ""
    caller = None if token.startswith("fr-") else http.caller(app)
    return flow_runs.readable_run(run_id, credentials, caller)


_RECORDS_PAGE = [
    openapi.query("limit", "records per page (nodes: 1-100, logs: 1-500; default the most)"),
    openapi.query("after", "the `next` of the previous page"),
]


@app.get(
    "/flow_run/<run_id>",
    **openapi.route(
        "Read a run: as the deployment owner, or with the run's token",
        tag="flow runs",
        ok=openapi.FlowRun,
        errors=(404,),
        auth=openapi.RUN_READER,
    ),
)
def get_flow_run(run_id: str) -> dict[str, Any]:
    return flow_runs.run_row(_readable_run(run_id))


@app.get(
    "/flow_run/<run_id>/nodes",
    **openapi.route(
        "What each node of a run did, in the order nodes finished",
        tag="flow runs",
        ok=openapi.NodeRunPage,
        errors=(400, 404),
        auth=openapi.RUN_READER,
        parameters=_RECORDS_PAGE,
    ),
)
def list_node_runs(run_id: str) -> dict[str, Any]:
    query = http.query(app, *paging.QUERY)
    return flow_runs.node_runs(_readable_run(run_id), query)


@app.get(
    "/flow_run/<run_id>/logs",
    **openapi.route(
        "A run's log: `log` nodes' lines and node errors, oldest first",
        tag="flow runs",
        ok=openapi.RunLogPage,
        errors=(400, 404),
        auth=openapi.RUN_READER,
        parameters=_RECORDS_PAGE,
    ),
)
def list_run_logs(run_id: str) -> dict[str, Any]:
    query = http.query(app, *paging.QUERY)
    return flow_runs.run_logs(_readable_run(run_id), query)


@app.post(
    "/flow_run/<run_id>/stop",
    **openapi.route(
        "Stop a run: a queued one at once, a running one within a second",
        tag="flow runs",
        ok=openapi.FlowRun,
        errors=(404, 409),
        auth=openapi.RUN_READER,
    ),
)
def stop_flow_run(run_id: str) -> dict[str, Any]:
    return flow_runs.stop_run(_readable_run(run_id), http.credentials(app))


@app.get(
    "/flow_run/<run_id>/signature_request",
    **openapi.route(
        "The signature a running run waits for: the message (base64) and the signer's key",
        tag="flow runs",
        ok=openapi.SignatureRequest,
        errors=(404,),
        auth=openapi.RUN_READER,
    ),
)
def get_signature_request(run_id: str) -> dict[str, Any]:
    return flow_runs.pending_signature_request(_readable_run(run_id))


@app.post(
    "/flow_run/<run_id>/signature",
    **openapi.route(
        "Answer the run's signature request: verified, then the run sends its transaction",
        tag="flow runs",
        ok=openapi.SignatureAccepted,
        body=flow_runs.SignatureBody,
        errors=(400, 404, 409, 413, 415),
        auth=openapi.RUN_READER,
    ),
)
def submit_signature(run_id: str) -> dict[str, Any]:
    run = _readable_run(run_id)
    return flow_runs.submit_signature(run, http.parse_body(app, flow_runs.SignatureBody))


@app.get(
    "/deployment/<deployment_id>/flow_runs",
    **openapi.route(
        "Runs of your deployment, newest first (also once it is deleted)",
        tag="flow runs",
        ok=openapi.FlowRunPage,
        errors=(400, 404),
        parameters=_PAGE,
    ),
)
def list_flow_runs(deployment_id: str) -> dict[str, Any]:
    user_id = http.user(app)
    return flow_runs.list_runs(user_id, deployment_id, http.query(app, *paging.QUERY))


# -- API keys ----------------------------------------------------------------


@app.post(
    "/apikey",
    **openapi.route(
        "Create an API key (shown once)",
        tag="API keys",
        ok=openapi.CreatedApiKey,
        status=201,
        body=apikeys.NewApiKey,
        errors=(400, 413, 415),
    ),
)
def create_api_key() -> tuple[dict[str, Any], int]:
    user_id = http.user(app)
    return apikeys.create(user_id, http.parse_body(app, apikeys.NewApiKey)), 201


@app.get(
    "/apikey",
    **openapi.route(
        "Your API keys, oldest first",
        tag="API keys",
        ok=openapi.ApiKeyPage,
        errors=(400,),
        parameters=_PAGE,
    ),
)
def list_api_keys() -> dict[str, Any]:
    user_id = http.user(app)
    return apikeys.list_keys(user_id, http.query(app, *paging.QUERY))


@app.delete(
    "/apikey/<key_id>",
    **openapi.route("Delete an API key", tag="API keys", status=204, errors=(404,)),
)
def delete_api_key(key_id: str) -> Response[str]:
    apikeys.delete(http.user(app), key_id)
    return Response(status_code=204, body="")


# -- Wallets -----------------------------------------------------------------


@app.post(
    "/wallet",
    **openapi.route(
        "Create a server-held Solana wallet, or import a keypair (the secret is never shown)",
        tag="wallets",
        ok=openapi.Wallet,
        status=201,
        body=wallets.NewWallet,
        errors=(400, 409, 413, 415, 503),
    ),
)
def create_wallet() -> tuple[dict[str, str], int]:
    user_id = http.user(app)
    wallet = wallets.create_wallet(user_id, http.parse_body(app, wallets.NewWallet))
    return wallet.row(), 201


@app.get(
    "/wallet",
    **openapi.route(
        "Your wallets, oldest first",
        tag="wallets",
        ok=openapi.WalletPage,
        errors=(400,),
        parameters=_PAGE,
    ),
)
def list_wallets() -> dict[str, Any]:
    user_id = http.user(app)
    return wallets.page_of_wallets(user_id, http.query(app, *paging.QUERY))


@app.delete(
    "/wallet/<wallet_id>",
    **openapi.route("Delete a wallet and its secret key", tag="wallets", status=204, errors=(404,)),
)
def delete_wallet(wallet_id: str) -> Response[str]:
    wallets.delete_wallet(http.user(app), wallet_id)
    return Response(status_code=204, body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
