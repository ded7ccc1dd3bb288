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
    idempotency_table: str
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
            idempotency_table=env.get("IDEMPOTENCY_TABLE", "IdempotencyTable"),
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
            flow_run_deadline_seconds=float(env.get("FLOW_RUN_DEADLINE_SECONDS", "240")),
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
