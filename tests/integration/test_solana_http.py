"""Solana deployments on the local stack (`make dev`), over HTTP: flows created here use the
stack's local Solana RPC; server wallets sign (KMS in the stack's moto); output_instructions
hands a transaction back that the action signer completes; a signature request is answered."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.solana.transaction import parse_identity_memo
from tests.conftest import Stack, new_user
from tests.integration.test_engine_http import finished, start
from tests.integration.test_http import Client
from tests.unit.engine.flows import node
from tests.unit.solana.test_solana_runs import FEE_A, FEE_B, SOL, transfer_flow


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


@pytest.fixture(scope="module")
def rpc(stack: Stack) -> SolanaRpc:
    return SolanaRpc(stack.solana_url, allow_private=True)


def fund(rpc: SolanaRpc, pubkey: Pubkey, lamports: int) -> None:
    height = rpc.latest_blockhash()[1]
    rpc.confirm(rpc.request_airdrop(pubkey, lamports), height)


def deploy(client: Client, owner: str, flow: dict[str, Any], **settings: Any) -> str:
    flow_id = client.flow(owner, is_public=True, start_shared=True, start_unverified=True, **flow)
    deployment_id = client.deploy(owner, flow_id)
    if settings:
        path = f"/deployment/{deployment_id}"
        reply = client.request("PATCH", path, user=owner, json=settings)
        assert reply.status_code == 200, reply.text
    return deployment_id


def test_a_server_wallet_pays_on_the_local_cluster_with_fees(
    client: Client, rpc: SolanaRpc, stack: Stack
) -> None:
    owner = new_user()
    wallet = client.request("POST", "/wallet", user=owner, json={"name": "hot"}).json()
    fund(rpc, Pubkey.from_string(wallet["pubkey"]), 5 * SOL)
    recipient, fee_a, fee_b = Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey()
    deployment = deploy(
        client,
        owner,
        transfer_flow(node("wallet", "wallet", wallet_id=wallet["id"])),
        fees=[[str(fee_a), FEE_A], [str(fee_b), FEE_B]],
    )
    row = client.request("GET", f"/deployment/{deployment}", user=owner).json()
    assert row["solana_network"] == {"url": stack.solana_url, "cluster": "localnet"}
    run = finished(client, start(client, owner, deployment, {"recipient": {"S": str(recipient)}}))
    assert run["status"] == "succeeded", run
    assert rpc.balance(recipient) == SOL // 2
    assert (rpc.balance(fee_a), rpc.balance(fee_b)) == (FEE_A, FEE_B)


def test_output_instructions_and_a_signature_request_over_http(
    client: Client, rpc: SolanaRpc
) -> None:
    owner = new_user()
    identity = client.request("POST", "/wallet", user=owner, json={"name": "id"}).json()
    signer = Keypair()
    fund(rpc, signer.pubkey(), 5 * SOL)
    recipient = Keypair().pubkey()
    flow = transfer_flow(node("sender", "flow_input", label="sender"))
    inputs = {"sender": {"S": str(signer.pubkey())}, "recipient": {"S": str(recipient)}}
    body = {"inputs": inputs, "action_signer": str(signer.pubkey())}
    wallet_caller = {"Authorization": f"Bearer {signer.pubkey()}"}

    # output_instructions: the run stops with the transaction; the wallet signs and sends it
    returning = deploy(
        client, owner, flow, output_instructions=True, action_identity=identity["pubkey"]
    )
    path = f"/deployment/start?id={returning}"
    started = client.request("POST", path, headers=wallet_caller, json=body).json()
    run = finished(client, started)
    assert run["status"] == "stopped", run
    transaction = VersionedTransaction.from_bytes(base64.b64decode(run["transaction"]))
    message = transaction.message
    assert message.account_keys[0] == signer.pubkey()
    memo = parse_identity_memo(bytes(message.instructions[-1].data).decode())
    assert str(memo.identity) == identity["pubkey"]
    signed = VersionedTransaction.populate(
        message, [signer.sign_message(to_bytes_versioned(message))]
    )
    rpc.confirm(rpc.send(signed), rpc.latest_blockhash()[1])
    assert rpc.balance(recipient) == SOL // 2

    # without it: the run asks the action signer, who answers over HTTP
    asking = deploy(client, owner, flow)
    started = client.request(
        "POST", f"/deployment/start?id={asking}", headers=wallet_caller, json=body
    ).json()
    bearer = {"Authorization": f"Bearer {started['token']}"}
    run_path = f"/flow_run/{started['flow_run_id']}"
    answered: list[int] = []

    def answer() -> None:
        for _ in range(300):
            reply = client.request("GET", f"{run_path}/signature_request", headers=bearer)
            if reply.status_code == 200:
                message_bytes = base64.b64decode(reply.json()["message"])
                signature = str(signer.sign_message(message_bytes))
                sent = client.request(
                    "POST", f"{run_path}/signature", headers=bearer, json={"signature": signature}
                )
                answered.append(sent.status_code)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=answer)
    thread.start()
    run = finished(client, started, within=40)
    thread.join()
    assert answered == [200]
    assert run["status"] == "succeeded", run
    assert rpc.balance(recipient) == SOL  # both transfers of 0.5 SOL landed


def test_a_flow_with_an_unknown_wallet_is_not_deployed(client: Client) -> None:
    owner = new_user()
    flow_id = client.flow(owner, **transfer_flow(node("w", "wallet", wallet_id="no-such-wallet")))
    reply = client.request("POST", f"/flow/deploy/{flow_id}", user=owner)
    assert reply.status_code == 400
    assert "no-such-wallet" in reply.json()["error"]


def test_solana_nodes_are_validated_when_a_flow_is_saved(client: Client) -> None:
    reply = client.request(
        "POST",
        "/flow",
        user=new_user(),
        json={"name": "x", "nodes": [node("w", "wallet")], "edges": []},
    )
    assert reply.status_code == 400
    assert "wallet_id" in reply.json()["error"]
