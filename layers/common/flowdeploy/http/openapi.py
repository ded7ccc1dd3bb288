"""The OpenAPI document: Powertools generates each function's part from its routes, and
`document` merges them into one (Powertools' OpenAPIMerge), served by DocsFunction.

Bodies are parsed by `flowdeploy.http.parse_body` (stricter than Powertools' request
validation, and it reads curl's form-encoded JSON), so a route declares its body,
responses and errors for the document with `route(...)`; the body models' schemas
are added to the document's components here.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from pydantic import BaseModel, ConfigDict, create_model

from flowdeploy.flows import UPSTREAM_COLUMNS, SolanaNetwork

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import SecurityScheme

TITLE = "flowdeploy: Space Operator flow deployments"
# OpenAPI has no WebSocket operations: the live-events API is described here (docs/live-events.md).
WEBSOCKET_DESCRIPTION = """\
## Live run events: WebSocket `/ws`

`ws://127.0.0.1:3000/ws` on `make dev`; on AWS the stack output `WebSocketUrl`
(`wss://<api id>.execute-api.<region>.amazonaws.com/ws`, its own host). Space Operator's
protocol: each request is one text message `{"id": <integer>, "method": "<Method>",
"params": {...}}`, answered by `{"id": <same>, "Ok": {...}}` or `{"id": <same>, "Err": "..."}`
(`id` -1 when the message had none).

| method | params | Ok |
|---|---|---|
| `Authenticate` | `{"token"}`: API key, JWT or `fr-` token (no `Bearer `) | identity¹ |
| `SubscribeFlowRunEvents` | `{"flow_run_id", "token"?}` | `{"stream_id"}` |
| `SubscribeSignatureRequests` | `{}` (needs a user) | `{"stream_id"}` |

¹ `{"user_id", "pubkey", "flow_run_id"}`, each a string or null.

