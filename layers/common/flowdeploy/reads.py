"""Reading a deployment (`GET`/`POST /deployment/read`): run it synchronously and answer its
outputs as one IValue, cached for a few minutes.

As upstream (`read_deployment.rs`, `read_cache.rs`): the caller must be one the deployment's
start_permission admits (else 404), its entry flow must have been deployed with
`read_enabled` (else 403), the answer is cached 300 s per (deployment, caller, inputs)
with `ETag`, `Cache-Control` and `Last-Modified`, an `If-None-Match` of the current ETag
is a 304, and a read that runs past its budget is a 408. Stricter than upstream: the cache
is keyed by the deployment a tag resolves to now (a moved tag never answers the old
deployment's result), permission is checked before every cached answer, failed reads are
not cached, and a read never signs or sends a transaction (its run records origin "read").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

from flowdeploy import strict_json
from flowdeploy.auth import Caller
from flowdeploy.deployments import DeploymentRef, find_deployment
from flowdeploy.errors import BadRequest, Forbidden, PayloadTooLarge, RequestTimeout, Unprocessable
from flowdeploy.flow_runs import MAX_INPUTS_BYTES
from flowdeploy.ids import new_id, timestamp
from flowdeploy.settings import settings
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import read_cache
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import CachedReadItem, DeploymentItem, FlowRunItem
from flowdeploy.values import IValueError, decode_map, encode_map

READ_TTL_SECONDS = 300
# Inputs in the query string: the clients put them there up to 1,500 bytes; URLs are short.
MAX_QUERY_INPUTS_BYTES = 8_192
# Kept back from the function's remaining time to record and answer after the budget.
ANSWER_MARGIN_SECONDS = 4.0


class ReadDeploymentParams(BaseModel):
    """`POST /deployment/read` body (upstream's `ReadBody`): `inputs` (name → IValue) and
    `skip_cache` (run it afresh)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    inputs: dict[str, Any] = Field(default_factory=dict)
    skip_cache: StrictBool = False

    @field_validator("inputs", mode="before")
    @classmethod
    def _ivalues(cls, value: object) -> dict[str, Any]:
        if value is None:
            return {}
        try:
            return encode_map(decode_map(value, "inputs"))
        except IValueError as error:
            raise PydanticCustomError("ivalue", str(error)) from None


def query_params(query: Mapping[str, str]) -> ReadDeploymentParams:
    """`GET /deployment/read`'s `inputs` (JSON, name → IValue) and `skip_cache`."""
    text = query.get("inputs")
    inputs: object = {}
    if text is not None:
        if len(text.encode()) > MAX_QUERY_INPUTS_BYTES:
            raise PayloadTooLarge(
                f"inputs in the query are limited to {MAX_QUERY_INPUTS_BYTES} bytes: "
                "POST /deployment/read with a body instead"
            )
        try:
            inputs = strict_json.load(text, "inputs", strict_json.MAX_DEPTH)
        except BadRequest as error:
            raise BadRequest(f"invalid read inputs query payload: {error.message}") from None
    skip = query.get("skip_cache", "false").lower()
    if skip not in {"true", "false", "1", "0"}:
        raise BadRequest(f"skip_cache must be true or false, got {query['skip_cache']!r}")
    try:
        return ReadDeploymentParams.model_validate(
            {"inputs": inputs, "skip_cache": skip in {"true", "1"}}
        )
    except ValueError as error:
        raise BadRequest(f"invalid read inputs query payload: {error}") from None


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """The outputs (one IValue) and the cache headers that go with them."""

    body: dict[str, Any]
    etag: str
    cached_at: float
    expires_at: float
    cached: bool

    def headers(self, now: float | None = None) -> dict[str, str]:
        left = max(0, math.ceil(self.expires_at - (time.time() if now is None else now)))
        return {
            "ETag": self.etag,
            "Cache-Control": f"private, max-age={left}",
            "Last-Modified": formatdate(self.cached_at, usegmt=True),
        }

    def matches(self, if_none_match: str | None) -> bool:
        """Whether the caller's `If-None-Match` names this answer (a 304)."""
        if not if_none_match:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or self.etag in tags


def read_deployment(
    ref: DeploymentRef, params: ReadDeploymentParams, caller: Caller, time_left: float
) -> ReadAnswer:
    """The deployment's outputs for these inputs: cached, or run now within the budget."""
    size = len(json.dumps(params.inputs, separators=(",", ":")))
    if size > MAX_INPUTS_BYTES:
        raise PayloadTooLarge(f"inputs are {size} bytes of JSON, the limit is {MAX_INPUTS_BYTES}")
    deployment = find_deployment(ref, caller)
    key = cache_key(deployment.id, caller, params.inputs)
    if not params.skip_cache:
        hit = read_cache.get(key)
        if hit is not None:
            return _answer(hit, cached=True)
    budget = min(settings().read_timeout_seconds, time_left - ANSWER_MARGIN_SECONDS)
    if budget <= 0:
        raise RequestTimeout("read timeout: no time is left to run the deployment")
    body = _run(deployment, params.inputs, caller, budget)
    item = read_cache.put(key, body, etag_of(body), time.time(), READ_TTL_SECONDS)
    return _answer(item, cached=False)


def cache_key(deployment_id: str, caller: Caller, inputs: dict[str, Any]) -> str:
    """One cache entry per (deployment, caller scope, inputs in canonical JSON)."""
    scope = f"user:{caller.user_id}" if caller.user_id else f"pubkey:{caller.pubkey}"
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    text = "\0".join(("deployment-read", deployment_id, scope, canonical))
    return hashlib.sha256(text.encode()).hexdigest()


def etag_of(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def _answer(item: CachedReadItem, cached: bool) -> ReadAnswer:
    return ReadAnswer(
        body=item.body,
        etag=item.etag,
        cached_at=float(item.cached_at),
        expires_at=float(item.expires_at),
        cached=cached,
    )


def _run(
    deployment: DeploymentItem, inputs: dict[str, Any], caller: Caller, budget: float
) -> dict[str, Any]:
    """Run the deployment now, recorded as a run of origin "read"; its outputs as an IValue."""
    # The engine loads only when a read is not answered from the cache.
    from flowdeploy import runner
    from flowdeploy.engine import FlowInvalid, build_flow_set

    snapshot = deployment_store.load_snapshot(deployment)
    entry = int(deployment.entrypoint)
    if entry not in snapshot:
        raise Unprocessable(f"deployment {deployment.id} has no snapshot of its entry flow")
    if not snapshot[entry].get("read_enabled"):
        raise Forbidden(
            f"read not allowed: flow {entry} was deployed without read_enabled (set it on the "
            "flow and deploy again)"
        )
    try:
        graphs = build_flow_set(snapshot, entry)
    except FlowInvalid as error:
        raise Unprocessable(f"the deployed flow cannot run: {error.message}") from None
    moment = timestamp()
    run = FlowRunItem(
        id=new_id(),
        deployment_id=deployment.id,
        flow_id=entry,
        user_id=deployment.user_id,
        caller=caller.record(),
        origin=run_store.READ_ORIGIN,
        inputs=inputs,
        output_instructions=False,
        created_at=moment,
        updated_at=moment,
    )
    run_store.insert_running(run, time.time() + budget + runner.LEASE_SLACK_SECONDS)
    result = asyncio.run(runner.execute_claimed(run, deployment, graphs, entry, budget))
    if result.timed_out:
        raise RequestTimeout(f"read timeout: the deployment ran longer than {budget:g} s")
    if result.status != run_store.SUCCEEDED:
        raise Unprocessable(f"the read failed (flow run {run.id}): {result.error}")
    return {"M": encode_map(result.outputs)}
