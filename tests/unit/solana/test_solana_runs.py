"""Solana runs end to end through the real handlers, against the local Solana RPC over HTTP
(LiteSVM behind JSON-RPC on 127.0.0.1): server wallets, fees, the identity memo,
output_instructions, signature requests, and failures that send nothing."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from solders.compute_budget import set_compute_unit_price
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from flowdeploy import base58
from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.settings import settings
from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.solana.transaction import MEMO_PROGRAM, parse_identity_memo
from flowdeploy.store import queue
from tests.conftest import new_user
from tests.unit.api import Api, Reply, sqs_event
from tests.unit.engine.flows import edge, node

SOL = 1_000_000_000
COMPUTE_BUDGET = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
FEE_A, FEE_B = 1_000_000, 2_000_000


@pytest.fixture(autouse=True)
def local_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local RPC is on loopback, which only local development may reach."""
    monkeypatch.setenv("HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SIGNATURE_REQUEST_TIMEOUT_SECONDS", "20")
    settings.cache_clear()
    yield
    settings.cache_clear()


def create_wallet(api: Api, owner: str, keypair: Keypair | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "treasury"}
    if keypair is not None:
        body["keypair"] = base58.encode(bytes(keypair))
    reply = api.call("POST", "/wallet", user=owner, json_body=body)
    assert reply.status == 201, reply.body
    return dict(reply.body)


def transfer_flow(source: dict[str, Any], amount: str = "0.5") -> dict[str, Any]:
    """`source` (a wallet node, or a flow_input) → transfer_sol → flow_output `signature`."""
    source_port = "pubkey" if source["data"]["node_id"] == "wallet" else "output"
    return {
        "nodes": [
            source,
            node("recipient", "flow_input", label="recipient"),
            node("amount", "const", value={"D": amount}),
            node("transfer", "transfer_sol"),
            node("out", "flow_output", label="signature"),
        ],
        "edges": [
            edge(source["id"], "transfer", source_port, "from"),
            edge("recipient", "transfer", "output", "to"),
            edge("amount", "transfer", "output", "amount"),
            edge("transfer", "out", "signature"),
        ],
    }


def deploy(api: Api, owner: str, flow: dict[str, Any], local: LocalSolana, **settings: Any) -> str:
    flow_id = api.create_flow(
        owner, is_public=True, start_shared=True, start_unverified=True, **flow
    )
    deployment_id = api.deploy(owner, flow_id)
    changes = {"solana_network": {"url": local.url, "cluster": "localnet"}, **settings}
    reply = api.call("PATCH", f"/deployment/{deployment_id}", user=owner, json_body=changes)
    assert reply.status == 200, reply.body
    return deployment_id


def start(api: Api, owner: str, deployment_id: str, body: dict[str, Any]) -> dict[str, str]:
    reply = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner, json_body=body)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def execute(api: Api, run_id: str) -> None:
    result = api.functions.invoke("RunFunction", sqs_event(queue.message_body(run_id)))
    assert result == {"batchItemFailures": []}


def read(api: Api, started: dict[str, str], suffix: str = "") -> Reply:
    headers = {"Authorization": f"Bearer {started['token']}"}
    return api.call("GET", f"/flow_run/{started['flow_run_id']}{suffix}", headers=headers)


def test_a_server_wallet_transfer_moves_exactly_the_amount_and_pays_each_fee(
    api: Api, local: LocalSolana
) -> None:
    owner = new_user()
    wallet = create_wallet(api, owner)
    local.airdrop(Pubkey.from_string(wallet["pubkey"]), 10 * SOL)
    recipient, fee_a, fee_b = (str(Keypair().pubkey()) for _ in range(3))
    deployment = deploy(
        api,
        owner,
        transfer_flow(node("wallet", "wallet", wallet_id=wallet["id"])),
        local,
        fees=[[fee_a, FEE_A], [fee_b, FEE_B]],
    )
    started = start(api, owner, deployment, {"inputs": {"recipient": {"S": recipient}}})
    execute(api, started["flow_run_id"])

    run = read(api, started).body
    assert run["status"] == "succeeded", run
    signature = Signature.from_bytes(base58.decode(run["outputs"]["signature"]["B6"]))
    rpc = SolanaRpc(local.url)
    assert rpc.signature_statuses([signature])[0]["err"] is None
    assert rpc.balance(Pubkey.from_string(recipient)) == SOL // 2
    assert rpc.balance(Pubkey.from_string(fee_a)) == FEE_A
    assert rpc.balance(Pubkey.from_string(fee_b)) == FEE_B
    assert (
        rpc.balance(Pubkey.from_string(wallet["pubkey"]))
        == 10 * SOL - SOL // 2 - FEE_A - FEE_B - 5_000
    )
    assert run["transaction"] is None


