"""No secret ever reaches the logs: a full deploy → start → run → read, with refused
credentials too, at DEBUG level, with every log line (Powertools on stdout, Python logging)
captured and searched.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from solders.keypair import Keypair

from flowdeploy import base58
from flowdeploy.observability import logger as powertools_logger
from flowdeploy.store import queue
from tests.conftest import JWT_SECRET, new_user, token_for
from tests.unit.api import Api, sqs_event
from tests.unit.test_import_export import WALLET, wallet_row, with_wallets


def export_with_wallets(*wallets: list[str]) -> dict[str, Any]:
    """docker/export.json with these (public key, keypair) wallets."""
    return with_wallets(*(wallet_row(pubkey, keypair) for pubkey, keypair in wallets))


def test_no_secret_appears_in_the_logs_of_a_full_run(
    api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    powertools_logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        owner = new_user()
        access_token = token_for(owner)
        auth = {"authorization": f"Bearer {access_token}"}
        wallet_secret = base58.encode(bytes(Keypair()))
        imported = {"name": "hot", "keypair": wallet_secret}
        assert api.call("POST", "/wallet", headers=auth, json_body=imported).status == 201
        bad_half = {"name": "x", "keypair": wallet_secret[:-2] + "11"}
        assert api.call("POST", "/wallet", headers=auth, json_body=bad_half).status == 400
        # A keypair in a Space Operator export, imported, and one that does not match its key.
        exported_secret = base58.encode(bytes(Keypair()))
        exported = export_with_wallets(
            [str(Keypair().pubkey()), exported_secret], [WALLET, base58.encode(bytes(Keypair()))]
        )
        assert api.call("POST", "/data/import", headers=auth, json_body=exported).status == 200
        created = api.call("POST", "/apikey", headers=auth, json_body={"name": "ci"}).body
        api_key = created["key"]
        flow_id = api.create_flow(owner)
        deployment_id = api.deploy(owner, flow_id)
        started = api.call(
            "POST", f"/deployment/start?id={deployment_id}", headers={"x-api-key": api_key}
        ).body
        run_token = started["token"]
        api.functions.invoke("RunFunction", sqs_event(queue.message_body(started["flow_run_id"])))
        run = f"/flow_run/{started['flow_run_id']}"
        assert api.call("GET", run, headers={"authorization": f"Bearer {run_token}"}).status == 200
        # Refused credentials are secrets too: a revoked key, a forged token, a bad run token.
        api.call("DELETE", f"/apikey/{created['id']}", headers=auth)
        assert api.call("GET", "/apikey", headers={"x-api-key": api_key}).status == 401
        forged = token_for(owner, secret="another-secret-that-is-long-enough-000")
        assert (
            api.call("GET", "/apikey", headers={"authorization": f"Bearer {forged}"}).status == 401
        )
        tampered = run_token[:-4] + "AAAA"
        assert api.call("GET", run, headers={"authorization": f"Bearer {tampered}"}).status == 401
    finally:
        powertools_logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])

    secrets: dict[str, Any] = {
        "access token": access_token,
        "access token signature": access_token.rsplit(".", 1)[1],
        "forged token": forged,
        "API key": api_key,
        "API key body": api_key.removeprefix("b3-"),
        "run token": run_token,
        "tampered run token": tampered,
        "JWT secret": JWT_SECRET,
        "run token secret": os.environ["RUN_TOKEN_SECRET"],
        "wallet secret key": wallet_secret,
        "exported wallet secret key": exported_secret,
    }
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "request refused" in logs, "the logs were captured"
    leaked = [name for name, secret in secrets.items() if secret in logs]
    assert leaked == []
