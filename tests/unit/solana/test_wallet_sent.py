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

import pytest
from solders.keypair import Keypair
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from flowdeploy import base58
from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.settings import settings
from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.store import signature_requests as request_store
from flowdeploy.store.models import SignatureRequestItem
from tests import wallet
from tests.conftest import new_user
from tests.unit.api import Api, Reply
from tests.unit.engine.flows import node
from tests.unit.solana.conftest import call, pay
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
    (line,) = [entry["content"] for entry in read(api, starter.started, "/logs").body["logs"]]
    assert line.startswith(f"transaction {signature} was sent by {starter.keypair.pubkey()}'s")
    assert "found on chain by its reference" in line


def test_a_wallet_that_answers_and_sends_at_once_moves_the_funds_once(
    api: Api, local: LocalSolana
) -> None:
    """The submitted signature and the landed transaction race; one conditional write on
    the request takes exactly one of them, and the run never sends a second transaction."""
    starter = Starter(api, local)
    seen: dict[str, Any] = {}

    def both(request: dict[str, Any]) -> None:
        raw = starter.signed(request)
        racers = [
            threading.Thread(target=lambda: seen.update(sent=starter.send(raw))),
            threading.Thread(target=lambda: seen.update(reply=starter.submit(request, raw))),
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        seen["id"] = request["id"]

    run = starter.run(both)
    assert run["status"] == "succeeded", run["error"]
    assert starter.output_signature(run) == seen["sent"]
    assert starter.rpc.balance(starter.recipient) == SOL // 2
    item = request_store.get(seen["id"])
    assert item is not None and (item.signature is None) != (item.landed_signature is None)
    reply = seen["reply"]
    if item.landed_signature is None:  # the answer was stored first
        assert reply.status == 200, reply.body
    else:  # the chain won: the answer came too late
        assert reply.status == 409 and "sent the transaction itself" in reply.body["error"]


def test_an_answer_after_the_chain_won_is_a_409(api: Api, local: LocalSolana) -> None:
    starter = Starter(api, local)
    asked: list[tuple[dict[str, Any], bytes]] = []

    def send_only(request: dict[str, Any]) -> None:
        raw = starter.signed(request)
        starter.send(raw)
        asked.append((request, raw))

    run = starter.run(send_only)
    assert run["status"] == "succeeded", run["error"]
    ((request, raw),) = asked
    reply = starter.submit(request, raw)
    landed = starter.output_signature(run)
    assert reply.status == 409
    assert reply.body["error"] == (
        f"signature request {request['id']} is no longer pending: the wallet sent the "
        f"transaction itself, {landed} landed and the run went on with it"
    )


def test_the_answer_and_the_chain_cannot_both_win_a_request(api: Api) -> None:
    """The store's two conditional writes, in either order: the second is refused."""

    def new_request() -> int:
        request_id = int(time.time_ns() % 2**50)
        expires_at = time.time() + 60
        item = SignatureRequestItem(
            request_id,
            flow_run_id="r",
            pubkey="p",
            message="",
            kind="transaction_message",
            time=0,
            timeout=60,
            expires_at=expires_at,
            remove_at=0,
        )
        assert request_store.insert(item)
        return request_id

    def answer(request_id: int) -> bool:
        return request_store.answer(request_id, "signature", None, time.time())

    def chain(request_id: int) -> bool:
        return request_store.settle_on_chain(request_id, "landed")

    answered = new_request()
    assert (answer(answered), chain(answered)) == (True, False)
    settled = new_request()
    assert (chain(settled), answer(settled)) == (True, False)


def test_a_transaction_that_failed_on_chain_fails_the_node(api: Api, local: LocalSolana) -> None:
    """The wallet spends its SOL elsewhere, then sends the run's transaction without
    preflight: it lands with an error (the fee is charged) and the node fails with it."""
    starter = Starter(api, local, lamports=SOL * 6 // 10)
    sent: list[Signature] = []

    def drain_then_send(request: dict[str, Any]) -> None:
        blockhash, last_valid = starter.rpc.latest_blockhash()
        drain = pay(starter.keypair, Keypair().pubkey(), SOL // 4, blockhash)
        starter.rpc.confirm(starter.rpc.send(drain), last_valid)
        sent.append(starter.send(starter.signed(request)))

    run = starter.run(drain_then_send)
    assert run["status"] == "failed"
    (signature,) = sent
    assert (
        f"the wallet sent the transaction itself and on chain transaction {signature} failed"
        in run["error"]
    )
    assert "custom program error: 0x1" in run["error"]  # the transfer's insufficient funds
    assert starter.rpc.balance(starter.recipient) == 0


def test_without_an_identity_a_wallet_that_sends_itself_is_not_found(
    api: Api, local: LocalSolana, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented limit: no identity, no reference to look for; the wallet must return
    its signature. The run fails saying so (the transaction did land)."""
    monkeypatch.setenv("SIGNATURE_REQUEST_TIMEOUT_SECONDS", "1")
    settings.cache_clear()
    starter = Starter(api, local, identity=False)
    run = starter.run(lambda request: starter.send(starter.signed(request)))
    assert run["status"] == "failed"
    assert run["error"].endswith(
        f"no signature from {starter.keypair.pubkey()} within 1 s; nothing was sent (without an "
        "action_identity a wallet must return its signature: a transaction it sends itself "
        "cannot be found)"
    )
    assert starter.rpc.balance(starter.recipient) == SOL // 2  # it landed, unseen


def test_with_an_identity_the_run_gives_up_once_nothing_signed_in_time_can_land(
    api: Api, local: LocalSolana, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer and no transaction: after the request's timeout the run keeps looking
    until every blockhash a wallet could have signed with has expired (here the chain is
    pushed 150+ blocks on), then fails."""
    monkeypatch.setenv("SIGNATURE_REQUEST_TIMEOUT_SECONDS", "1")
    settings.cache_clear()
    starter = Starter(api, local)
    done = threading.Event()

    def produce_blocks(request: dict[str, Any]) -> None:
        while not done.wait(0.2):
            local.advance(50)

    blocks = threading.Thread(target=lambda: produce_blocks({}))
    blocks.start()
    try:
        execute(api, starter.started["flow_run_id"])
    finally:
        done.set()
        blocks.join()
    run = read(api, starter.started).body
    assert run["status"] == "failed"
    assert (
        f"no signature from {starter.keypair.pubkey()} within 1 s, and no transaction"
        in (run["error"])
    )
    assert "when every blockhash it could carry had expired; nothing was sent" in run["error"]
