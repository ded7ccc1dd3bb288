"""Configuration: every environment variable the service reads, read once.

template.yaml injects the AWS values; `flowdeploy.local` injects the local ones.
Secrets are never defaulted: a missing secret is a configuration error, not a
silently weak token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache

DEVNET = {"url": "https://api.devnet.solana.com", "cluster": "devnet"}
# WalletKeyAlias of template.yaml on the local stack (whose stack name is "flowdeploy").
LOCAL_WALLET_KEY_ALIAS = "alias/flowdeploy/wallets"


class ConfigurationError(RuntimeError):
    """The deployment is missing a setting it needs; an operator must fix it."""


@dataclass(frozen=True, slots=True)
class Settings:
    flows_table: str
    deployments_table: str
    flow_runs_table: str
    run_records_table: str
    api_keys_table: str
    wallets_table: str
    kv_store_table: str
    signature_requests_table: str
    sign_in_table: str
    read_cache_table: str
    connections_table: str
    idempotency_table: str
    live_runs_table: str
    flow_run_queue_url: str
    # The KMS key that encrypts server-held wallets' secret keys (id, ARN or alias).
    wallet_key_id: str
    # Exactly one source per secret: the value itself (local) or where AWS keeps it.
    jwt_secret: str | None
    jwt_secret_parameter: str | None
    run_token_secret: str | None
    run_token_secret_arn: str | None
    default_network_url: str
    default_network_cluster: str
    secrets_max_age: int
    flow_run_max_receives: int
    # A run's own time limit, below RunFunction's timeout so a late run is failed, not killed.
    flow_run_deadline_seconds: float
    # FlowRunQueue's timing (template.yaml Mappings): how long it keeps a message, and how
    # long a delivered message stays invisible.
    flow_run_queue_retention_seconds: float
    flow_run_visibility_timeout_seconds: float
    # Whether http_request may reach loopback/private addresses (local development only).
    http_allow_private: bool
    # S3 bucket name -> the deployment its new objects start ("<id>" or "<flow>[:<tag>]").
    s3_trigger_targets: dict[str, str]
    # How long a run waits for a signature it asked for (a blockhash lives about 60 s).
    signature_request_timeout_seconds: float
    # Each Solana JSON-RPC call's time limit (retried calls get it each).
    solana_rpc_timeout_seconds: float
    # How long one request retries writes that lost a race before answering 409.
    conflict_retry_seconds: float
    # Tags a flow may have besides `latest`.
    max_tags_per_flow: int
    # Runs of one user's deployments that may be queued or running at once.
    max_live_runs_per_user: int
    # The API's base URL: api_input nodes publish `<api_url>/flow/submit/<key>`.
    api_url: str
    # How deep nested flows may go (a flow calling itself counts each level): a deploy whose
    # non-recursive chain is deeper is a 400, a run that goes deeper fails.
    flow_max_nesting: int
    # How many nodes one run may start in all, across nested flows and loop turns: a deploy
    # whose static count is over it is a 400, a run that reaches it fails.
    flow_max_node_runs: int
    # JavaScript nodes: the Deno executable (else `deno` on PATH), each node run's wall
    # clock limit and V8 heap limit.
    deno_path: str | None
    js_node_timeout_seconds: float
    js_node_memory_mb: int
    # How long POST /action/{id} waits for the run's transaction (API Gateway answers
    # 503 after 30 s, so ActionsFunction's 29 s timeout bounds it).
    action_wait_seconds: float
    # How long GET /flow/output waits for a run to end before answering 504 (below API
    # Gateway's 30 s integration limit).
    flow_output_wait_seconds: float
    # How long GET /flow/signature_request waits for a running run to ask for a signature
    # before answering 404: v0.12.2 asks once, client-next gives each poll 5 s.
    signature_request_wait_seconds: float
    # The time a read (`/deployment/read`) may run before it is a 408.
    read_timeout_seconds: float
    # Access tokens issued by wallet sign-in and /auth/claim_token.
    access_token_lifetime_seconds: int
    # API Gateway's management API of the WebSocket API (post_to_connection), with its stage:
    # https://<api id>.execute-api.<region>.amazonaws.com/ws
    websocket_endpoint: str

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            flows_table=env.get("FLOWS_TABLE", "FlowsTable"),
            deployments_table=env.get("DEPLOYMENTS_TABLE", "DeploymentsTable"),
            flow_runs_table=env.get("FLOW_RUNS_TABLE", "FlowRunsTable"),
            run_records_table=env.get("RUN_RECORDS_TABLE", "RunRecordsTable"),
            api_keys_table=env.get("API_KEYS_TABLE", "ApiKeysTable"),
            wallets_table=env.get("WALLETS_TABLE", "WalletsTable"),
            kv_store_table=env.get("KV_STORE_TABLE", "KvStoreTable"),
            signature_requests_table=env.get("SIGNATURE_REQUESTS_TABLE", "SignatureRequestsTable"),
            sign_in_table=env.get("SIGN_IN_TABLE", "SignInTable"),
            read_cache_table=env.get("READ_CACHE_TABLE", "ReadCacheTable"),
            connections_table=env.get("CONNECTIONS_TABLE", "ConnectionsTable"),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", "IdempotencyTable"),
            live_runs_table=env.get("LIVE_RUNS_TABLE", "LiveRunsTable"),
            flow_run_queue_url=env.get("FLOW_RUN_QUEUE_URL", ""),
            wallet_key_id=env.get("WALLET_KEY_ID", LOCAL_WALLET_KEY_ALIAS),
            jwt_secret=env.get("JWT_SECRET") or None,
            jwt_secret_parameter=env.get("JWT_SECRET_PARAMETER") or None,
            run_token_secret=env.get("RUN_TOKEN_SECRET") or None,
            run_token_secret_arn=env.get("RUN_TOKEN_SECRET_ARN") or None,
            default_network_url=env.get("DEFAULT_SOLANA_URL", DEVNET["url"]),
            default_network_cluster=env.get("DEFAULT_SOLANA_CLUSTER", DEVNET["cluster"]),
            secrets_max_age=int(env.get("SECRETS_MAX_AGE_SECONDS", "300")),
            flow_run_max_receives=int(env.get("FLOW_RUN_MAX_RECEIVES", "3")),
            flow_run_deadline_seconds=float(env.get("FLOW_RUN_DEADLINE_SECONDS", "270")),
            flow_run_queue_retention_seconds=float(
                env.get("FLOW_RUN_QUEUE_RETENTION_SECONDS", "14400")
            ),
            flow_run_visibility_timeout_seconds=float(
                env.get("FLOW_RUN_VISIBILITY_TIMEOUT_SECONDS", "1800")
            ),
            http_allow_private=env.get("HTTP_ALLOW_PRIVATE", "").lower() in {"1", "true", "yes"},
            s3_trigger_targets=_string_map("S3_TRIGGER_TARGETS", env.get("S3_TRIGGER_TARGETS")),
            signature_request_timeout_seconds=float(
                env.get("SIGNATURE_REQUEST_TIMEOUT_SECONDS", "60")
            ),
            solana_rpc_timeout_seconds=float(env.get("SOLANA_RPC_TIMEOUT_SECONDS", "10")),
            conflict_retry_seconds=float(env.get("CONFLICT_RETRY_SECONDS", "10")),
            max_tags_per_flow=int(env.get("MAX_TAGS_PER_FLOW", "50")),
            max_live_runs_per_user=int(env.get("MAX_LIVE_RUNS_PER_USER", "10")),
            api_url=env.get("API_URL", "http://127.0.0.1:3000").rstrip("/"),
            flow_max_nesting=int(env.get("FLOW_MAX_NESTING", "256")),
            flow_max_node_runs=int(env.get("FLOW_MAX_NODE_RUNS", "10000")),
            deno_path=env.get("DENO_PATH") or None,
            js_node_timeout_seconds=float(env.get("JS_NODE_TIMEOUT_SECONDS", "10")),
            js_node_memory_mb=int(env.get("JS_NODE_MEMORY_MB", "128")),
            action_wait_seconds=float(env.get("ACTION_WAIT_SECONDS", "25")),
            flow_output_wait_seconds=float(env.get("FLOW_OUTPUT_WAIT_SECONDS", "25")),
            signature_request_wait_seconds=float(env.get("SIGNATURE_REQUEST_WAIT_SECONDS", "3.5")),
            read_timeout_seconds=float(env.get("READ_TIMEOUT_SECONDS", "20")),
            access_token_lifetime_seconds=int(env.get("ACCESS_TOKEN_LIFETIME_SECONDS", "3600")),
            websocket_endpoint=env.get("WEBSOCKET_ENDPOINT", ""),
        )

    @property
    def flow_run_queued_timeout_seconds(self) -> float:
        """How long a run may stay queued before the sweeper decides its message is lost:
        by then the queue dropped it (retention) and no worker still holds it."""
        return self.flow_run_queue_retention_seconds + self.flow_run_visibility_timeout_seconds

    @property
    def default_network(self) -> dict[str, str]:
        return {"url": self.default_network_url, "cluster": self.default_network_cluster}


def _string_map(name: str, text: str | None) -> dict[str, str]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{name} must be a JSON object: {error}") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigurationError(f'{name} must be a JSON object of strings: {{"name": "value"}}')
    return {str(k): v for k, v in value.items()}


@cache
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


def jwt_secret() -> bytes:
    """The HS256 key for access tokens: env JWT_SECRET, else the SSM parameter."""
    s = settings()
    if s.jwt_secret:
        return s.jwt_secret.encode()
    if s.jwt_secret_parameter:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_parameter(
            s.jwt_secret_parameter, decrypt=True, max_age=s.secrets_max_age
        )
        return str(value).encode()
    raise ConfigurationError("set JWT_SECRET or JWT_SECRET_PARAMETER")


def run_token_secret() -> bytes:
    """The key that signs `fr-` run tokens: env RUN_TOKEN_SECRET, else Secrets Manager."""
    s = settings()
    if s.run_token_secret:
        return s.run_token_secret.encode()
    if s.run_token_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(s.run_token_secret_arn, max_age=s.secrets_max_age)
        return str(value).encode()
    raise ConfigurationError("set RUN_TOKEN_SECRET or RUN_TOKEN_SECRET_ARN")
