"""Contract tests over HTTP against the local stack: every HTTP call of the Space Operator
clients (shared/reference/client-protocol.md), sent exactly as v0.12.2 and client-next send
it and judged as each judges the answer (see `space_operator_clients`). The transfers need
the starter's signature and complete through signature_request → submit → output, with
the balances checked on the stack's Solana cluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.message import MessageV0, from_bytes_versioned, to_bytes_versioned
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from flowdeploy import base58
from flowdeploy.solana.rpc import SolanaRpc
from tests import wallet
from tests.conftest import Stack, new_user
from tests.integration.space_operator_clients import V012, ClientError, Next
from tests.integration.test_http import Client
from tests.integration.test_solana_http import fund
from tests.unit.engine.flows import edge, node
from tests.unit.solana.conftest import call
from tests.unit.solana.test_solana_runs import SOL, transfer_flow


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


@pytest.fixture(scope="module")
def rpc(stack: Stack) -> SolanaRpc:
    return SolanaRpc(stack.solana_url, allow_private=True)


@pytest.fixture(scope="module")
def owner(client: Client) -> tuple[str, str]:
    """A user and an API key of theirs (the clients' integration tests use one)."""
    user = new_user()
    reply = client.request("POST", "/apikey", user=user, json={"name": "clients"})
    assert reply.status_code == 201, reply.text
    return user, str(reply.json()["key"])


def transfer_deployment(client: Client, stack: Stack, owner: tuple[str, str]) -> str:
    """`sender` (a key only its wallet holds) → transfer_sol 0.5 SOL → output `signature`,
    anyone may start it; deployed with v0.12.2's deployFlow."""
    flow = transfer_flow(node("sender", "flow_input", label="sender"))
    flow_id = client.flow(
        owner[0], is_public=True, start_shared=True, start_unverified=True, **flow
    )
    return V012(stack.url, owner[1]).deploy_flow(flow_id)


def wallet_signs(request: dict[str, Any], keypair: Keypair, add_compute_budget: bool) -> dict:
    """What `signAndSubmitSignature` does with a web3.js wallet: build the transaction from
    the request, let the wallet sign it (a wallet may add compute budget first), and send
    the signature at the signer's position, with `new_msg` only if the message changed."""
    message = from_bytes_versioned(base64.b64decode(request["message"]))
    assert isinstance(message, MessageV0)
    before = to_bytes_versioned(message)
    if add_compute_budget:
        message = wallet.with_compute_budget(message, 150_000, 2_000)
    after = to_bytes_versioned(message)
    signed = VersionedTransaction(message, [keypair])
    position = list(message.account_keys).index(keypair.pubkey())
    body: dict[str, Any] = {"id": request["id"], "signature": str(signed.signatures[position])}
    if after != before:
        body["new_msg"] = base64.b64encode(after).decode()
    return body


def test_v0_12_deploys_starts_signs_and_reads_the_output_of_a_transfer(
    client: Client, stack: Stack, rpc: SolanaRpc, owner: tuple[str, str]
) -> None:
    """Upstream's "deploy and run" (client/integration_tests/deploy_test.ts), as v0.12.2."""
    deployment_id = transfer_deployment(client, stack, owner)
    starter_key, recipient = Keypair(), Keypair().pubkey()
    fund(rpc, starter_key.pubkey(), 2 * SOL)
    starter = V012(stack.url, token=str(starter_key.pubkey()))
    inputs = {"sender": {"B3": str(starter_key.pubkey())}, "recipient": {"B3": str(recipient)}}
    started = starter.start_deployment({"id": deployment_id}, {"inputs": inputs})
    starter.token = started["token"]
    request = starter.get_signature_request(started["flow_run_id"])  # asked once, as v0.12.2
    assert starter.submit_signature(wallet_signs(request, starter_key, False)) == {"success": True}
    output = starter.get_flow_output(started["flow_run_id"])
    signature = Signature.from_bytes(base58.decode(output["M"]["signature"]["B6"]))
    assert rpc.signature_statuses([signature])[0]["err"] is None
    assert rpc.balance(recipient) == SOL // 2


def test_client_next_runs_the_same_transfer_with_a_wallet_that_adds_compute_budget(
    client: Client, stack: Stack, rpc: SolanaRpc, owner: tuple[str, str]
) -> None:
    """Upstream's "deployment contract: deploy, start, sign, and fetch output", as
    client-next; the wallet changes the message (compute budget), which is what lands."""
    deployment_id = transfer_deployment(client, stack, owner)
    starter_key, recipient = Keypair(), Keypair().pubkey()
    fund(rpc, starter_key.pubkey(), 2 * SOL)
    starter = Next(stack.url, token=str(starter_key.pubkey()))
    inputs = {"sender": {"B3": str(starter_key.pubkey())}, "recipient": {"B3": str(recipient)}}
    handle = starter.start({"id": deployment_id}, {"inputs": inputs})
    request = starter.signature_request(handle["flow_run_id"], handle["token"])
    assert request["pubkey"] == str(starter_key.pubkey())
    body = wallet_signs(request, starter_key, add_compute_budget=True)
    assert "new_msg" in body
    starter.submit(body)
    output = starter.output(handle["flow_run_id"], handle["token"])
    landed = Signature.from_bytes(base58.decode(output["M"]["signature"]["B6"]))
    assert landed == Signature.from_string(body["signature"])  # the wallet's message landed
    assert rpc.signature_statuses([landed])[0]["err"] is None
    assert rpc.balance(recipient) == SOL // 2


def build_transaction(request: dict[str, Any]) -> VersionedTransaction:
    """v0.12.2's `SignatureRequest.buildTransaction()`: the message with the request's
    signatures in their slots, 64 zero bytes elsewhere."""
    message = from_bytes_versioned(base64.b64decode(request["message"]))
    given = {p["pubkey"]: p["signature"] for p in request.get("signatures") or []}
    signers = message.account_keys[: message.header.num_required_signatures]
    signatures = [
        Signature.from_string(given.get(str(key), str(Signature.default()))) for key in signers
    ]
    return VersionedTransaction.populate(message, signatures)


def test_v0_12_execute_on_action_a_wallet_sends_and_the_run_continues(
    client: Client, stack: Stack, rpc: SolanaRpc, owner: tuple[str, str]
) -> None:
    """Upstream's "execute on action" as v0.12.2 runs it: an identity wallet (upsertWallet),
    a start with action_signer, then getSignatureRequest, buildTransaction, the wallet signs
    and `connection.sendTransaction(tx, {skipPreflight: true})`, no submit; getFlowOutput's
    signature is the wallet's."""
    deployment_id = transfer_deployment(client, stack, owner)
    identity = Keypair()
    V012(stack.url, owner[1]).upsert_wallet(
        {
            "type": "HARDCODED",
            "name": "identity",
            "public_key": str(identity.pubkey()),
            "keypair": base58.encode(bytes(identity)),
            "user_id": owner[0],
        }
    )
    path = f"/deployment/{deployment_id}"
    patched = client.request(
        "PATCH", path, user=owner[0], json={"action_identity": str(identity.pubkey())}
    )
    assert patched.status_code == 200, patched.text
    starter_key, recipient = Keypair(), Keypair().pubkey()
    fund(rpc, starter_key.pubkey(), 2 * SOL)
    starter = V012(stack.url, token=str(starter_key.pubkey()))
    inputs = {"sender": {"B3": str(starter_key.pubkey())}, "recipient": {"B3": str(recipient)}}
    started = starter.start_deployment(
        {"id": deployment_id},
        {"inputs": inputs, "action_signer": str(starter_key.pubkey())},
    )
    starter.token = started["token"]
    request = starter.get_signature_request(started["flow_run_id"])
    unsigned = build_transaction(request)
    signed = VersionedTransaction(unsigned.message, [starter_key])  # tx.sign([starterKeypair])
    wire = base64.b64encode(bytes(signed)).decode()
    sent = call(
        stack.solana_url, "sendTransaction", wire, {"encoding": "base64", "skipPreflight": True}
    )
    output = starter.get_flow_output(started["flow_run_id"])
    assert output["M"]["signature"]["B6"] == sent["result"]
    assert rpc.balance(recipient) == SOL // 2


def test_a_tampered_new_msg_is_refused_as_both_clients_see_it(
    client: Client, stack: Stack, rpc: SolanaRpc, owner: tuple[str, str]
) -> None:
    deployment_id = transfer_deployment(client, stack, owner)
    starter_key, thief, recipient = Keypair(), Keypair().pubkey(), Keypair().pubkey()
    fund(rpc, starter_key.pubkey(), 2 * SOL)
    starter = Next(stack.url, token=str(starter_key.pubkey()))
    inputs = {"sender": {"B3": str(starter_key.pubkey())}, "recipient": {"B3": str(recipient)}}
    handle = starter.start({"id": deployment_id}, {"inputs": inputs})
    request = starter.signature_request(handle["flow_run_id"], handle["token"])
    original = from_bytes_versioned(base64.b64decode(request["message"]))
    keys = list(original.account_keys)
    keys[keys.index(recipient)] = thief  # the same transfer, to someone else
    tampered = MessageV0(
        original.header, keys, original.recent_blockhash, original.instructions, []
    )
    body = {
        "id": request["id"],
        "signature": str(starter_key.sign_message(to_bytes_versioned(tampered))),
        "new_msg": base64.b64encode(to_bytes_versioned(tampered)).decode(),
    }
    with pytest.raises(ClientError) as v012:
        V012(stack.url).submit_signature(body)
    with pytest.raises(ClientError) as nxt:
        starter.submit(body)
    reason = "new_msg changes the transaction: different account inputs for instruction 0"
    assert str(v012.value) == str(nxt.value) == reason
    assert nxt.value.status == 400
    starter.submit(wallet_signs(request, starter_key, False))  # the honest answer still works
    starter.output(handle["flow_run_id"], handle["token"])
    assert (rpc.balance(recipient), rpc.balance(thief)) == (SOL // 2, 0)


def test_stop_and_output_of_a_stopped_run_as_each_client_calls_them(
    client: Client, stack: Stack, owner: tuple[str, str]
) -> None:
    user, key = owner
    nodes = [node("w", "wait", seconds=20), node("out", "flow_output", label="done")]
    flow_id = client.flow(user, nodes=nodes, edges=[edge("w", "out", out="value")])
    deployment_id = V012(stack.url, key).deploy_flow(flow_id)
    v012, nxt = V012(stack.url, key), Next(stack.url, key)
    first = v012.start_deployment({"id": deployment_id})  # no params: no body at all
    second = nxt.start({"flow": flow_id})
    assert v012.stop_flow(first["flow_run_id"], {"timeout_millies": 1000}) == {"success": True}
    assert nxt.stop(second["flow_run_id"], second["token"], {"reason": "not needed"}) == {
        "success": True
    }
    run = client.request("GET", f"/flow_run/{second['flow_run_id']}", user=user).json()
    assert run["stop_requested"] == "stopped by the run token's holder: not needed"
    with pytest.raises(ClientError) as stopped:
        nxt.output(second["flow_run_id"], second["token"])
    assert stopped.value.status == 422
    assert "was stopped: stopped by the run token's holder: not needed" in str(stopped.value)
    with pytest.raises(ClientError) as stopped_too:
        v012.get_flow_output(first["flow_run_id"])  # waits until it is final
    assert "was stopped: stopped by its owner" in str(stopped_too.value)
    with pytest.raises(ClientError) as again:
        v012.stop_flow(first["flow_run_id"], {})
    assert "has already finished" in str(again.value)


def test_reads_with_client_next_get_post_etag_and_skip_cache(
    client: Client, stack: Stack, owner: tuple[str, str]
) -> None:
    user, key = owner
    nodes = [
        node("a", "flow_input", label="a"),
        node("b", "flow_input", label="b"),
        node("add", "add"),
        node("c", "flow_output", label="c"),
    ]
    edges = [edge("a", "add", into="a"), edge("b", "add", into="b"), edge("add", "c", "result")]
    flow_id = client.flow(user, nodes=nodes, edges=edges, read_enabled=True)
    deployment_id = V012(stack.url, key).deploy_flow(flow_id)
    nxt = Next(stack.url, key)
    inputs = {"a": {"U": "2"}, "b": {"U": "3"}}
    first = nxt.read({"id": deployment_id}, inputs)
    assert first.json() == {"M": {"c": {"D": "5"}}}
    assert first.headers["cache-control"].startswith("private, max-age=")
    cached = nxt.read({"flow": flow_id}, inputs, etag=first.headers["etag"])
    assert cached.status_code == 304 and cached.content == b""
    big = {**inputs, "note": {"S": "x" * 1600}}  # over 1,500 bytes: a POST
    assert nxt.read({"id": deployment_id}, big).json() == {"M": {"c": {"D": "5"}}}
    assert nxt.read({"id": deployment_id}, inputs, skip_cache=True).status_code == 200
    origins = [run["origin"] for run in client.runs(user, deployment_id)]
    assert origins == ["read", "read", "read"]  # first, the POST, the skip_cache
    not_enabled = client.flow(user, nodes=nodes, edges=edges)
    refused = V012(stack.url, key).deploy_flow(not_enabled)
    with pytest.raises(ClientError) as forbidden:
        nxt.read({"id": refused}, inputs)
    assert forbidden.value.status == 403


def test_wallet_sign_in_claim_token_and_upsert_as_each_client_calls_them(
    client: Client, stack: Stack, owner: tuple[str, str]
) -> None:
    wallet = Keypair()

    def sign(message: str) -> str:
        return base58.encode(bytes(wallet.sign_message(message.encode())))

    v012 = V012(stack.url)  # initAuth / confirmAuth send no credentials, only the anon key
    message = v012.init_auth(str(wallet.pubkey()))
    first = v012.confirm_auth(message, sign(message))
    second = Next(stack.url).login_with_signature(str(wallet.pubkey()), sign)
    assert (first["new_user"], second["new_user"]) == (True, False)
    user_id = first["session"]["user"]["id"]
    assert second["session"]["user"]["id"] == user_id
    with pytest.raises(ClientError) as replay:
        v012.confirm_auth(message, sign(message))
    assert str(replay.value) == "sign-in failed: this message was already used"

    signed_in = Next(stack.url, second["session"]["access_token"])
    adapter = Keypair().pubkey()
    adapter_row = {"type": "ADAPTER", "name": "phantom", "public_key": str(adapter)}
    rows = signed_in.upsert_wallet(adapter_row)
    assert [(r["type"], r["public_key"], r["user_id"]) for r in rows] == [
        ("ADAPTER", str(adapter), user_id)
    ]
    held = Keypair()
    rows = V012(stack.url, owner[1]).upsert_wallet(
        {
            "type": "HARDCODED",
            "name": "identity",
            "public_key": str(held.pubkey()),
            "keypair": base58.encode(bytes(held)),
            "user_id": owner[0],
        }
    )
    assert rows[0]["type"] == "HARDCODED" and "keypair" not in rows[0]

    claimed = V012(stack.url, owner[1]).claim_token()
    assert claimed["user_id"] == owner[0] and claimed["refresh_token"] == ""
    again = Next(stack.url, owner[1]).claim_token()
    mine = Next(stack.url, again["access_token"]).request("GET", "/apikey").json()
    assert len(mine["api_keys"]) == 1
    with pytest.raises(ClientError) as no_key:
        Next(stack.url, claimed["access_token"]).claim_token()
    assert no_key.value.status == 401


def test_errors_reach_v0_12_as_messages_under_exactly_application_json(
    client: Client, stack: Stack, owner: tuple[str, str]
) -> None:
    """v0.12.2 reads `error` only when the content type is exactly application/json."""
    replies = [
        client.http.get(f"{stack.url}/flow/output/not-a-run", headers={"x-api-key": owner[1]}),
        client.http.post(f"{stack.url}/signature/submit", json={"id": 1, "signature": "x"}),
        client.http.post(f"{stack.url}/auth/confirm", json={"token": "x.y"}),
        client.http.get(f"{stack.url}/deployment/read", headers={"x-api-key": owner[1]}),
    ]
    for reply in replies:
        assert reply.status_code in {400, 401, 404}, reply.text
        assert reply.headers["content-type"] == "application/json"
        with pytest.raises(ClientError) as raised:
            V012.parse(reply)
        assert str(raised.value) == reply.json()["error"]
