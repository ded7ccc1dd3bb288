"""Flow runs: start a deployment, read a run and its records back, stop it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

import flowdeploy.settings
from flowdeploy import base58, paging
from flowdeploy.auth import Caller, Credentials, issue_run_token, run_id_of_token
from flowdeploy.deployments import DeploymentRef, find_startable
from flowdeploy.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from flowdeploy.ids import new_id, parse_uuid, timestamp
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import live_runs, queue, run_records
from flowdeploy.store import runs as store
from flowdeploy.store.models import FlowRunItem, NodeRunItem, RunLogItem
from flowdeploy.store.run_records import seq_of
from flowdeploy.values import IValueError, decode_map, encode_map

logger = logging.getLogger(__name__)

# A run item holds its inputs; DynamoDB items stop at 400 KB.
MAX_INPUTS_BYTES = 256_000


class StartDeploymentParams(BaseModel):
    """The docs' `StartDeploymentParams`, plus upstream's one-run `output_instructions`."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict)
    action_signer: str | None = None
    output_instructions: StrictBool = False

    @field_validator("inputs", mode="before")
    @classmethod
    def _ivalues(cls, value: object) -> dict[str, Any]:
        try:
            return encode_map(decode_map(value, "inputs"))
        except IValueError as error:
            raise PydanticCustomError("ivalue", str(error)) from None

    @field_validator("action_signer")
    @classmethod
    def _pubkey(cls, value: str | None) -> str | None:
        if value is not None and not base58.is_pubkey(value):
            raise PydanticCustomError(
                "pubkey", "action_signer must be a base58 public key (32 bytes)"
            )
        return value


def start(
    ref: DeploymentRef,
    params: StartDeploymentParams,
    caller: Caller,
    origin: str = "api",
    new_run_id: Callable[[], str] = new_id,
) -> dict[str, str]:
    """Queue a run of the deployment `ref` names: the docs' `{"flow_run_id", "token"}`."""
    run_id = queue_run(ref, params, caller, origin, new_run_id)
    return {"flow_run_id": run_id, "token": issue_run_token(run_id)}


def queue_run(
    ref: DeploymentRef,
    params: StartDeploymentParams,
    caller: Caller,
    origin: str = "api",
    new_run_id: Callable[[], str] = new_id,
) -> str:
    """Queue a run of the deployment `ref` names; the run executes asynchronously."""
    size = len(json.dumps(params.inputs, separators=(",", ":")))
    if size > MAX_INPUTS_BYTES:
        raise PayloadTooLarge(f"inputs are {size} bytes of JSON, the limit is {MAX_INPUTS_BYTES}")
    deployment = find_startable(ref, caller)
    run_id = new_run_id()
    # The runs are the owner's, whoever starts them: a public deployment's callers share its
    # owner's places (fresh public keys cannot multiply them).
    limit = flowdeploy.settings.settings().max_live_runs_per_user
    if not live_runs.admit(deployment.user_id, run_id, limit):
        raise TooManyRequests(
            f"the deployment's owner already has {limit} runs queued or running, the most "
            "MAX_LIVE_RUNS_PER_USER allows; start again when one has finished"
        )
    moment = timestamp()
    _insert_or_release(
        deployment.user_id,
        run_id,
        lambda: store.insert(
            FlowRunItem(
                id=run_id,
                deployment_id=deployment.id,
                flow_id=deployment.entrypoint,
                user_id=deployment.user_id,
                caller=caller.record(),
                origin=origin,
                status=store.QUEUED,
                inputs=params.inputs,
                action_signer=params.action_signer,
                # A start can switch output_instructions on for its run, never off.
                output_instructions=deployment.output_instructions or params.output_instructions,
                created_at=moment,
                updated_at=moment,
            )
        ),
    )
    try:
        queue.enqueue_run(run_id)
    except queue.QueueUnavailable as error:
        # Leave no run behind that claims to be queued but never will run. If even the
        # delete fails, the sweeper fails the run once it has been queued too long.
        try:
            store.delete_queued(run_id)
        except Exception:
            logger.exception("could not remove run %s after its message failed", run_id)
        raise ServiceUnavailable("could not queue the run; nothing was started, retry") from error
    return run_id


def _insert_or_release(user_id: str, run_id: str, insert: Callable[[], None]) -> None:
    try:
        insert()
    except Exception:
        # Its place would come back after START_GRACE_SECONDS anyway; give it back now.
        try:
            live_runs.release(user_id, run_id)
        except Exception:
            logger.exception("could not give back the place of run %s", run_id)
        raise


