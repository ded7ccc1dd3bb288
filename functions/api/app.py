"""ApiFunction: flows, deployments, tags, flow runs, API keys and wallets (every other route)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import (
    api_inputs,
    apikeys,
    deployments,
    flow_runs,
    flows,
    http,
    paging,
    run_output,
    sign_in,
    signature_requests,
    wallets,
)
from flowdeploy.deployments import parse_flow_id
from flowdeploy.http import openapi
from flowdeploy.observability import logger
from flowdeploy.settings import settings

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


# Kept back from the function's remaining time to answer after waiting on a run.
ANSWER_MARGIN = 3.0


def _time_left() -> float:
    return float(app.lambda_context.get_remaining_time_in_millis()) / 1000


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
        body=flow_runs.StopFlowParams,
        optional_body=True,
        errors=(400, 404, 409, 413, 415),
        auth=openapi.RUN_READER,
    ),
)
def stop_flow_run(run_id: str) -> dict[str, Any]:
    run = _readable_run(run_id)
    params = http.parse_body(app, flow_runs.StopFlowParams, optional=True)
    return flow_runs.stop_run(run, http.credentials(app), params.reason)


@app.get(
    "/flow_run/<run_id>/signature_request",
    **openapi.route(
        "The signature a running run waits for (upstream's shape); waits up to 3.5 s for the "
        "run to ask, then 404",
        tag="signatures",
        ok=openapi.SignatureRequest,
        errors=(404,),
        auth=openapi.RUN_READER,
    ),
)
def get_signature_request(run_id: str) -> dict[str, Any]:
    run = _readable_run(run_id)
    wait = min(settings().signature_request_wait_seconds, _time_left() - ANSWER_MARGIN)
    return signature_requests.pending_request(run, wait)


@app.post(
    "/flow_run/<run_id>/signature",
    **openapi.route(
        "Answer the run's signature request: verified, then the run sends its transaction",
        tag="signatures",
        ok=openapi.SignatureAccepted,
        body=signature_requests.RunSignatureParams,
        errors=(400, 404, 409, 413, 415),
        auth=openapi.RUN_READER,
    ),
)
def submit_run_signature(run_id: str) -> dict[str, Any]:
    run = _readable_run(run_id)
    params = http.parse_body(
        app, signature_requests.RunSignatureParams, max_bytes=signature_requests.MAX_SUBMIT_BYTES
    )
    request_id = signature_requests.submit_for_run(run, params)
    return {"success": True, "signature_request_id": request_id}


# -- Upstream's run routes (the Space Operator clients): the same domain functions ------


@app.get(
    "/flow/signature_request/<run_id>",
    **openapi.route(
        "The signature a running run waits for; waits up to 3.5 s for the run to ask, then 404",
        description="Space Operator clients: getSignatureRequest / handle.signatureRequest().",
        tag="signatures",
        ok=openapi.SignatureRequest,
        errors=(404,),
        auth=openapi.RUN_READER,
    ),
)
def get_upstream_signature_request(run_id: str) -> dict[str, Any]:
    return get_signature_request(run_id)


@app.post(
    "/signature/submit",
    **openapi.route(
        "Answer a signature request by its id; no credentials: the signature proves itself",
        description=(
            "Verified against the request's key and message before it is stored. `new_msg` "
            "(base64) only when the wallet changed the message and kept its logic (e.g. added "
            "compute-budget instructions); the signature must then be of the new message. "
            "Space Operator clients: submitSignature / signAndSubmitSignature."
        ),
        tag="signatures",
        ok=openapi.Success,
        body=signature_requests.SubmitSignatureParams,
        errors=(400, 404, 409, 413, 415, 503),
        auth=openapi.PUBLIC,
    ),
)
def submit_signature() -> dict[str, bool]:
    params = http.parse_body(
        app,
        signature_requests.SubmitSignatureParams,
        max_bytes=signature_requests.MAX_SUBMIT_BYTES,
    )
    signature_requests.submit(params.id, params.signature, params.new_msg)
    return {"success": True}


@app.get(
    "/flow/output/<run_id>",
    **openapi.route(
        "Wait until the run is final (up to about 25 s), then its outputs as one IValue map",
        description=(
            "A run still going after the wait is a 504 (ask again); a failed or stopped run "
            "is a 422 whose error is the run's. With output_instructions the transaction for "
            "the wallet is the output `transaction`. Space Operator clients: getFlowOutput / "
            "handle.output()."
        ),
        tag="flow runs",
        ok=openapi.IValueOutput,
        errors=(404, 422, 504),
        auth=openapi.RUN_READER,
    ),
)
def get_flow_output(run_id: str) -> dict[str, Any]:
    run = _readable_run(run_id)
    budget = min(settings().flow_output_wait_seconds, _time_left() - ANSWER_MARGIN)
    return run_output.output_value(run_output.wait_until_final(run, max(0.0, budget)))


@app.post(
    "/flow/stop/<run_id>",
    **openapi.route(
        "Stop a run; `reason` is recorded on it",
        description="Space Operator clients: stopFlow / handle.stop().",
        tag="flow runs",
        ok=openapi.Success,
        body=flow_runs.StopFlowParams,
        optional_body=True,
        errors=(400, 404, 409, 413, 415),
        auth=openapi.RUN_READER,
    ),
)
def stop_flow(run_id: str) -> dict[str, bool]:
    stop_flow_run(run_id)  # upstream answers only that it worked
    return {"success": True}


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


@app.get(
    "/flow_run/<run_id>/api_input",
    **openapi.route(
        "The run's api_input nodes waiting for a value, with the URL to POST it to",
        tag="flow runs",
        ok=list[openapi.WaitingApiInput],
        errors=(404,),
        auth=openapi.RUN_READER,
    ),
)
def list_api_inputs(run_id: str) -> list[dict[str, Any]]:
    return api_inputs.waiting(_readable_run(run_id))


@app.post(
    "/flow/submit/<key>",
    **openapi.route(
        "Give a waiting api_input node its value (upstream's route; the key is the credential)",
        tag="flow runs",
        ok=openapi.Submitted,
        body=api_inputs.SubmitBody,
        errors=(400, 404, 413, 415),
        auth=openapi.PUBLIC,
    ),
)
def submit_api_input(key: str) -> dict[str, bool]:
    body = http.parse_body(app, api_inputs.SubmitBody)
    api_inputs.answer(key, api_inputs.parse_submitted(body))
    return {"success": True}


@app.delete(
    "/flow/submit/<key>",
    **openapi.route(
        "Cancel a waiting api_input node: it fails with `canceled by user`",
        tag="flow runs",
        ok=openapi.Submitted,
        errors=(404,),
        auth=openapi.PUBLIC,
    ),
)
def cancel_api_input(key: str) -> dict[str, bool]:
    api_inputs.answer(key, None)
    return {"success": True}


# -- Commands, export and import ---------------------------------------------------


@app.get(
    "/nodes",
    **openapi.route(
        "The commands flows can use, per document format: ports, types, config schema",
        tag="flows",
        ok=list[openapi.NodeDefinition],
        errors=(400,),
        auth=openapi.PUBLIC,
        parameters=[openapi.query("format", "flowdeploy or spaceoperator (default: both)")],
    ),
)
def list_nodes() -> list[dict[str, Any]]:
    return flows.catalogue((app.current_event.query_string_parameters or {}).get("format"))


@app.post(
    "/data/export",
    **openapi.route(
        "Your flows, wallets (public keys) and key-value stores, in Space Operator's "
        "ExportedUserData shape",
        tag="flows",
        ok=openapi.ExportedData,
    ),
)
def export_data() -> dict[str, str]:
    from flowdeploy import exports

    return exports.export_user_data(http.user(app))


@app.post(
    "/data/import",
    **openapi.route(
        "Import a Space Operator export (ExportedUserData, e.g. docker/export.json) into "
        "your account: flows get new ids, keypairs are encrypted, a second import of the "
        "same export adds nothing",
        tag="flows",
        ok=openapi.ImportReport,
        errors=(400, 413, 415),
    ),
)
def import_data() -> dict[str, Any]:
    from flowdeploy import imports

    user_id = http.user(app)
    return imports.import_user_data(user_id, http.parse_body(app, imports.ExportedUserData))


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


@app.post(
    "/wallets/upsert",
    **openapi.route(
        "Add or update a wallet, upstream's way: public_key only (an adapter wallet) or a "
        "keypair the server holds",
        description="Space Operator clients: upsertWallet / wallets.upsert. Answers the rows.",
        tag="wallets",
        ok=list[openapi.WalletRow],
        status=201,
        body=wallets.UpsertWalletBody,
        errors=(400, 403, 404, 409, 413, 415),
    ),
)
def upsert_wallet() -> tuple[list[dict[str, Any]], int]:
    user_id = http.user(app)
    wallet = wallets.upsert_wallet(user_id, http.parse_body(app, wallets.UpsertWalletBody))
    return [wallets.upstream_row(wallet)], 201


# -- Wallet sign-in and tokens -------------------------------------------------------


@app.post(
    "/auth/init",
    **openapi.route(
        "Start a wallet sign-in: the message to sign (site, wallet, nonce, expiry in 5 min)",
        tag="sign-in",
        ok=openapi.AuthMessage,
        body=sign_in.InitAuthParams,
        errors=(400, 413, 415),
        auth=openapi.PUBLIC,
    ),
)
def init_auth() -> dict[str, str]:
    params = http.parse_body(app, sign_in.InitAuthParams, max_bytes=sign_in.MAX_TOKEN_LENGTH)
    domain = app.current_event.request_context.domain_name or ""
    return {"msg": sign_in.init(params.pubkey, domain)}


@app.post(
    "/auth/confirm",
    **openapi.route(
        "Finish a wallet sign-in with `<message>.<base58 signature>`: a session whose "
        "access_token this API accepts; the wallet is the same user every time",
        description="A message works once and for 5 minutes; anything else is a 401.",
        tag="sign-in",
        ok=openapi.ConfirmedAuth,
        body=sign_in.ConfirmAuthParams,
        errors=(400, 401, 413, 415, 503),
        auth=openapi.PUBLIC,
    ),
)
def confirm_auth() -> dict[str, Any]:
    params = http.parse_body(
        app, sign_in.ConfirmAuthParams, max_bytes=sign_in.MAX_TOKEN_LENGTH + 64
    )
    return sign_in.confirm(params.token)


@app.post(
    "/auth/claim_token",
    **openapi.route(
        "An access token for the user of the API key sent (no refresh token: claim again)",
        tag="sign-in",
        ok=openapi.ClaimedToken,
        auth=openapi.API_KEY,
    ),
)
def claim_token() -> dict[str, Any]:
    return sign_in.claim_token(http.caller(app))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
