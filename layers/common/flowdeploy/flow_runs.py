"""Flow runs: start a deployment, read a run back, and take queued runs off the queue."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

from flowdeploy import base58
from flowdeploy.auth import Caller, Credentials, issue_run_token, run_id_of_token
from flowdeploy.deployments import DeploymentRef, find_startable, owned_deployment
from flowdeploy.errors import NotFound, PayloadTooLarge, ServiceUnavailable, Unauthorized
from flowdeploy.ids import new_id, parse_uuid, timestamp
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import queue
from flowdeploy.store import runs as store
from flowdeploy.store.models import FlowRunItem
from flowdeploy.values import IValueError, decode_map, encode_map

logger = logging.getLogger(__name__)

# RunFunction marks runs started and finished; executing the snapshot's nodes is the
# flow engine's job, which this release does not include yet.
# A run item holds its inputs; DynamoDB items stop at 400 KB.
MAX_INPUTS_BYTES = 256_000
ENGINE_MISSING = "this release has no flow engine yet: the run was claimed and closed unexecuted"


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
        # Leave no run behind that claims to be queued but never will run.
        store.delete_queued(run_id)
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


def execute_queued_run(run_id: str, *, last_attempt: bool = False) -> str | None:
    """Claim a queued run and take it to a final status; None if it was already claimed.

    If running it fails unexpectedly, the claim is released so the message's redelivery
    can try again; on the last delivery the run is marked failed instead.
    """
    run = store.claim(run_id)
    if run is None:
        logger.info("run %s was already claimed or is not queued; skipping", run_id)
        return None
    try:
        store.finish(run_id, store.FAILED, error=_run(run))
    except Exception as error:  # anything at all: the run must not stay `running`
        if not last_attempt:
            store.release(run_id)
            raise
        logger.exception("run %s failed on its last delivery", run_id)
        store.finish(run_id, store.FAILED, error=f"the run could not be executed: {error}")
    return store.FAILED


def _run(run: FlowRunItem) -> str:
    """Execute the run's snapshot; the error it ends with."""
    deployment = deployment_store.get(run.deployment_id) if run.deployment_id else None
    if deployment is None:
        return f"deployment {run.deployment_id} no longer exists"
    if int(deployment.entrypoint) not in deployment_store.load_snapshot(deployment):
        return f"deployment {deployment.id} has no snapshot of its entry flow"
    return ENGINE_MISSING