def test_output_instructions_return_a_transaction_the_action_signer_completes(
    api: Api, local: LocalSolana
) -> None:
    owner = new_user()
    identity = Keypair()
    create_wallet(api, owner, identity)
    signer = Keypair()
    local.airdrop(signer.pubkey(), 10 * SOL)
    recipient, fee_a, fee_b = Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey()
    deployment = deploy(
        api,
        owner,
        transfer_flow(node("sender", "flow_input", label="sender")),
        local,
        output_instructions=True,
        action_identity=str(identity.pubkey()),
        fees=[[str(fee_a), FEE_A], [str(fee_b), FEE_B]],
    )
    inputs = {"sender": {"S": str(signer.pubkey())}, "recipient": {"B3": str(recipient)}}
    started = start(
        api, new_user(), deployment, {"inputs": inputs, "action_signer": str(signer.pubkey())}
    )
    execute(api, started["flow_run_id"])

    run = read(api, started).body
    assert run["status"] == "stopped", run
    assert run["error"] is None
    transaction = VersionedTransaction.from_bytes(base64.b64decode(run["transaction"]))
    message = transaction.message
    keys = list(message.account_keys)
    assert keys[0] == signer.pubkey()  # the action signer pays
    assert transaction.signatures == [Signature.default()]  # and has not signed yet
    memo = message.instructions[-1]
    assert keys[memo.program_id_index] == MEMO_PROGRAM and list(memo.accounts) == []
    identity_memo = parse_identity_memo(bytes(memo.data).decode())
    assert identity_memo.identity == identity.pubkey()
    # [price, limit, the flow's transfer (+ identity, reference), fee A, fee B, memo]
    programs = [keys[ix.program_id_index] for ix in message.instructions]
    assert programs == [COMPUTE_BUDGET, COMPUTE_BUDGET, *[SYSTEM_PROGRAM] * 3, MEMO_PROGRAM]
    price, limit = (bytes(ix.data) for ix in message.instructions[:2])
    assert price[0] == 3 and limit[0] == 2
    simulation = run["simulation"]
    assert simulation["err"] is None and simulation["error"] is None
    units = simulation["units_consumed"]
    assert int.from_bytes(limit[1:], "little") == simulation["compute_unit_limit"]
    assert simulation["compute_unit_limit"] == units + -(-units * 20 // 100) + 1_000
    assert int.from_bytes(price[1:], "little") == simulation["compute_unit_price"]
    transfer_accounts = [keys[i] for i in message.instructions[2].accounts]
    assert transfer_accounts == [
        signer.pubkey(),
        recipient,
        identity.pubkey(),
        identity_memo.reference,
    ]
    assert [keys[i] for i in message.instructions[3].accounts] == [signer.pubkey(), fee_a]
    nodes = {
        record["node_id"]: record["status"] for record in read(api, started, "/nodes").body["nodes"]
    }
    assert nodes["transfer"] == "stopped"

    rpc = SolanaRpc(local.url)
    assert rpc.balance(recipient) == 0  # nothing was sent by the server
    signed = VersionedTransaction.populate(
        message, [signer.sign_message(to_bytes_versioned(message))]
    )
    blockhash_height = rpc.latest_blockhash()[1]
    rpc.confirm(rpc.send(signed), blockhash_height)
    assert rpc.balance(recipient) == SOL // 2
    assert rpc.balance(fee_a) == FEE_A
    assert rpc.balance(fee_b) == FEE_B


def _started_by_an_external_signer(
    api: Api, local: LocalSolana
) -> tuple[Keypair, Keypair, Pubkey, dict[str, str]]:
    """A run of `sender` → transfer_sol, started with the sender as its action signer (a key
    the server does not hold); (signer, a stranger, the recipient, the start reply)."""
    owner = new_user()
    signer, stranger = Keypair(), Keypair()
    local.airdrop(signer.pubkey(), 10 * SOL)
    recipient = Keypair().pubkey()
    deployment = deploy(
        api, owner, transfer_flow(node("sender", "flow_input", label="sender")), local
    )
    inputs = {"sender": {"S": str(signer.pubkey())}, "recipient": {"S": str(recipient)}}
    started = start(
        api, owner, deployment, {"inputs": inputs, "action_signer": str(signer.pubkey())}
    )
    return signer, stranger, recipient, started


def _answer_when_asked(api: Api, started: dict[str, str], answer: Any) -> threading.Thread:
    def answer_it() -> None:
        for _ in range(200):
            reply = read(api, started, "/signature_request")
            if reply.status == 200:
                answer(reply.body)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=answer_it)
    thread.start()
    return thread


