"""Signature requests as the Space Operator clients use them, through the real handlers:
`GET /flow/signature_request/{run}` in upstream's shape, `POST /signature/submit` without
credentials, wallets that change the message, and every way an answer is refused."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import TypeAdapter
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0, from_bytes_versioned, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer

from flowdeploy import base58
from flowdeploy.http import openapi
from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.settings import settings
from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.store import signature_requests as request_store
from tests import wallet
from tests.conftest import new_user
from tests.unit.api import Api, Reply
from tests.unit.engine.flows import edge, node
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

MAX_SAFE_INTEGER = 2**53 - 1
__all__ = ["local_settings"]  # autouse: the local RPC is on loopback


def started_by(api: Api, local: LocalSolana, signer: Keypair, **body: Any) -> dict[str, str]:
    """A run of `sender` → transfer_sol (0.5 SOL) whose sender is `signer`, a key the
    server does not hold; `body` adds to the start body (default action_signer: signer)."""
    owner = new_user()
    local.airdrop(signer.pubkey(), 10 * SOL)
    deployment = deploy(
        api, owner, transfer_flow(node("sender", "flow_input", label="sender")), local
    )
    inputs = {"sender": {"S": str(signer.pubkey())}, "recipient": {"S": str(Keypair().pubkey())}}
    return start(
        api,
        owner,
        deployment,
        {"inputs": inputs, "action_signer": str(signer.pubkey()), **body},
    )


def upstream_request(api: Api, started: dict[str, str]) -> Reply:
    headers = {"Authorization": f"Bearer {started['token']}"}
    return api.call("GET", f"/flow/signature_request/{started['flow_run_id']}", headers=headers)


def submit(api: Api, body: Any) -> Reply:
    """As the clients send it: JSON, no credentials."""
    return api.call("POST", "/signature/submit", json_body=body)


def run_answering(
    api: Api, started: dict[str, str], answer: Callable[[dict[str, Any]], None]
) -> None:
    """Execute the run; `answer` gets its signature request once it is pending."""

    def poll() -> None:
        for _ in range(400):
            reply = upstream_request(api, started)
            if reply.status == 200:
                answer(reply.body)
                return
            assert reply.status == 404, reply.body
            time.sleep(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    execute(api, started["flow_run_id"])
    thread.join()


def signed(keypair: Keypair, message: bytes) -> str:
    return str(keypair.sign_message(message))


def with_compute_budget(message: bytes) -> bytes:
    """What a wallet does to a transaction it signs: its own compute-unit limit and price."""
    original = from_bytes_versioned(message)
    assert isinstance(original, MessageV0)
    return to_bytes_versioned(wallet.with_compute_budget(original, 200_000, 1_000))


def test_the_pending_request_is_upstreams_shape_on_both_addresses_and_needs_no_credentials(
    api: Api, local: LocalSolana
) -> None:
    signer, stranger = Keypair(), Keypair()
    started = started_by(api, local, signer)
    seen: dict[str, Any] = {}

    def answer(request: dict[str, Any]) -> None:
        seen["request"] = request
        seen["own"] = read(api, started, "/signature_request")
        message = base64.b64decode(request["message"])
        seen["wrong"] = submit(api, {"id": request["id"], "signature": signed(stranger, message)})
        seen["unsent"] = SolanaRpc(local.url).balance(signer.pubkey())
        seen["right"] = submit(api, {"id": request["id"], "signature": signed(signer, message)})
        seen["again"] = submit(api, {"id": request["id"], "signature": signed(signer, message)})

    before = time.time()
    run_answering(api, started, answer)
    assert "request" in seen, read(api, started).body["error"]
    request = seen["request"]
    TypeAdapter(openapi.SignatureRequest).validate_python(request)
    assert isinstance(request["id"], int) and 1 <= request["id"] <= MAX_SAFE_INTEGER
    assert (
        isinstance(request["time"], int) and before * 1000 <= request["time"] <= time.time() * 1000
    )
    assert request["pubkey"] == str(signer.pubkey())
    assert request["kind"] == "transaction_message"
    assert request["flow_run_id"] == started["flow_run_id"]
    assert request["timeout"] == 20.0
    assert "signatures" not in request  # the signer is the fee payer: nothing signed before it
    message = from_bytes_versioned(base64.b64decode(request["message"]))
    assert message.account_keys[0] == signer.pubkey()
    assert seen["own"].status == 200 and seen["own"].body == request  # one mechanism
    assert seen["wrong"].status == 400
    assert "signature verification failed" in seen["wrong"].body["error"]
    assert seen["unsent"] == 10 * SOL  # nothing was sent for the wrong signature
    assert (seen["right"].status, seen["right"].body) == (200, {"success": True})
    assert seen["again"].status == 409 and "already answered" in seen["again"].body["error"]
    run = read(api, started).body
    assert run["status"] == "succeeded", run
    assert upstream_request(api, started).status == 404


def test_a_wallet_that_adds_compute_budget_gets_its_new_message_sent(
    api: Api, local: LocalSolana
) -> None:
    signer = Keypair()
    started = started_by(api, local, signer)
    replies: list[Reply] = []
    sent: list[bytes] = []

    def answer(request: dict[str, Any]) -> None:
        new_message = with_compute_budget(base64.b64decode(request["message"]))
        sent.append(new_message)
        body = {
            "id": request["id"],
            "signature": signed(signer, new_message),
            "new_msg": base64.b64encode(new_message).decode(),
        }
        replies.append(submit(api, body))

    run_answering(api, started, answer)
    assert replies[0].status == 200, replies[0].body
    run = read(api, started).body
    assert run["status"] == "succeeded", run
    # The transaction that landed is the wallet's: its id is the signature of the new message.
    landed = Signature.from_bytes(base58.decode(run["outputs"]["signature"]["B6"]))
    assert landed.verify(signer.pubkey(), sent[0])
    assert SolanaRpc(local.url).signature_statuses([landed])[0]["err"] is None


TAMPERED = {
    "amount": "different instruction data 0",
    "fee payer": "different fee payer",
    "blockhash": "different blockhash",
}


def test_a_new_msg_that_changes_the_transaction_is_refused_and_nothing_is_sent(
    api: Api, local: LocalSolana
) -> None:
    signer = Keypair()
    started = started_by(api, local, signer)
    replies: dict[str, Reply] = {}

    def answer(request: dict[str, Any]) -> None:
        message = base64.b64decode(request["message"])
        original = from_bytes_versioned(message)
        for tamper in TAMPERED:
            payer = Keypair().pubkey() if tamper == "fee payer" else signer.pubkey()
            lamports = 10 * SOL if tamper == "amount" else SOL // 2
            blockhash = Hash.new_unique() if tamper == "blockhash" else original.recent_blockhash
            send = transfer(
                TransferParams(
                    from_pubkey=signer.pubkey(),
                    to_pubkey=original.account_keys[1],
                    lamports=lamports,
                )
            )
            tampered = to_bytes_versioned(MessageV0.try_compile(payer, [send], [], blockhash))
            body = {
                "id": request["id"],
                "signature": signed(signer, tampered),
                "new_msg": base64.b64encode(tampered).decode(),
            }
            replies[tamper] = submit(api, body)
        assert request_store.get(request["id"]).signature is None  # type: ignore[union-attr]
        replies["honest"] = submit(api, {"id": request["id"], "signature": signed(signer, message)})

    run_answering(api, started, answer)
    for tamper, reason in TAMPERED.items():
        assert replies[tamper].status == 400
        assert replies[tamper].body["error"] == f"new_msg changes the transaction: {reason}"
    assert replies["honest"].status == 200, replies["honest"].body
    assert read(api, started).body["status"] == "succeeded"


def test_a_request_after_a_server_signature_shows_it_and_takes_no_new_msg(
    api: Api, local: LocalSolana
) -> None:
    """The owner's wallet pays the fee (action_signer) for the starter's transfer to it: the
    wallet's signature is on the request, and no one may change the message after it."""
    signer = Keypair()
    owner = new_user()
    wallet = create_wallet(api, owner)
    local.airdrop(Pubkey.from_string(wallet["pubkey"]), 10 * SOL)
    local.airdrop(signer.pubkey(), 10 * SOL)
    flow = {
        "nodes": [
            node("w", "wallet", wallet_id=wallet["id"]),
            node("sender", "flow_input", label="sender"),
            node("amount", "const", value={"D": "0.5"}),
            node("transfer", "transfer_sol"),
            node("out", "flow_output", label="signature"),
        ],
        "edges": [
            edge("w", "transfer", "pubkey", "to"),
            edge("sender", "transfer", "output", "from"),
            edge("amount", "transfer", "output", "amount"),
            edge("transfer", "out", "signature"),
        ],
    }
    deployment = deploy(api, owner, flow, local)
    inputs = {"sender": {"S": str(signer.pubkey())}}
    started = start(api, owner, deployment, {"inputs": inputs, "action_signer": wallet["pubkey"]})
    seen: dict[str, Any] = {}

    def answer(request: dict[str, Any]) -> None:
        seen["request"] = request
        message = base64.b64decode(request["message"])
        changed = with_compute_budget(message)
        seen["changed"] = submit(
            api,
            {
                "id": request["id"],
                "signature": signed(signer, changed),
                "new_msg": base64.b64encode(changed).decode(),
            },
        )
        seen["same"] = submit(
            api,
            {
                "id": request["id"],
                "signature": signed(signer, message),
                "new_msg": request["message"],  # an unchanged new_msg is no change
            },
        )

    run_answering(api, started, answer)
    request = seen["request"]
    (presigner,) = request["signatures"]
    assert presigner["pubkey"] == wallet["pubkey"]
    message = base64.b64decode(request["message"])
    assert Signature.from_string(presigner["signature"]).verify(
        Pubkey.from_string(wallet["pubkey"]), message
    )
    assert seen["changed"].status == 400
    assert "invalidate existing signature" in seen["changed"].body["error"]
    assert seen["same"].status == 200, seen["same"].body
    assert read(api, started).body["status"] == "succeeded"


