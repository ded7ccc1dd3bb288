"""Solana Actions (Blinks): a deployment that any wallet can run from any website.

`GET /action/{id}` describes the deployment as an Action: its title, icon, description and
label (deployment columns, with defaults) and one linked action whose parameters are the
entry flow's `flow_input` nodes, typed as they declare. `POST /action/{id}` with
`{"account"}` starts the deployment as that wallet, exactly as `Authorization: Bearer
<account>` would (the deployment's start_permission applies, and anything it refuses is a
404), with `action_signer` = the account and the input `account` (B3) next to the
parameters, and answers the transaction for the wallet. With an `action_identity` (and
`output_instructions` off), the run goes on after that transaction: it asks the account
for its signature, the answer is the request's transaction, and when the wallet sends it
the run finds it on chain by its identity memo and continues. Without one, nothing could
find it, so the run stops at the transaction (`output_instructions`). Errors are the
specification's `{"message"}`.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from flowdeploy import base58, signature_requests
from flowdeploy.auth import Caller
from flowdeploy.deployments import DeploymentRef, admits
from flowdeploy.errors import BadRequest, GatewayTimeout, NotFound, Unprocessable
from flowdeploy.flow_runs import StartDeploymentParams, queue_run
from flowdeploy.ids import parse_uuid
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import DeploymentItem
from flowdeploy.values import IValue, IValueError, decode_map, encode_map

logger = logging.getLogger(__name__)

ACTION_VERSION = "2.4"  # the Solana Actions specification version served
ACCOUNT_INPUT = "account"
ORIGIN = "action"
# CAIP-2 ids of the public clusters: "solana:" + the first 32 characters of the genesis hash.
BLOCKCHAIN_IDS = {
    "mainnet-beta": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "devnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    "testnet": "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
}
ACTIONS_JSON = {"rules": [{"pathPattern": "/action/*", "apiPath": "/action/*"}]}
DEFAULT_LABEL = "Run"
DEFAULT_ICON_PATH = "/actions/icon.svg"
# A wallet waits on the answer: poll at least every 0.5 s.
MAX_POLL_SECONDS = 0.5
BASE58_PATTERN = "^[1-9A-HJ-NP-Za-km-z]{32,44}$"
UNSIGNED_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "u128": 128}
SIGNED_BITS = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "i128": 128}
JSON_TYPES = {"json", "object", "array"}
# Declared type -> the IValue tag its text is read as (anything else is a string).
TAG_OF = {
    **dict.fromkeys(("u8", "u16", "u32", "u64"), "U"),
    **dict.fromkeys(("i8", "i16", "i32", "i64"), "I"),
    "u128": "U1",
    "i128": "I1",
    "f32": "F",
    "f64": "F",
    "decimal": "D",
    "number": "D",
    "pubkey": "B3",
    "address": "B3",
}


class ActionPostBody(BaseModel):
    """The specification's ActionPostRequest. Fields of later versions (`type`, `signature`,
    `state`…) are ignored, so newer clients keep working."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    account: str
    data: dict[str, str | list[str]] | None = None


# -- The flow's inputs as the Action's parameters ---------------------------------------


