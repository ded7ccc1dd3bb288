"""`POST /deployment/start` with an `Idempotency-Key`: a retried start starts nothing new.

Powertools idempotency on DynamoDB (IdempotencyTable, TTL 24 h) keeps the first
response under a hash of (caller, key); the request itself (query target and
normalized body) is hashed as the payload to validate, so the same key with a
different request is a 409. Keys are per caller, so a 409 never says that someone else
used a key; only users (access token or API key) may send one. Only the run id is stored:
the run token is derived from it again, so no credential rests in the table. A start that
fails stores nothing, and may be retried with the same key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from flowdeploy import flow_runs
from flowdeploy.auth import Caller, issue_run_token
from flowdeploy.deployments import DeploymentRef
from flowdeploy.errors import BadRequest, ConcurrentChange, Conflict
from flowdeploy.settings import settings

HEADER = "Idempotency-Key"
WINDOW_SECONDS = 24 * 60 * 60
# Visible ASCII, like the IETF draft's and Stripe's keys (UUIDs, ULIDs, random strings).
KEY = re.compile(r"[\x21-\x7e]{1,255}")
_REPLAYED = "replayed"


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Called only when Powertools answers from the stored record."""
    return {**response, _REPLAYED: True}


CONFIG = IdempotencyConfig(
    event_key_jmespath="[caller, key]",
    payload_validation_jmespath="[target, body]",
    expires_after_seconds=WINDOW_SECONDS,
    raise_on_no_idempotency_key=True,
    response_hook=_mark_replayed,
)


def register(context: LambdaContext) -> None:
    """Let an in-progress record expire with the invocation if the function times out."""
    CONFIG.register_lambda_context(context)


def parse_key(value: str) -> str:
    if not KEY.fullmatch(value):
        raise BadRequest(f"{HEADER} must be 1-255 visible ASCII characters")
    return value


@cache
def _idempotent_start() -> Callable[..., dict[str, Any]]:
    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table)

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="request",
        persistence_store=persistence,
        config=CONFIG,
        key_prefix="deployment-start",
    )
    def start(
        *,
        request: dict[str, Any],
        ref: DeploymentRef,
        params: flow_runs.StartDeploymentParams,
        caller: Caller,
    ) -> dict[str, Any]:
        return {"flow_run_id": flow_runs.queue_run(ref, params, caller)}

    return cast(Callable[..., dict[str, Any]], start)


def start_once(
    key: str, ref: DeploymentRef, params: flow_runs.StartDeploymentParams, caller: Caller
) -> tuple[dict[str, str], bool]:
    """The start's response and whether it replays an earlier one (nothing new started).

    Users only: a replay answers the run's token to whoever proves to be the same caller,
    and a bare public key proves nothing (anyone can send it).
    """
    if not caller.authenticated:
        raise BadRequest(
            f"{HEADER} needs an authenticated caller (an access token or an API key): a bare "
            "public key proves nothing, so a replay would hand the run's token to anyone "
            "sending the same public key and key; start without it"
        )
    request = {
        "caller": f"{caller.kind}:{caller.user_id or caller.pubkey}",
        "key": key,
        "target": str(ref),
        "body": params.model_dump(mode="json"),
    }
    try:
        stored = _idempotent_start()(request=request, ref=ref, params=params, caller=caller)
    except IdempotencyValidationError:
        raise Conflict(
            f"{HEADER} {key!r} was already used for a different request; use a new key"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise ConcurrentChange(
            f"a request with {HEADER} {key!r} is still in progress; retry shortly"
        ) from None
    run_id = str(stored["flow_run_id"])
    return {"flow_run_id": run_id, "token": issue_run_token(run_id)}, bool(stored.get(_REPLAYED))