def test_an_answer_after_the_run_gave_up_is_a_409(
    api: Api, local: LocalSolana, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNATURE_REQUEST_TIMEOUT_SECONDS", "1")
    settings.cache_clear()
    signer = Keypair()
    started = started_by(api, local, signer)
    requests: list[dict[str, Any]] = []
    run_answering(api, started, requests.append)
    assert read(api, started).body["status"] == "failed"
    (request,) = requests
    late = submit(
        api,
        {"id": request["id"], "signature": signed(signer, base64.b64decode(request["message"]))},
    )
    assert late.status == 409
    assert "no longer pending" in late.body["error"] or "expired" in late.body["error"]


BAD_SUBMISSIONS = [
    ({"id": 1, "signature": "x"}, 404, "signature request not found: 1"),
    ({"id": "1", "signature": "x"}, 400, "id: Input should be a valid integer"),
    ({"id": 2**53, "signature": "x"}, 400, "id: Input should be less than or equal to"),
    ({"id": 0, "signature": "x"}, 400, "id: Input should be greater than or equal to 1"),
    ({"id": 1}, 400, "signature: Field required"),
    ({"id": 1, "signature": "x", "user_id": "x"}, 400, "unknown field: user_id"),
    ({"id": 1, "signature": "x" * 101}, 400, "signature: String should have at most"),
    ([1], 400, "body must be a JSON object"),
]


def test_bad_submissions_are_refused_precisely(api: Api) -> None:
    for body, status, error in BAD_SUBMISSIONS:
        reply = submit(api, body)
        assert reply.status == status, (body, reply.body)
        assert error in reply.body["error"], (body, reply.body)
        assert reply.headers["content-type"] == "application/json"


def test_a_submission_is_size_bounded(api: Api) -> None:
    body = {"id": 1, "signature": "x", "new_msg": "A" * 1_600, "padding": " " * 5_000}
    reply = api.call("POST", "/signature/submit", raw_body=str(body).encode())
    assert reply.status == 413
    assert reply.body == {"error": "request body is larger than 4096 bytes"}


def test_an_adapter_wallets_transfer_asks_its_owner_for_the_signature(
    api: Api, local: LocalSolana
) -> None:
    """A wallet registered with its public key only (POST /wallets/upsert) signs through a
    signature request its owner answers; the server never held its key."""
    owner, adapter = new_user(), Keypair()
    local.airdrop(adapter.pubkey(), 10 * SOL)
    upserted = api.call(
        "POST",
        "/wallets/upsert",
        user=owner,
        json_body={"type": "ADAPTER", "name": "phantom", "public_key": str(adapter.pubkey())},
    )
    assert upserted.status == 201, upserted.body
    wallet_id = upserted.body[0]["id"]
    deployment = deploy(api, owner, transfer_flow(node("w", "wallet", wallet_id=wallet_id)), local)
    recipient = Keypair().pubkey()
    started = start(api, owner, deployment, {"inputs": {"recipient": {"S": str(recipient)}}})
    replies: list[Reply] = []

    def answer(request: dict[str, Any]) -> None:
        assert request["pubkey"] == str(adapter.pubkey())
        message = base64.b64decode(request["message"])
        replies.append(submit(api, {"id": request["id"], "signature": signed(adapter, message)}))

    run_answering(api, started, answer)
    assert replies[0].status == 200, replies[0].body
    assert read(api, started).body["status"] == "succeeded"
    assert SolanaRpc(local.url).balance(recipient) == SOL // 2