@dataclass(frozen=True, slots=True)
class Parameter:
    """One `flow_input` node of the entry flow, as the Action asks for it."""

    name: str
    type: str  # upstream's declared type: u64, decimal, pubkey, string, free…
    required: bool

    def describe(self) -> dict[str, Any]:
        """The specification's ActionParameter for this input."""
        described: dict[str, Any] = {"name": self.name, "label": self.name}
        kind = self.type
        if kind == "bool":
            described["type"] = "select"
            described["options"] = [
                {"label": "yes", "value": "true"},
                {"label": "no", "value": "false"},
            ]
        elif kind in UNSIGNED_BITS:
            described.update(type="number", min=0, pattern="^[0-9]+$")
            described["patternDescription"] = "a whole number, 0 or more"
        elif kind in SIGNED_BITS:
            described.update(type="number", pattern="^-?[0-9]+$")
            described["patternDescription"] = "a whole number"
        elif kind in {"f32", "f64", "decimal", "number"}:
            described["type"] = "number"
        elif kind in {"pubkey", "address"}:
            described.update(type="text", pattern=BASE58_PATTERN)
            described["patternDescription"] = "a Solana address (base58)"
        elif kind in JSON_TYPES:
            described.update(type="textarea", patternDescription="JSON")
        else:
            described["type"] = "text"
        described["required"] = self.required
        return described

    def value(self, given: str | list[str]) -> IValue:
        """The flow input this parameter's text stands for; 400 naming it if it does not fit."""
        if isinstance(given, list):
            return IValue("A", [self._scalar(item) for item in given])
        return self._scalar(given)

    def _scalar(self, text: str) -> IValue:
        kind = self.type
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered not in {"true", "false"}:
                raise BadRequest(f"parameter {self.name!r}: expected true or false, got {text!r}")
            return IValue("B", lowered == "true")
        if kind in JSON_TYPES:
            try:
                return self._plain(json.loads(text))
            except json.JSONDecodeError as error:
                raise BadRequest(f"parameter {self.name!r}: not JSON: {error.msg}") from None
        tag = TAG_OF.get(kind)
        doc = {tag: text.strip()} if tag else {"S": text}
        try:
            value = decode_map({self.name: doc}, "parameter")[self.name]
        except IValueError as error:
            raise BadRequest(f"parameter {self.name!r}: {error.reason}") from None
        bits = UNSIGNED_BITS.get(kind) or SIGNED_BITS.get(kind)
        if bits and bits < 64 and isinstance(value.value, int):
            signed = kind in SIGNED_BITS
            low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
            if not low <= value.value <= high:
                raise BadRequest(f"parameter {self.name!r}: {kind} is {low} to {high}, got {text}")
        return value

    def _plain(self, doc: object) -> IValue:
        from flowdeploy.engine.convert import from_plain

        try:
            return from_plain(doc, f"parameter {self.name!r}")
        except IValueError as error:
            raise BadRequest(str(error)) from None


def parameters_of(deployment: DeploymentItem) -> tuple[list[Parameter], str]:
    """The entry flow's inputs but `account` (the wallet fills it), and the flow's name."""
    from flowdeploy.engine import build_flow_set
    from flowdeploy.engine.commands.flow import FlowInput

    snapshot = deployment_store.load_snapshot(deployment)
    entry = int(deployment.entrypoint)
    if entry not in snapshot:
        raise NotFound(f"deployment not found: {deployment.id}")
    graph = build_flow_set(snapshot, entry)[entry]
    found: dict[str, Parameter] = {}
    for node in graph.nodes.values():
        command = node.command
        if isinstance(command, FlowInput) and command.label != ACCOUNT_INPUT:
            parameter = Parameter(command.label, command.declared_type, not command.has_default)
            found.setdefault(parameter.name, parameter)
    name = str(snapshot[entry].get("name") or f"Flow {entry}")
    return sorted(found.values(), key=lambda p: p.name), name


# -- GET ---------------------------------------------------------------------------------


def action_deployment(deployment_id: str) -> DeploymentItem:
    """The deployment, if a wallet may start it (its start_permission is Anonymous); 404
    alike for a missing one and one a wallet may not start."""
    parsed = parse_uuid(deployment_id)
    deployment = deployment_store.get(parsed) if parsed else None
    wallet = Caller(kind="anonymous", via="pubkey")
    if deployment is None or not admits(deployment.start_permission, deployment.user_id, wallet):
        raise NotFound(f"deployment not found: {deployment_id}")
    return deployment


def describe_action(deployment: DeploymentItem, base_url: str) -> dict[str, Any]:
    """The ActionGetResponse of a deployment."""
    parameters, flow_name = parameters_of(deployment)
    label = deployment.action_label or DEFAULT_LABEL
    query = "&".join(f"{urllib.parse.quote(p.name)}={{{p.name}}}" for p in parameters)
    href = f"/action/{deployment.id}" + (f"?{query}" if query else "")
    linked: dict[str, Any] = {"type": "transaction", "label": label, "href": href}
    if parameters:
        linked["parameters"] = [p.describe() for p in parameters]
    return {
        "type": "action",
        "icon": deployment.action_icon or base_url + DEFAULT_ICON_PATH,
        "title": deployment.action_title or flow_name,
        "description": deployment.action_description
        or f"Runs the flow {flow_name!r} and hands your wallet the transaction it builds.",
        "label": label,
        "links": {"actions": [linked]},
    }