Events: `{"stream_id", "seq", "event", "data"}`, `data` with `flow_run_id` and `time`
(RFC 3339): `FlowStart`, `NodeStart` (`node_id`, `times`, `input`), `NodeLog` (`level`,
`module`, `content`), `NodeOutput` (`output`), `NodeError` (`error`), `NodeFinish`, `FlowLog`,
`SignatureRequest` (as `GET /flow/signature_request/{run_id}` returns it), `FlowError`
(`error`), `FlowFinish` (`not_run`, `output`; always last), `ApiInput` (`url`). For example
`{"stream_id": 1, "seq": 5, "event": "NodeLog", "data": {"time": "2026-12-01T18:17:11.341911Z",
"node_id": "say", "times": 0, "level": "Info", "module": null, "content": "Hello, Ada",
"flow_run_id": "01a232d3-2ed6-7204-a538-4f2f6bffa6ac"}}`. A subscriber gets every event of the
run from `seq` 0 in order, then the live ones, exactly once; a finished run is replayed and its
stream ends. A run another user owns, or one that does not exist: `Err` `flow run not found:
<id>`. Limits: 32 KB frames (node events fit one; larger values are replaced by a
`VALUE TOO LARGE` marker named in `clipped`), 128 KB messages, 2 hours per connection, 10 idle
minutes.
"""
REF = "#/components/schemas/{model}"

# Each route names the credentials it accepts, as alternatives.
USER = ("accessToken", "apiKey")
STARTER = ("accessToken", "apiKey", "publicKey")
RUN_READER = ("accessToken", "apiKey", "runToken")
API_KEY = ("apiKey",)
PUBLIC: tuple[str, ...] = ()


def security_schemes() -> dict[str, SecurityScheme]:
    # Powertools' OpenAPI models are heavy to import (~60 ms): only DocsFunction needs them.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    return {
        "accessToken": HTTPBearer(
            bearerFormat="JWT", description="HS256 access token: aud 'authenticated', sub = user id"
        ),
        "apiKey": APIKey(
            name="x-api-key", **{"in": APIKeyIn.header}, description="an API key (b3-...)"
        ),
        "publicKey": HTTPBearer(
            bearerFormat="base58 public key", description="an unauthenticated caller's wallet"
        ),
        "runToken": HTTPBearer(
            bearerFormat="fr-...", description="the run token returned by the start"
        ),
    }


ERRORS = {
    400: "malformed request: the message names the field and the rule",
    401: "missing, malformed, expired or forged credential",
    403: "allowed to see it, not to do this: a deployment whose flow was not deployed with "
    "read_enabled, or a wallet for another user",
    404: "no such thing, or the caller may not see it (never 403)",
    408: "the read ran longer than its budget; its run is recorded as failed",
    409: "a conflict: an Idempotency-Key reused for a different request or still in "
    "progress, a run that has already finished, a signature request already answered, "
    "expired or given up, or a wallet you already have",
    413: "body, inputs or flow over its limit",
    415: "body that is not JSON",
    422: "the run failed or was stopped, or ended without a transaction for the wallet: the "
    "message says why",
    429: "the deployment's owner has MAX_LIVE_RUNS_PER_USER runs queued or running; nothing "
    "was started; retry after Retry-After seconds",
    503: "a dependency failed or is throttling; nothing was done; retry after Retry-After seconds",
    504: "the run is still going after the wait (about 25 s; it goes on): ask again",
}


class ErrorBody(BaseModel):
    """Every error: a precise message."""

    # Only the document needs these schemas: build them then, not in every function's init.
    model_config = ConfigDict(defer_build=True)

    error: str


class ActionError(BaseModel):
    """A Solana Actions error (the specification's ActionError)."""

    model_config = ConfigDict(defer_build=True)

    message: str


# -- Response shapes (the docs' rows and the routes' answers) ---------------------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Index(_Shape):
    """`GET /`: where the documentation is, and every route."""

    name: str
    docs: str
    openapi: str
    routes: list[str]


class FlowCreated(_Shape):
    flow_id: int


class _Flow(_Shape):
    id: int
    user_id: str
    name: str
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    is_public: bool
    start_shared: bool
    start_unverified: bool
    read_enabled: bool
    current_network: SolanaNetwork
    environment: dict[str, str]
    created_at: str
    updated_at: str


# The flow as stored: a Space Operator flow also has its other columns (uuid, description,
# viewport, ...) exactly as they were sent.
Flow = create_model(
    "Flow",
    __base__=_Flow,
    __doc__="A flow; Space Operator's other columns are there when they were sent.",
    **{name: (Any, None) for name in sorted(UPSTREAM_COLUMNS)},  # type: ignore[call-overload]
)


class FlowSummary(_Shape):
    """A flow as `GET /flow` lists it."""

    id: int
    user_id: str
    name: str
    is_public: bool
    start_shared: bool
    start_unverified: bool
    current_network: SolanaNetwork
    created_at: str
    updated_at: str


class FlowPage(_Shape):
    flows: list[FlowSummary]
    next: int | None


class DeploymentCreated(_Shape):
    deployment_id: str


class Deployment(_Shape):
    """The docs' "Inserted row in flow_deployments table"."""

    id: str
    created_at: str
    user_id: str
    entrypoint: int
    start_permission: str
    output_instructions: bool
    action_identity: str | None
    fees: list[tuple[str, int]]
    solana_network: SolanaNetwork
    compute_unit_price: int | None
    action_title: str | None
    action_icon: str | None
    action_description: str | None
    action_label: str | None


class Tag(_Shape):
    """The docs' "Inserted row in flow_deployments_tags table"."""

    user_id: str
    entrypoint: int
    tag: str
    deployment_id: str
    description: str | None


class DeploymentPage(_Shape):
    deployments: list[Deployment]
    next: str | None


class TagPage(_Shape):
    tags: list[Tag]
    next: str | None


class StartedRun(_Shape):
    """The docs' start response."""

    flow_run_id: str
    token: str


class TransactionSimulation(_Shape):
    """With output_instructions: what simulating the returned transaction said. `error` is
    why it would fail (null if it would land); the transaction is returned either way."""

    err: Any
    error: str | None
    logs: list[str]
    units_consumed: int | None
    compute_unit_limit: int
    compute_unit_price: int


class ActionMetadata(_Shape):
    """The specification's ActionGetResponse."""

    type: str
    icon: str
    title: str
    description: str
    label: str
    links: dict[str, list[dict[str, Any]]]


class ActionTransaction(_Shape):
    """The specification's TransactionResponse: base64 of the v0 transaction to sign."""

    type: str
    transaction: str
    message: str


class FlowRun(_Shape):
    id: str
    deployment_id: str | None
    flow_id: int
    status: str
    origin: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    stop_requested: str | None
    transaction: str | None
    simulation: TransactionSimulation | None


class Presigner(_Shape):
    pubkey: str
    signature: str


class FlowRunPage(_Shape):
    flow_runs: list[FlowRun]
    next: str | None


class SignatureRequest(_Shape):
    """Upstream's signature request: `message` (base64) is what `pubkey` must sign, `time`
    epoch milliseconds, `timeout` seconds; `signatures` are those already made on it."""

    id: int
    time: int
    pubkey: str
    message: str
    timeout: float
    kind: Literal["transaction_message", "message"]
    flow_run_id: str
    signatures: list[Presigner] | None = None


class SignatureAccepted(_Shape):
    success: bool
    signature_request_id: int


class Success(_Shape):
    success: bool


class IValueOutput(BaseModel):
    """An IValue: one type key, here `M` mapping each output name to an IValue."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    M: dict[str, Any]


class AuthMessage(_Shape):
    """The message the wallet signs; send `<msg>.<base58 signature>` to /auth/confirm."""

    msg: str


class SessionUser(_Shape):
    id: str
    aud: str
    role: str
    created_at: str
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]


class Session(_Shape):
    """A Supabase-like session; `access_token` is accepted as `Authorization: Bearer`."""

    access_token: str
    token_type: str
    expires_in: int
    expires_at: int
    refresh_token: str
    user: SessionUser


class ConfirmedAuth(_Shape):
    """Upstream's ConfirmAuthOutput."""

    session: Session
    new_user: bool


class ClaimedToken(_Shape):
    user_id: str
    access_token: str
    refresh_token: str
    expires_at: int


class WalletRow(_Shape):
    """A wallet as a row of upstream's `wallets` table."""

    id: str
    created_at: str
    type: Literal["HARDCODED", "ADAPTER"]
    adapter: str
    public_key: str
    user_id: str
    description: str
    name: str
    icon: str | None


class NodeRun(_Shape):
    """What one node did; nested flows' nodes are `<interflow node>/<node>`."""

    seq: int
    node_id: str
    command: str
    flow_id: int | None
    status: str
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    error: str | None
    started_at: str | None
    finished_at: str
    times: int


class NodeRunPage(_Shape):
    nodes: list[NodeRun]
    next: int | None


class RunLogLine(_Shape):
    seq: int
    time: str
    level: str
    node_id: str | None
    content: str


class RunLogPage(_Shape):
    logs: list[RunLogLine]
    next: int | None


class ApiKey(_Shape):
    id: str
    name: str
    trimmed_key: str
    created_at: str


class CreatedApiKey(ApiKey):
    """The only time the key itself is shown."""

    key: str


class ApiKeyPage(_Shape):
    api_keys: list[ApiKey]
    next: str | None


class Wallet(_Shape):
    """A server-held wallet: its secret key is never shown, not even when created."""

    id: str
    name: str
    pubkey: str
    created_at: str


class WalletPage(_Shape):
    wallets: list[Wallet]
    next: str | None


class PortDefinition(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    name: str


class NodePorts(_Shape):
    inputs: list[PortDefinition]
    outputs: list[PortDefinition]


class NodeDefinition(_Shape):
    """A command: upstream's node-definition shape, for the document format named."""

    name: str
    format: str
    description: str
    dynamic_ports: bool
    ports: NodePorts
    config_schema: dict[str, Any]


class WaitingApiInput(_Shape):
    """An api_input node waiting: POST `{"value": <IValue>}` to `url` (DELETE cancels)."""

    node_id: str
    times: int
    url: str
    created_at: str
    expires_at: str


class Submitted(_Shape):
    success: bool


class ImportReport(BaseModel):
    """What `POST /data/import` did with each wallet, flow and store, and why it skipped."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    source_user_id: str
    wallets: list[dict[str, Any]]
    flows: list[dict[str, Any]]
    kvstore: list[dict[str, Any]]
    missing_commands: dict[str, list[str]]
    not_imported: dict[str, str]


class ExportedData(BaseModel):
    """Upstream's `ExportedUserData`: the user id and one `;`-separated table per key."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    user_id: str
    flows: str
    wallets: str


# -- Routes ------------------------------------------------------------------

_REQUEST_MODELS: dict[str, type[BaseModel]] = {}


def route(
    summary: str,
    *,
    tag: str,
    ok: Any = None,
    status: int = 200,
    body: type[BaseModel] | None = None,
    optional_body: bool = False,
    errors: Iterable[int] = (),
    auth: Sequence[str] = USER,
    parameters: list[dict[str, Any]] | None = None,
    content_type: str = "application/json",
    description: str | None = None,
    error_model: type[BaseModel] = ErrorBody,
    other_responses: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of a route decorator that describe the route in the document."""
    success: dict[str, Any] = {"description": summary}
    if ok is not None:
        success["content"] = {content_type: {"model": ok}}
    responses: dict[int, Any] = {status: success}
    for code, text in (other_responses or {}).items():
        responses[code] = {"description": text}
    # Every route that reads credentials also reads DynamoDB, which may throttle: 503.
    for code in sorted({*errors, *((401, 503) if auth else ())}):
        responses[code] = {
            "description": ERRORS[code],
            "content": {"application/json": {"model": error_model}},
        }
    extensions: dict[str, Any] = {}
    if body is not None:
        _REQUEST_MODELS[body.__name__] = body
        extensions["requestBody"] = {
            "required": not optional_body,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=body.__name__)}}},
        }
    if parameters:
        extensions["parameters"] = parameters
    return {
        "summary": summary,
        "description": description,
        "tags": [tag],
        "responses": responses,
        "security": [{name: []} for name in auth] or None,
        "openapi_extensions": extensions or None,
    }


def query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


def header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


# -- The document -------------------------------------------------------------


def load_resolvers(functions: Path, *, besides: Path) -> list[ApiGatewayResolver]:
    """The `app` resolver of every function under `functions/` but the one in `besides`."""
    found = []
    for path in sorted(functions.glob("*/app.py")):
        if path.resolve() == besides.resolve():
            continue
        spec = importlib.util.spec_from_file_location(f"_openapi_{path.parent.name}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        resolver = getattr(module, "app", None)
        if isinstance(resolver, ApiGatewayResolver):
            found.append(resolver)
    return found


def document(resolvers: Iterable[ApiGatewayResolver]) -> dict[str, Any]:
    """One OpenAPI 3.1 document for every route of every resolver; a route twice is an error."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from pydantic.json_schema import models_json_schema

    schemes = security_schemes()
    merge = OpenAPIMerge(
        title=TITLE,
        version="1.0.0",
        description=(
            'The Space Operator "Flow Deployment" API. Errors are always '
            '`{"error": "..."}`; a caller who may not see a thing gets 404, never 403.\n\n'
            + WEBSOCKET_DESCRIPTION
        ),
        security_schemes=schemes,
        on_conflict="error",
    )
    for resolver in resolvers:
        part = resolver.get_openapi_json_schema(security_schemes=schemes)
        merge.add_schema(json.loads(part))
    _, definitions = models_json_schema(
        [(model, "validation") for model in _REQUEST_MODELS.values()], ref_template=REF
    )
    merge.add_schema({"components": {"schemas": definitions.get("$defs", {})}})
    merged = json.loads(merge.get_openapi_json_schema())
    return _without_unused_schemas(merged)


def _without_unused_schemas(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop the validation-error schemas Powertools adds: our errors are ErrorBody."""
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = [json.dumps(doc["paths"])]
    while pending:
        text = pending.pop()
        for name, schema in schemas.items():
            if name not in used and f'"{REF.format(model=name)}"' in text:
                used.add(name)
                pending.append(json.dumps(schema))
    doc["components"]["schemas"] = {k: v for k, v in schemas.items() if k in used}
    return doc
