"""A wallet that signs and sends the transaction itself (sign-and-send, what most wallets and
every Blink client do) instead of returning its signature: with an `action_identity`, the
run finds that transaction on chain by its memo's reference and continues with its
signature. Through the real handlers, against the local Solana RPC over HTTP."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from solders.keypair import Keypair
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from flowdeploy import base58
from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.solana.rpc import SolanaRpc
from tests import wallet
from tests.conftest import new_user
from tests.unit.api import Api, Reply
from tests.unit.engine.flows import node
from tests.unit.solana.conftest import call
from tests.unit.solana.test_solana_runs import (
    SOL,
    create_wallet,
    deploy,
    execute,
    local_settings,
    read,
    start,
    transfer_flow,
)

__all__ = ["local_settings"]  # autouse: the local RPC is on loopback


class Starter:
    """A wallet holding `lamports` that starts `sender` → transfer_sol 0.5 SOL → output
    `signature` as its action signer, on a deployment with an action_identity (or none)."""

    def __init__(
        self, api: Api, local: LocalSolana, *, identity: bool = True, lamports: int = 10 * SOL
    ) -> None:
        self.api, self.local = api, local
        self.keypair, self.recipient = Keypair(), Keypair().pubkey()
        owner = new_user()
        settings: dict[str, Any] = {}
        self.identity: Pubkey | None = None
        if identity:
            identity_key = Keypair()
            create_wallet(api, owner, identity_key)
            self.identity = identity_key.pubkey()
            settings["action_identity"] = str(self.identity)
        local.airdrop(self.keypair.pubkey(), lamports)
        flow = transfer_flow(node("sender", "flow_input", label="sender"))
        deployment = deploy(api, owner, flow, local, **settings)
        key = str(self.keypair.pubkey())
        inputs = {"sender": {"S": key}, "recipient": {"S": str(self.recipient)}}
        self.started = start(api, owner, deployment, {"inputs": inputs, "action_signer": key})
        self.rpc = SolanaRpc(local.url, allow_private=True)

    def request(self) -> dict[str, Any]:
        """The run's pending signature request, once it asks (upstream's route)."""
        headers = {"Authorization": f"Bearer {self.started['token']}"}
        for _ in range(400):
            reply = self.api.call(
                "GET", f"/flow/signature_request/{self.started['flow_run_id']}", headers=headers
            )
            if reply.status == 200:
                return dict(reply.body)
            time.sleep(0.05)
        raise AssertionError("the run never asked for a signature")

    def signed(self, request: dict[str, Any], *, add_compute_budget: bool = False) -> bytes:
        """What `SignatureRequest.buildTransaction()` and a wallet's signing make of it: the
        request's message with its signatures; the wallet may put its own compute budget
        first (only while nobody has signed yet)."""
        message = from_bytes_versioned(base64.b64decode(request["message"]))
        assert isinstance(message, MessageV0)
        if add_compute_budget:
            assert not request.get("signatures")
            message = wallet.with_compute_budget(message, 150_000, 2_000)
        transaction = VersionedTransaction(message, [self.keypair])
        return bytes(transaction)

    def send(self, raw: bytes) -> Signature:
        """`connection.sendTransaction(tx, {skipPreflight: true})`, as upstream's test sends."""
        encoded = base64.b64encode(raw).decode()
        config = {"encoding": "base64", "skipPreflight": True}
        reply = call(self.local.url, "sendTransaction", encoded, config)
        assert "result" in reply, reply
        return Signature.from_string(reply["result"])

    def submit(self, request: dict[str, Any], raw: bytes) -> Reply:
        signature = str(VersionedTransaction.from_bytes(raw).signatures[0])
        body = {"id": request["id"], "signature": signature}
        return self.api.call("POST", "/signature/submit", json_body=body)

    def run(self, wallet_does: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Execute the run while the wallet answers its request with `wallet_does`; the run."""
        failures: list[BaseException] = []

        def play() -> None:
            try:
                wallet_does(self.request())
            except BaseException as error:  # reported by the test, not lost in the thread
                failures.append(error)

        thread = threading.Thread(target=play)
        thread.start()
        execute(self.api, self.started["flow_run_id"])
        thread.join()
        assert not failures, failures
        return dict(read(self.api, self.started).body)

    def output_signature(self, run: dict[str, Any]) -> Signature:
        return Signature.from_bytes(base58.decode(run["outputs"]["signature"]["B6"]))


def test_a_wallet_that_sends_the_transaction_itself_and_the_run_continues_with_it(
    api: Api, local: LocalSolana
) -> None:
    """Upstream's "execute on action": buildTransaction, sign, sendTransaction; no submit.
    The wallet also puts its own compute budget first, so the landed message is not the
    requested one: it is found by its memo's reference."""
    starter = Starter(api, local)
    sent: list[Signature] = []

    def sign_and_send(request: dict[str, Any]) -> None:
        sent.append(starter.send(starter.signed(request, add_compute_budget=True)))

    run = starter.run(sign_and_send)
    assert run["status"] == "succeeded", run["error"]
    (signature,) = sent
    assert starter.output_signature(run) == signature  # the run continued with the wallet's
    status = starter.rpc.signature_statuses([signature])[0]
    assert status is not None and status["err"] is None
    assert starter.rpc.balance(starter.recipient) == SOL // 2  # once
