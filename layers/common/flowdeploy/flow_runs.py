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

from flowdeploy import base58
from flowdeploy.auth import Caller, Credentials, issue_run_token, run_id_of_token
from flowdeploy.deployments import DeploymentRef, find_startable, owned_deployment
from flowdeploy.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)
from flowdeploy.ids import new_id, parse_uuid, timestamp
from flowdeploy.store import queue, run_records
from flowdeploy.store import runs as store
from flowdeploy.store.models import FlowRunItem, NodeRunItem, RunLogItem
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
    moment = timestamp()
    store.insert(
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


def list_runs(user_id: str, deployment_id: str) -> list[dict[str, Any]]:
    """The owner's runs of one deployment, newest first."""
    deployment = owned_deployment(user_id, deployment_id)
    return [run_row(run) for run in store.of_deployment(deployment.id)]


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


def _paging(query: Mapping[str, str], maximum: int) -> tuple[int | None, int]:
    after = query.get("after")
    limit = query.get("limit", str(maximum))
    for name, text in (("after", after), ("limit", limit)):
        if text is not None and not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise BadRequest(f"{name} must be a non-negative integer, got {text!r}")
    size = int(limit)
    if not 1 <= size <= maximum:
        raise BadRequest(f"limit must be 1 to {maximum}, got {size}")
    return (int(after) if after is not None else None), size


def node_runs(run: FlowRunItem, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the run's node records, in the order the nodes finished (or were skipped)."""
    after, limit = _paging(query, MAX_NODES_PAGE)
    items, following = run_records.page(NodeRunItem, run.id, after, limit)
    return {
        "nodes": [
            {
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
            for item in items
        ],
        "next": following,
    }


def run_logs(run: FlowRunItem, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the run's log lines (`log` nodes and node errors), oldest first."""
    after, limit = _paging(query, MAX_LOGS_PAGE)
    items, following = run_records.page(RunLogItem, run.id, after, limit)
    return {
        "logs": [
            {
                "seq": run_records.seq_of(item.sk),
                "time": item.time,
                "level": item.level,
                "node_id": item.node_id,
                "content": item.content,
            }
            for item in items
        ],
        "next": following,
    }