def blockchain_id(deployment: DeploymentItem) -> str | None:
    """The CAIP-2 id of the deployment's cluster (X-Blockchain-Ids); None if unknown."""
    network = dict(deployment.solana_network or {})
    cluster = str(network.get("cluster") or "")
    if cluster in BLOCKCHAIN_IDS:
        return BLOCKCHAIN_IDS[cluster]
    url = str(network.get("url") or "")
    if url not in _GENESIS:
        from flowdeploy.settings import settings
        from flowdeploy.solana.rpc import RpcError, SolanaRpc

        try:
            rpc = SolanaRpc(url, timeout=settings().solana_rpc_timeout_seconds, retries=0)
            _GENESIS[url] = str(rpc.genesis_hash())
        except RpcError as error:
            logger.warning("no genesis hash for the deployment's network: %s", error)
            return None
    return f"solana:{_GENESIS[url][:32]}"


_GENESIS: dict[str, str] = {}  # RPC URL -> genesis hash: a chain's never changes


# -- POST --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionRun:
    """A run a wallet started through `POST /action/{id}`."""

    run_id: str
    title: str  # the Action's title
    account: str  # the wallet: its action signer
    continues: bool  # it goes on once the wallet's transaction lands (found by its memo)


def start_action(
    deployment: DeploymentItem, body: ActionPostBody, query: Mapping[str, str]
) -> ActionRun:
    """Queue the run the wallet asked for. 400 before anything starts if the account or a
    parameter is malformed or a required one is missing."""
    account = body.account.strip()
    if not base58.is_pubkey(account):
        raise BadRequest(f"account must be a base58 public key (32 bytes), got {account[:64]!r}")
    parameters, flow_name = parameters_of(deployment)
    given: dict[str, str | list[str]] = {**query, **(body.data or {})}
    inputs: dict[str, IValue] = {}
    for parameter in parameters:
        text = given.get(parameter.name)
        if text is None or text == "":
            if parameter.required:
                raise BadRequest(f"parameter {parameter.name!r} is required")
            continue
        inputs[parameter.name] = parameter.value(text)
    inputs[ACCOUNT_INPUT] = IValue("B3", base58.decode(account))
    continues = deployment.action_identity is not None and not deployment.output_instructions
    params = StartDeploymentParams(
        inputs=encode_map(inputs), action_signer=account, output_instructions=not continues
    )
    caller = Caller(kind="anonymous", pubkey=account, via="pubkey")
    run_id = queue_run(DeploymentRef(id=deployment.id), params, caller, ORIGIN)
    return ActionRun(run_id, deployment.action_title or flow_name, account, continues)


def wait_for_transaction(action: ActionRun, seconds: float) -> dict[str, Any]:
    """The ActionPostResponse once the run asks the wallet to sign (or stops at its
    transaction); 422 if it ends without one, 504 if not within `seconds` (the run goes on)."""
    from flowdeploy.run_output import wait_until

    run_id = action.run_id
    started = run_store.get(run_id)
    if started is None:
        raise NotFound(f"flow run not found: {run_id}")
    message = f"{action.title}: sign to complete flow run {run_id}."
    if action.continues:
        run, request = signature_requests.wait_for_request(started, seconds, action.account)
        if request is not None:
            transaction = signature_requests.request_transaction(request)
            return {"type": "transaction", "transaction": transaction, "message": message}
    else:
        run = wait_until(started, seconds, lambda _: False, max_pause=MAX_POLL_SECONDS)
    if run is None:
        raise GatewayTimeout(
            f"flow run {run_id} has not built its transaction within {seconds:g} s; try again"
        )
    if run.transaction:
        simulation = run.simulation or {}
        if simulation.get("error"):
            message += f" Warning: simulating it fails: {simulation['error']}"
        return {"type": "transaction", "transaction": run.transaction, "message": message}
    if run.status == run_store.FAILED:
        raise Unprocessable(f"the flow failed: {run.error}")
    raise Unprocessable(f"flow run {run_id} ended {run.status} without a transaction to sign")


DEFAULT_ICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">
<rect width="512" height="512" rx="96" fill="#14151a"/>
<circle cx="160" cy="256" r="48" fill="#9945ff"/><circle cx="352" cy="160" r="48" fill="#14f195"/>
<circle cx="352" cy="352" r="48" fill="#19fb9b"/>
<path d="M200 236 312 176M200 276 312 336" stroke="#f5f5f7" stroke-width="20"
 stroke-linecap="round"/></svg>
"""