def run_row(run: FlowRunItem) -> dict[str, Any]:
    return {
        "id": run.id,
        "deployment_id": run.deployment_id,
        "flow_id": int(run.flow_id),
        "status": run.status,
        "origin": run.origin,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "error": run.error,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "stop_requested": run.stop_requested,
        "transaction": run.transaction,
        "simulation": run.simulation,
    }


def readable_run(run_id: str, credentials: Credentials, caller: Caller | None) -> FlowRunItem:
    """The run, if the caller is its owner or holds its `fr-` token; 404 otherwise."""
    parsed = parse_uuid(run_id)
    token = credentials.bearer
    if token is not None and token.startswith("fr-"):
        granted = run_id_of_token(token)
        if granted is None:
            raise Unauthorized("invalid run token")
        run = store.get(granted) if granted == parsed else None
    else:
        if caller is None:
            raise Unauthorized("send the run's token or the owner's credentials")
        run = store.get(parsed) if parsed and caller.user_id else None
        if run is not None and run.user_id != caller.user_id:
            run = None
    if run is None:
        raise NotFound(f"flow run not found: {run_id}")
    return run


MAX_RUNS_PAGE = 100


def list_runs(user_id: str, deployment_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the owner's runs of one deployment, newest first, also once the deployment
    is deleted (its runs keep its id and their owner): `{"flow_runs": [...], "next": ...}`."""
    page = paging.request(query, MAX_RUNS_PAGE, parse_uuid)
    parsed = parse_uuid(deployment_id)
    if parsed is None or _runs_owner(parsed) != user_id:
        raise NotFound(f"deployment not found: {deployment_id}")
    found = store.of_deployment(parsed, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, run_row, lambda run: run.id)
    return {"flow_runs": rows, "next": following}


def _runs_owner(deployment_id: str) -> str | None:
    """Whose runs of the deployment are: its owner's, or, once it is deleted, its runs'."""
    deployment = deployment_store.get(deployment_id)
    if deployment is not None:
        return deployment.user_id
    newest = next(iter(store.of_deployment(deployment_id, limit=1)), None)
    return newest.user_id if newest is not None else None


MAX_STOP_REASON = 1_000


class StopFlowParams(BaseModel):
    """Upstream's `POST /flow/stop/{run}` body: `reason` is recorded on the run;
    `timeout_millies` is accepted (the run stops within a second here either way)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    timeout_millies: Annotated[StrictInt, Field(ge=0, le=2**32 - 1)] = 0
    reason: Annotated[str, StringConstraints(max_length=MAX_STOP_REASON)] | None = None


def stop_run(
    run: FlowRunItem, credentials: Credentials, reason: str | None = None
) -> dict[str, Any]:
    """Stop a queued run at once, or ask the worker running it to stop; 409 once it is final.

    The run records who stopped it and, when given, why.
    """
    who = "the run token's holder" if (credentials.bearer or "").startswith("fr-") else "its owner"
    stated = (reason or "").strip()
    stopped = store.request_stop(run.id, f"stopped by {who}" + (f": {stated}" if stated else ""))
    if stopped is None:
        current = store.get(run.id)
        status = current.status if current is not None else "gone"
        raise Conflict(f"flow run {run.id} has already finished: {status}")
    return run_row(stopped)


# -- Node runs and logs (same access as the run) --------------------------------

MAX_NODES_PAGE = 100
MAX_LOGS_PAGE = 500


def _seq(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _node_row(item: NodeRunItem) -> dict[str, Any]:
    return {
        "seq": run_records.seq_of(item.sk),
        "node_id": item.node_id,
        "command": item.command,
        "flow_id": int(item.flow_id) if item.flow_id is not None else None,
        "status": item.status,
        "inputs": item.inputs,
        "outputs": item.outputs,
        "error": item.error,
        "started_at": item.started_at,
        "finished_at": item.finished_at,
        "times": int(item.times or 0),
    }


def _log_row(item: RunLogItem) -> dict[str, Any]:
    return {
        "seq": run_records.seq_of(item.sk),
        "time": item.time,
        "level": item.level,
        "node_id": item.node_id,
        "content": item.content,
    }


def node_runs(run: FlowRunItem, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the run's node records, in the order the nodes finished (or were skipped)."""
    page = paging.request(query, MAX_NODES_PAGE, _seq)
    found = run_records.records(NodeRunItem, run.id, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, _node_row, lambda item: seq_of(item.sk))
    return {"nodes": rows, "next": following}


def run_logs(run: FlowRunItem, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the run's log lines (`log` nodes and node errors), oldest first."""
    page = paging.request(query, MAX_LOGS_PAGE, _seq)
    found = run_records.records(RunLogItem, run.id, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, _log_row, lambda item: seq_of(item.sk))
    return {"logs": rows, "next": following}
