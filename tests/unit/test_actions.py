"""A deployment as a Solana Action (Blink), through the real handlers and API Gateway's CORS
as template.yaml configures it: metadata, parameters from flow_input nodes, the POST that
answers the transaction, errors as {"message"}, and the headers on every action route."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.transaction import VersionedTransaction

from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.settings import settings
from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.solana.transaction import parse_identity_memo
from tests.conftest import new_user
from tests.unit.api import Api, count_items, sqs_event
from tests.unit.engine.flows import edge, node
from tests.unit.solana.test_solana_runs import SOL, create_wallet

ORIGIN = {"origin": "https://dial.to"}
SPEC_HEADERS = {"content-type", "authorization", "content-encoding", "accept-encoding"}
DEVNET_ID = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"


def tip_flow() -> dict[str, Any]:
    """account → transfer_sol(amount SOL) → recipient; `note` has a default."""
    return {
        "name": "Tip jar",
        "nodes": [
            node("account", "flow_input", label="account", type="pubkey"),
            node("recipient", "flow_input", label="recipient", type="pubkey"),
            node("amount", "flow_input", label="amount", type="decimal"),
            node("count", "flow_input", label="count", type="u8", value={"U": "1"}),
            node("fast", "flow_input", label="fast", type="bool", value={"B": False}),
            node("transfer", "transfer_sol"),
            node("out", "flow_output", label="signature"),
        ],
        "edges": [
            edge("account", "transfer", "output", "from"),
            edge("recipient", "transfer", "output", "to"),
            edge("amount", "transfer", "output", "amount"),
            edge("transfer", "out", "signature"),
        ],
    }


def blink(api: Api, owner: str, network: dict[str, str] | None = None, **columns: Any) -> str:
    flow_id = api.create_flow(
        owner, is_public=True, start_shared=True, start_unverified=True, **tip_flow()
    )
    deployment_id = api.deploy(owner, flow_id)
    changes = {**({"solana_network": network} if network else {}), **columns}
    if changes:
        path = f"/deployment/{deployment_id}"
        reply = api.call("PATCH", path, user=owner, json_body=changes)
        assert reply.status == 200, reply.body
    return deployment_id


def test_actions_json_maps_the_action_routes(api: Api) -> None:
    reply = api.call("GET", "/actions.json", headers=ORIGIN)
    assert reply.status == 200
    assert reply.body == {"rules": [{"pathPattern": "/action/*", "apiPath": "/action/*"}]}
    assert reply.headers["access-control-allow-origin"] == "*"
    assert api.call("OPTIONS", "/actions.json", headers=ORIGIN).body == reply.body


def test_get_describes_the_deployment_with_its_flow_inputs_as_parameters(api: Api) -> None:
    deployment_id = blink(api, new_user())
    reply = api.call("GET", f"/action/{deployment_id}", headers={"host": "api.example.com"})
    assert reply.status == 200, reply.body
    assert reply.headers["x-action-version"] == "2.4"
    assert reply.headers["x-blockchain-ids"] == DEVNET_ID  # the flow's default network
    action = reply.body
    assert action["type"] == "action"
    assert action["title"] == "Tip jar"  # the flow's name until the owner sets a title
    assert action["icon"] == "https://api.example.com/actions/icon.svg"
    assert action["label"] == "Run"
    (linked,) = action["links"]["actions"]
    assert linked["type"] == "transaction"
    assert linked["href"] == (
        f"/action/{deployment_id}?amount={{amount}}&count={{count}}&fast={{fast}}"
        "&recipient={recipient}"
    )
    by_name = {parameter["name"]: parameter for parameter in linked["parameters"]}
    assert set(by_name) == {"amount", "count", "fast", "recipient"}  # not `account`
    assert by_name["amount"] == {
        "name": "amount",
        "label": "amount",
        "type": "number",
        "required": True,
    }
    assert by_name["count"]["pattern"] == "^[0-9]+$" and by_name["count"]["required"] is False
    assert [o["value"] for o in by_name["fast"]["options"]] == ["true", "false"]
    assert by_name["recipient"]["type"] == "text" and by_name["recipient"]["pattern"]
    status, headers, svg = api.gateway.handle("GET", "/actions/icon.svg", {"host": "x"}, b"")
    assert status == 200 and headers["content-type"] == "image/svg+xml"
    assert svg.startswith(b"<svg ")


def test_the_owners_title_icon_description_and_label_are_shown(api: Api) -> None:
    columns = {
        "action_title": "Tip the team",
        "action_icon": "https://example.com/tip.png",
        "action_description": "Half a SOL goes a long way",
        "action_label": "Tip",
    }
    deployment_id = blink(api, new_user(), **columns)
    action = api.call("GET", f"/action/{deployment_id}").body
    assert {key: action[key.removeprefix("action_")] for key in columns} == columns
    assert action["links"]["actions"][0]["label"] == "Tip"


@pytest.mark.parametrize("permission", ["Owner", "Authenticated"])
def test_a_deployment_a_wallet_may_not_start_is_404_on_every_action_route(
    api: Api, permission: str
) -> None:
    deployment_id = blink(api, new_user(), start_permission=permission)
    path = f"/action/{deployment_id}"
    body = {"account": str(Keypair().pubkey())}
    for method in ("GET", "OPTIONS", "POST"):
        reply = api.call(method, path, json_body=body if method == "POST" else None)
        assert reply.status == 404, (method, reply.body)
        assert reply.body == {"message": f"deployment not found: {deployment_id}"}
        assert reply.headers["x-action-version"] == "2.4"
    assert api.call("GET", "/action/not-a-uuid").status == 404


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        ({"account": "not-a-key"}, "", "account must be a base58 public key"),
        ({"account": "1" * 45}, "", "account must be a base58 public key"),
        ({}, "", "account: Field required"),
        ({"account": "{account}"}, "?amount=0.5", "parameter 'recipient' is required"),
        ({"account": "{account}"}, "?recipient={recipient}", "parameter 'amount' is required"),
        ({"account": "{account}"}, "?amount=lots&recipient={recipient}", "parameter 'amount'"),
        ({"account": "{account}"}, "?amount=1&recipient=nope", "parameter 'recipient'"),
        ({"account": "{account}"}, "?amount=1&recipient={recipient}&count=256", "u8 is 0 to 255"),
        ({"account": "{account}"}, "?amount=1&recipient={recipient}&fast=maybe", "true or false"),
    ],
)
def test_bad_input_is_a_400_message_and_starts_nothing(
    api: Api, aws: dict[str, Any], body: dict[str, Any], query: str, message: str
) -> None:
    deployment_id = blink(api, new_user())
    account, recipient = str(Keypair().pubkey()), str(Keypair().pubkey())
    body = {k: v.replace("{account}", account) for k, v in body.items()}
    query = query.replace("{recipient}", recipient)
    runs = count_items("FlowRunsTable")
    reply = api.call("POST", f"/action/{deployment_id}{query}", json_body=body)
    assert reply.status == 400, reply.body
    assert set(reply.body) == {"message"} and message in reply.body["message"], reply.body
    assert count_items("FlowRunsTable") == runs


def test_cors_and_action_headers_on_every_action_route(api: Api) -> None:
    deployment_id = blink(api, new_user())
    paths = ["/actions.json", "/actions/icon.svg", f"/action/{deployment_id}"]
    for path in paths:
        for method in ("GET", "OPTIONS"):
            if path.endswith(".svg") and method == "OPTIONS":
                continue
            status, headers, _ = api.gateway.handle(method, path, {"host": "x", **ORIGIN}, b"")
            assert status == 200, (method, path)
            assert headers["access-control-allow-origin"] == "*"
            exposed = headers["access-control-expose-headers"].split(",")
            assert {"x-action-version", "x-blockchain-ids"} <= set(exposed)
            assert headers["x-action-version"] == "2.4"
        preflight = api.call(
            "OPTIONS",
            path,
            headers={**ORIGIN, "access-control-request-method": "POST"},
        )
        assert preflight.status == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        methods = set(preflight.headers["access-control-allow-methods"].split(","))
        assert {"GET", "POST", "PUT", "OPTIONS"} <= methods
        allowed = set(preflight.headers["access-control-allow-headers"].split(","))
        assert SPEC_HEADERS | {"x-accept-action-version", "x-accept-blockchain-ids"} <= allowed
    assert api.call("GET", f"/action/{deployment_id}").headers["x-blockchain-ids"] == DEVNET_ID


# -- POST: the run, its transaction, the wallet ------------------------------------------


@pytest.fixture
def worker(aws: dict[str, Any], api: Api) -> Iterator[None]:
    """RunFunction on FlowRunQueue in the background, as the local stack's poller."""
    sqs = boto3.client("sqs")
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            found = sqs.receive_message(
                QueueUrl=aws["FlowRunQueue"], MaxNumberOfMessages=1, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in found:
                api.functions.invoke("RunFunction", sqs_event(message["Body"]))
                sqs.delete_message(
                    QueueUrl=aws["FlowRunQueue"], ReceiptHandle=message["ReceiptHandle"]
                )
            stop.wait(0.05)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.fixture
def local_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSolana]:
    monkeypatch.setenv("HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("ACTION_WAIT_SECONDS", "20")
    settings.cache_clear()
    with LocalSolana() as local:
        yield local
    settings.cache_clear()


def final_run(api: Api, owner: str, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        run = api.call("GET", f"/flow_run/{run_id}", user=owner).body
        assert "status" in run, run
        if run["status"] in {"succeeded", "failed", "stopped"}:
            return dict(run)
        time.sleep(0.05)
    raise AssertionError(f"flow run {run_id} did not end")


def test_post_answers_the_transaction_with_the_identity_memo_and_the_run_goes_on(
    api: Api, worker: None, local_network: LocalSolana
) -> None:
    """With an identity, the run asks the account to sign; the answer is that request's
    transaction. The Blink client refreshes the blockhash of the unsigned transaction (as
    the specification tells it to) and sends it: the run finds it by its memo and goes on."""
    owner, wallet, recipient = new_user(), Keypair(), Keypair().pubkey()
    identity = Keypair()
    create_wallet(api, owner, identity)
    local_network.airdrop(wallet.pubkey(), SOL)
    deployment_id = blink(
        api,
        owner,
        {"url": local_network.url, "cluster": "localnet"},
        action_identity=str(identity.pubkey()),
        action_title="Tip jar",
    )
    path = f"/action/{deployment_id}?amount=0.25&recipient={recipient}"
    reply = api.call("POST", path, headers=ORIGIN, json_body={"account": str(wallet.pubkey())})
    assert reply.status == 200, reply.body
    assert set(reply.body) == {"type", "transaction", "message"}
    assert reply.body["type"] == "transaction"
    assert reply.body["message"].startswith("Tip jar: sign to complete flow run ")
    genesis = str(local_network.chain.genesis_hash)
    assert reply.headers["x-blockchain-ids"] == f"solana:{genesis[:32]}"
    assert reply.headers["access-control-allow-origin"] == "*"
    tx = VersionedTransaction.from_bytes(base64.b64decode(reply.body["transaction"]))
    keys = list(tx.message.account_keys)
    assert keys[0] == wallet.pubkey()
    memo = parse_identity_memo(bytes(tx.message.instructions[-1].data).decode())
    assert memo.identity == identity.pubkey()  # and its signature verified in the parse
    assert memo.reference in keys  # findReference(reference) finds this transaction
    run_id = reply.body["message"].rsplit(" ", 1)[-1].rstrip(".")
    run = api.call("GET", f"/flow_run/{run_id}", user=owner).body
    assert run["origin"] == "action"
    assert run["inputs"]["account"] == {"B3": str(wallet.pubkey())}
    assert run["inputs"]["amount"] == {"D": "0.25"}
    assert "count" not in run["inputs"]  # an optional parameter left out keeps its default
    assert run["transaction"] is None  # not stopped: waiting for the wallet

    rpc = SolanaRpc(local_network.url, allow_private=True)
    local_network.advance(1)
    blockhash, _ = rpc.latest_blockhash()
    old = tx.message
    refreshed = MessageV0(
        old.header, old.account_keys, blockhash, old.instructions, old.address_table_lookups
    )
    assert refreshed.recent_blockhash != old.recent_blockhash
    sent = rpc.send(VersionedTransaction(refreshed, [wallet]))
    run = final_run(api, owner, run_id)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"]["signature"] == {"B6": str(sent)}
    assert rpc.balance(recipient) == SOL // 4


def test_without_an_identity_the_run_stops_at_the_transaction(
    api: Api, worker: None, local_network: LocalSolana
) -> None:
    """Nothing could find the wallet's transaction on chain: output_instructions."""
    owner, wallet = new_user(), Keypair()
    local_network.airdrop(wallet.pubkey(), SOL)
    network = {"url": local_network.url, "cluster": "localnet"}
    deployment_id = blink(api, owner, network)
    path = f"/action/{deployment_id}?amount=0.25&recipient={Keypair().pubkey()}"
    reply = api.call("POST", path, headers=ORIGIN, json_body={"account": str(wallet.pubkey())})
    assert reply.status == 200, reply.body
    run_id = reply.body["message"].rsplit(" ", 1)[-1].rstrip(".")
    run = final_run(api, owner, run_id)
    assert run["status"] == "stopped" and run["transaction"] == reply.body["transaction"]


def test_a_post_whose_run_cannot_be_queued_is_a_503_and_leaves_no_run(api: Api) -> None:
    from tests.faults import Fault, injected

    deployment_id = blink(api, new_user())
    path = f"/action/{deployment_id}?amount=0.25&recipient={Keypair().pubkey()}"
    with injected(Fault("SendMessage", "ServiceUnavailable")):
        reply = api.call("POST", path, json_body={"account": str(Keypair().pubkey())})
    assert reply.status == 503, reply.body
    assert count_items("FlowRunsTable") == 0, "the run written before the send is deleted"
