"""A Blink round trip on the local stack, over HTTP, as a Blink client and a wallet do it:
GET the Action, POST with the wallet's account, sign the returned transaction with that
wallet's key, send it to the cluster; then SOL and token balances, the fee, and the
identity memo as the specification verifies it (through getSignaturesForAddress)."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
from typing import Any

from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID

from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.solana.transaction import parse_identity_memo
from tests.conftest import ROOT, Stack, new_user
from tests.integration.test_http import Client
from tests.integration.test_solana_http import client, deploy, fund, rpc  # noqa: F401
from tests.unit.engine.flows import edge, node
from tests.unit.solana.test_token_runs import make_mint, token_balance

SOL = 1_000_000_000
FEE = 1_000_000
ORIGIN = {"Origin": "https://dial.to"}
COMPUTE_BUDGET = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")
ASSOCIATED = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


def pay_in_tokens(mint: Pubkey, treasury: Pubkey) -> dict[str, Any]:
    """The wallet (`account`) pays `amount` tokens of `mint` to `treasury`."""
    return {
        "name": "Pay in tokens",
        "nodes": [
            node("account", "flow_input", label="account", type="pubkey"),
            node("amount", "flow_input", label="amount", type="decimal"),
            node(
                "pay",
                "transfer_token",
                mint_account={"B3": str(mint)},
                recipient={"B3": str(treasury)},
            ),
            node("out", "flow_output", label="signature"),
        ],
        "edges": [
            edge("account", "pay", "output", "fee_payer"),
            edge("account", "pay", "output", "sender_owner"),
            edge("amount", "pay", "output", "amount"),
            edge("pay", "out", "signature"),
        ],
    }


def verify_with_the_sdk(url: str, identity: str, signature: str) -> dict[str, Any]:
    """tests/js/verify_identity.mjs: @solana/actions' verifySignatureInfoForIdentity."""
    done = subprocess.run(
        ["node", str(ROOT / "tests/js/verify_identity.mjs"), url, identity, signature],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{done.stderr}\n(make test installs tests/js with npm ci)"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def rpc_call(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["result"]


def test_a_blink_round_trip_moves_tokens_and_pays_the_fee(
    client: Client,  # noqa: F811
    rpc: SolanaRpc,  # noqa: F811
    stack: Stack,
) -> None:
    owner, wallet = new_user(), Keypair()
    identity = client.request("POST", "/wallet", user=owner, json={"name": "identity"}).json()
    fund(rpc, wallet.pubkey(), 2 * SOL)
    mint = make_mint(rpc, wallet, 10_000_000, decimals=6)  # the wallet holds 10 tokens
    treasury, fee_address = Keypair().pubkey(), Keypair().pubkey()
    deployment = deploy(
        client,
        owner,
        pay_in_tokens(mint, treasury),
        action_identity=identity["pubkey"],
        fees=[[str(fee_address), FEE]],
        action_title="Pay in tokens",
        action_label="Pay",
    )

    # The Blink client reads the Action (CORS, version and chain headers included)
    got = client.request("GET", f"/action/{deployment}", headers=ORIGIN)
    assert got.status_code == 200, got.text
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    assert got.headers["X-Action-Version"] == "2.4"
    genesis = rpc_call(stack.solana_url, "getGenesisHash")
    assert got.headers["X-Blockchain-Ids"] == f"solana:{genesis[:32]}"
    action = got.json()
    assert (action["title"], action["label"]) == ("Pay in tokens", "Pay")
    (linked,) = action["links"]["actions"]
    assert [p["name"] for p in linked["parameters"]] == ["amount"]

    # … fills the parameter into the href, POSTs the wallet's account
    href = linked["href"].replace("{amount}", "1.5")
    posted = client.request(
        "POST", href, headers=ORIGIN, json={"account": str(wallet.pubkey()), "type": "transaction"}
    )
    assert posted.status_code == 200, posted.text
    answer = posted.json()
    assert answer["type"] == "transaction"
    tx = VersionedTransaction.from_bytes(base64.b64decode(answer["transaction"]))
    message = tx.message
    keys = list(message.account_keys)
    assert keys[0] == wallet.pubkey()
    # [price, limit, create the treasury's token account, TransferChecked, the fee, memo]
    programs = [keys[ix.program_id_index] for ix in message.instructions]
    assert programs == [COMPUTE_BUDGET, COMPUTE_BUDGET, ASSOCIATED, TOKEN_PROGRAM_ID, SYSTEM, MEMO]

    # … and the wallet signs and sends it itself
    signed = VersionedTransaction.populate(
        message, [wallet.sign_message(to_bytes_versioned(message))]
    )
    lamports = rpc.balance(wallet.pubkey())
    signature = rpc.send(signed)
    rpc.confirm(signature, rpc.latest_blockhash()[1])

    # The run was waiting for the wallet: it finds the transaction by its memo and goes on.
    run_id = answer["message"].rsplit(" ", 1)[-1].rstrip(".")
    run = client.request("GET", f"/flow_run/{run_id}", user=owner).json()
    for _ in range(100):
        if run["status"] != "running":
            break
        time.sleep(0.1)
        run = client.request("GET", f"/flow_run/{run_id}", user=owner).json()
    assert run["status"] == "succeeded", run
    assert run["outputs"]["signature"] == {"B6": str(signature)}

    assert token_balance(rpc, treasury, mint) == 1_500_000
    assert token_balance(rpc, wallet.pubkey(), mint) == 8_500_000
    assert rpc.balance(fee_address) == FEE
    rent = rpc.minimum_balance_for_rent_exemption(165)  # the treasury's new token account
    spent = lamports - rpc.balance(wallet.pubkey())
    assert spent >= FEE + rent + 5_000  # + the priority fee, if recent blocks paid one

    # Identity verification, as the specification does it: the identity's signatures on
    # chain, the memo parsed from the RPC's memo field, its signature over the reference,
    # and this transaction the first (only) one to use the reference.
    listed = rpc_call(stack.solana_url, "getSignaturesForAddress", identity["pubkey"])
    (entry,) = [e for e in listed if e["signature"] == str(signature)]
    text = entry["memo"].split("] ", 1)[1]
    memo = parse_identity_memo(text)  # raises if the signature does not verify
    assert str(memo.identity) == identity["pubkey"]
    referenced = rpc_call(stack.solana_url, "getSignaturesForAddress", str(memo.reference))
    assert [e["signature"] for e in referenced] == [str(signature)]

    # … and as the Solana Actions SDK does it, through web3.js against the same RPC.
    sdk = verify_with_the_sdk(stack.solana_url, identity["pubkey"], str(signature))
    assert sdk["found"] and sdk["verified"], sdk
    assert sdk["memo"] == entry["memo"]
    # Our CORS headers include everything the SDK's ACTIONS_CORS_HEADERS say.
    assert got.headers["Access-Control-Allow-Origin"] == sdk["cors"]["Access-Control-Allow-Origin"]
    exposed = got.headers["Access-Control-Expose-Headers"].lower().split(",")
    wanted = sdk["cors"]["Access-Control-Expose-Headers"].lower().split(", ")
    assert set(wanted) <= set(exposed)
    preflight = client.request(
        "OPTIONS",
        f"/action/{deployment}",
        headers={**ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    for name in ("Access-Control-Allow-Headers", "Access-Control-Allow-Methods"):
        ours = {item.strip().lower() for item in preflight.headers[name].split(",")}
        theirs = {item.strip().lower() for item in sdk["cors"][name].split(",")}
        assert theirs <= ours, name


def test_action_errors_are_messages_with_cors_over_http(
    client: Client,  # noqa: F811
) -> None:
    owner = new_user()
    deployment = deploy(client, owner, pay_in_tokens(Keypair().pubkey(), Keypair().pubkey()))
    bad = client.request(
        "POST", f"/action/{deployment}?amount=1", headers=ORIGIN, json={"account": "nope"}
    )
    assert bad.status_code == 400
    assert bad.json() == {"message": "account must be a base58 public key (32 bytes), got 'nope'"}
    assert bad.headers["Access-Control-Allow-Origin"] == "*"
    preflight = client.request(
        "OPTIONS",
        f"/action/{deployment}",
        headers={**ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "x-accept-action-version" in preflight.headers["Access-Control-Allow-Headers"]
    unknown = client.request("GET", "/action/01a20752-93e5-74ca-b0c3-11e0a99fa04a")
    assert unknown.status_code == 404 and set(unknown.json()) == {"message"}