def test_a_signature_request_answered_with_a_valid_signature_completes_the_run(
    api: Api, local: LocalSolana
) -> None:
    signer, stranger, recipient, started = _started_by_an_external_signer(api, local)
    path = f"/flow_run/{started['flow_run_id']}/signature"
    headers = {"Authorization": f"Bearer {started['token']}"}
    replies: list[Reply] = []

    def answer(request: dict[str, Any]) -> None:
        assert request["pubkey"] == str(signer.pubkey())
        message = base64.b64decode(request["message"])
        wrong = str(stranger.sign_message(message))
        replies.append(api.call("POST", path, headers=headers, json_body={"signature": wrong}))
        assert SolanaRpc(local.url).balance(recipient) == 0  # nothing sent
        right = str(signer.sign_message(message))
        replies.append(api.call("POST", path, headers=headers, json_body={"signature": right}))
        replies.append(api.call("POST", path, headers=headers, json_body={"signature": right}))

    thread = _answer_when_asked(api, started, answer)
    execute(api, started["flow_run_id"])
    thread.join()

    wrong, right, again = replies
    assert wrong.status == 400 and "verification failed" in wrong.body["error"]
    assert right.status == 200, right.body
    assert again.status == 409
    run = read(api, started).body
    assert run["status"] == "succeeded", run
    assert SolanaRpc(local.url).balance(recipient) == SOL // 2
    assert read(api, started, "/signature_request").status == 404


def test_an_unanswered_signature_request_fails_the_run_and_sends_nothing(
    api: Api, local: LocalSolana, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNATURE_REQUEST_TIMEOUT_SECONDS", "1")
    settings.cache_clear()
    signer, _, recipient, started = _started_by_an_external_signer(api, local)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert (
        f"no signature from {signer.pubkey()} within 1 s; nothing was sent (without an "
        "action_identity" in run["error"]
    )
    assert SolanaRpc(local.url).balance(recipient) == 0


def test_a_fee_below_rent_to_a_new_account_fails_clearly_before_sending(
    api: Api, local: LocalSolana
) -> None:
    owner = new_user()
    wallet = create_wallet(api, owner)
    local.airdrop(Pubkey.from_string(wallet["pubkey"]), 10 * SOL)
    recipient, fee = Keypair().pubkey(), Keypair().pubkey()
    deployment = deploy(
        api,
        owner,
        transfer_flow(node("wallet", "wallet", wallet_id=wallet["id"])),
        local,
        fees=[[str(fee), 10_000]],
    )
    started = start(api, owner, deployment, {"inputs": {"recipient": {"S": str(recipient)}}})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert "nothing was sent" in run["error"]
    assert f"the transfer of 10,000 lamports to {fee} fails" in run["error"]
    assert "890,880" in run["error"]
    rpc = SolanaRpc(local.url)
    assert rpc.balance(recipient) == 0
    assert rpc.balance(Pubkey.from_string(wallet["pubkey"])) == 10 * SOL


def test_an_unreachable_rpc_fails_the_run_clearly(api: Api, local: LocalSolana) -> None:
    owner = new_user()
    wallet = create_wallet(api, owner)
    deployment = deploy(
        api, owner, transfer_flow(node("wallet", "wallet", wallet_id=wallet["id"])), local
    )
    unreachable = {"solana_network": {"url": "http://127.0.0.1:9", "cluster": "localnet"}}
    assert (
        api.call("PATCH", f"/deployment/{deployment}", user=owner, json_body=unreachable).status
        == 200
    )
    started = start(
        api, owner, deployment, {"inputs": {"recipient": {"S": str(Keypair().pubkey())}}}
    )
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert "http://127.0.0.1:9" in run["error"] and "unreachable" in run["error"]


@pytest.mark.parametrize(
    ("recipient", "amount", "message"),
    [
        ({"S": "not-a-key"}, "0.5", "input 'to': expected a public key"),
        ({"B3": "11111111111111111111111111111111"}, "0", "input 'amount': must be a positive"),
        ({"B3": "11111111111111111111111111111111"}, "-1", "input 'amount': must be a positive"),
        ({"B3": "11111111111111111111111111111111"}, "0.0000000001", "whole lamports"),
    ],
)
def test_bad_transfer_inputs_fail_the_node_before_anything_is_sent(
    api: Api, local: LocalSolana, recipient: dict[str, str], amount: str, message: str
) -> None:
    owner = new_user()
    wallet = create_wallet(api, owner)
    local.airdrop(Pubkey.from_string(wallet["pubkey"]), SOL)
    deployment = deploy(
        api, owner, transfer_flow(node("wallet", "wallet", wallet_id=wallet["id"]), amount), local
    )
    started = start(api, owner, deployment, {"inputs": {"recipient": recipient}})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert message in run["error"]
    assert SolanaRpc(local.url).balance(Pubkey.from_string(wallet["pubkey"])) == SOL


def test_memo_balance_and_generated_keys(api: Api, local: LocalSolana) -> None:
    owner = new_user()
    wallet = create_wallet(api, owner)
    local.airdrop(Pubkey.from_string(wallet["pubkey"]), 3 * SOL)
    flow = {
        "nodes": [
            node("wallet", "wallet", wallet_id=wallet["id"]),
            node("text", "const", value="hello from a flow"),
            node("memo", "memo"),
            node("balance", "get_balance"),
            node("keys", "generate_keypair"),
            node("sig", "flow_output", label="signature"),
            node("sol", "flow_output", label="sol"),
            node("new", "flow_output", label="new"),
        ],
        "edges": [
            edge("wallet", "memo", "pubkey", "signer"),
            edge("text", "memo", "output", "memo"),
            edge("memo", "sig", "signature"),
            edge("wallet", "balance", "pubkey", "pubkey"),
            edge("balance", "sol", "sol"),
            edge("keys", "new", "pubkey"),
        ],
    }
    deployment = deploy(api, owner, flow, local)
    started = start(api, owner, deployment, {})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "succeeded", run
    assert set(run["outputs"]) == {"signature", "sol", "new"}
    assert run["outputs"]["new"]["B3"]
    assert run["outputs"]["sol"]["D"] in {"3", "2.999995"}


def test_deployment_settings_are_validated(api: Api, local: LocalSolana) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment = api.deploy(owner, flow_id)
    path = f"/deployment/{deployment}"
    key = str(Keypair().pubkey())
    cases = [
        ({"action_identity": key}, "you hold no wallet"),
        ({"action_identity": "nope"}, "base58"),
        ({"fees": [["nope", 1000]]}, "base58"),
        ({"fees": [[key, 0]]}, "greater than 0"),
        ({"fees": [[key, -5]]}, "greater than 0"),
        ({"solana_network": {"url": local.url, "cluster": "moonnet"}}, "cluster"),
        ({"solana_network": {"url": "ftp://x", "cluster": "devnet"}}, "url"),
        ({"compute_unit_price": -1}, "greater than or equal to 0"),
        ({"compute_unit_price": 100_000_001}, "less than or equal to 100000000"),
        ({"compute_unit_price": "5"}, "valid integer"),
        ({"action_icon": "ftp://example.com/i.png"}, "absolute http(s) URL"),
        ({"action_icon": "/icon.png"}, "absolute http(s) URL"),
        ({"action_title": "   "}, "at least 1 character"),
        ({"action_label": "x" * 65}, "at most 64 characters"),
        ({"action_description": "x" * 2001}, "at most 2000 characters"),
    ]
    for body, message in cases:
        reply = api.call("PATCH", path, user=owner, json_body=body)
        assert reply.status == 400, (body, reply.body)
        assert message in reply.body["error"], (body, reply.body)
    unchanged = api.call("GET", path, user=owner).body
    assert unchanged["fees"] == [] and unchanged["action_identity"] is None
    identity = create_wallet(api, owner)
    reply = api.call("PATCH", path, user=owner, json_body={"action_identity": identity["pubkey"]})
    assert reply.status == 200 and reply.body["action_identity"] == identity["pubkey"]
    blink = {
        "action_title": " Tip jar ",
        "action_icon": "https://example.com/tip.png",
        "action_description": "Send a tip",
        "action_label": "Tip",
        "compute_unit_price": 0,
    }
    reply = api.call("PATCH", path, user=owner, json_body=blink)
    assert reply.status == 200, reply.body
    assert {key: reply.body[key] for key in blink} == {**blink, "action_title": "Tip jar"}
    cleared = api.call("PATCH", path, user=owner, json_body=dict.fromkeys(blink)).body
    assert all(cleared[key] is None for key in blink)


def test_a_flow_using_someone_elses_wallet_is_not_deployed(api: Api) -> None:
    owner, other = new_user(), new_user()
    theirs = create_wallet(api, other)
    flow = transfer_flow(node("wallet", "wallet", wallet_id=theirs["id"]))
    flow_id = api.create_flow(owner, **flow)
    reply = api.call("POST", f"/flow/deploy/{flow_id}", user=owner)
    assert reply.status == 400
    assert theirs["id"] in reply.body["error"]


# -- issue 14: wallets get their transaction, whatever the simulation says ----------------


def _returned_transaction(run: dict[str, Any]) -> VersionedTransaction:
    assert run["status"] == "stopped", run
    return VersionedTransaction.from_bytes(base64.b64decode(run["transaction"]))


def test_output_instructions_hand_an_unfunded_starter_its_transaction(
    api: Api, local: LocalSolana
) -> None:
    owner = new_user()
    starter = Keypair()  # holds no SOL: the wallet simulates and decides, not the server
    recipient = Keypair().pubkey()
    deployment = deploy(
        api,
        owner,
        transfer_flow(node("sender", "flow_input", label="sender")),
        local,
        output_instructions=True,
    )
    inputs = {"sender": {"B3": str(starter.pubkey())}, "recipient": {"B3": str(recipient)}}
    started = start(api, new_user(), deployment, {"inputs": inputs})
    execute(api, started["flow_run_id"])

    run = read(api, started).body
    transaction = _returned_transaction(run)
    assert transaction.message.account_keys[0] == starter.pubkey()
    assert run["error"] is None
    assert run["outputs"] == {"transaction": {"S": run["transaction"]}}  # as upstream's output
    simulation = run["simulation"]
    assert simulation["err"] == "AccountNotFound"
    assert f"the fee payer {starter.pubkey()} has no account" in simulation["error"]
    assert isinstance(simulation["logs"], list)
    assert simulation["units_consumed"] == 0


def test_the_identity_memo_is_added_without_an_action_signer(api: Api, local: LocalSolana) -> None:
    owner = new_user()
    identity = Keypair()
    create_wallet(api, owner, identity)
    starter = Keypair()
    local.airdrop(starter.pubkey(), SOL)
    deployment = deploy(
        api,
        owner,
        transfer_flow(node("sender", "flow_input", label="sender")),
        local,
        output_instructions=True,
        action_identity=str(identity.pubkey()),
    )
    inputs = {"sender": {"B3": str(starter.pubkey())}, "recipient": {"B3": str(Keypair().pubkey())}}
    started = start(api, new_user(), deployment, {"inputs": inputs})  # no action_signer
    execute(api, started["flow_run_id"])

    message = _returned_transaction(read(api, started).body).message
    memo = message.instructions[-1]
    assert message.account_keys[memo.program_id_index] == MEMO_PROGRAM
    assert parse_identity_memo(bytes(memo.data).decode()).identity == identity.pubkey()


def test_the_unit_price_is_the_deployments_or_the_median_of_recent_fees(api: Api) -> None:
    owner = new_user()
    starter = Keypair()
    with LocalSolana() as fresh:  # a chain whose recent fees this test alone decides
        fresh.airdrop(starter.pubkey(), SOL)
        deployment = deploy(
            api,
            owner,
            transfer_flow(node("sender", "flow_input", label="sender")),
            fresh,
            output_instructions=True,
        )
        inputs = {
            "sender": {"B3": str(starter.pubkey())},
            "recipient": {"B3": str(Keypair().pubkey())},
        }

        def returned_price() -> int:
            started = start(api, owner, deployment, {"inputs": inputs})
            execute(api, started["flow_run_id"])
            run = read(api, started).body
            data = bytes(_returned_transaction(run).message.instructions[0].data)
            assert int.from_bytes(data[1:], "little") == run["simulation"]["compute_unit_price"]
            return run["simulation"]["compute_unit_price"]

        assert returned_price() == 0  # recent blocks paid nothing
        payer = Keypair()
        fresh.airdrop(payer.pubkey(), SOL)
        for lamports in (1, 2, 3):  # three priced blocks after two airdrops: median 5,000
            message = MessageV0.try_compile(
                payer.pubkey(),
                [
                    set_compute_unit_price(5_000),
                    transfer(
                        TransferParams(
                            from_pubkey=payer.pubkey(),
                            to_pubkey=starter.pubkey(),
                            lamports=lamports,
                        )
                    ),
                ],
                [],
                fresh.chain.latest_blockhash()[0],
            )
            SolanaRpc(fresh.url).send(VersionedTransaction(message, [payer]))
        assert returned_price() == 5_000
        path = f"/deployment/{deployment}"
        price = {"compute_unit_price": 42}
        assert api.call("PATCH", path, user=owner, json_body=price).status == 200
        assert returned_price() == 42
