"""Upstream's "Simple Transfer" flow (docker/export.json), imported and run on the local
Solana RPC as upstream's deploy_test.ts runs it: the starter's key is the sender, asked to
sign, or handed the transaction with output_instructions."""

from __future__ import annotations

import base64
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from flowdeploy import base58
from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.solana.rpc import SolanaRpc
from tests.conftest import new_user
from tests.unit.api import Api
from tests.unit.solana.test_solana_runs import (  # the local RPC is on loopback
    SOL,
    _answer_when_asked,
    execute,
    local_settings,  # noqa: F401 - autouse
    read,
    start,
)
from tests.unit.test_import_export import flow_ids, imported

RECIPIENT = Pubkey.from_string("GzPH2zu1BzcoWgZ4Qo8qZ8VyekGED8Hax4dYJcFauPgV")  # wallet 7165
AMOUNT = 10_000_000  # the flow's const: 0.01 SOL


def deployed(api: Api, local: LocalSolana, **changes: Any) -> tuple[str, str]:
    owner = new_user()
    flow_id = flow_ids(imported(api, owner))["Simple Transfer"]
    deployment = api.deploy(owner, flow_id)
    body = {"solana_network": {"url": local.url, "cluster": "localnet"}, **changes}
    reply = api.call("PATCH", f"/deployment/{deployment}", user=owner, json_body=body)
    assert reply.status == 200, reply.body
    return owner, deployment


def test_the_starter_signs_the_transfer_it_asked_for(api: Api, local: LocalSolana) -> None:
    owner, deployment = deployed(api, local)
    starter = Keypair()
    local.airdrop(starter.pubkey(), SOL)
    started = start(api, owner, deployment, {"inputs": {"sender": {"B3": str(starter.pubkey())}}})
    path = f"/flow_run/{started['flow_run_id']}/signature"
    headers = {"Authorization": f"Bearer {started['token']}"}

    def sign(request: dict[str, Any]) -> None:
        assert request["pubkey"] == str(starter.pubkey())
        signature = starter.sign_message(base64.b64decode(request["message"]))
        api.call("POST", path, headers=headers, json_body={"signature": str(signature)})

    thread = _answer_when_asked(api, started, sign)
    execute(api, started["flow_run_id"])
    thread.join()
    run = read(api, started).body
    assert run["status"] == "succeeded", run["error"]
    assert len(base58.decode(run["outputs"]["signature"]["B6"])) == 64
    assert SolanaRpc(local.url).balance(RECIPIENT) >= AMOUNT


def test_with_output_instructions_the_transfer_comes_back_for_the_starter(
    api: Api, local: LocalSolana
) -> None:
    owner, deployment = deployed(api, local, output_instructions=True)
    starter = Keypair()
    local.airdrop(starter.pubkey(), SOL)
    body = {
        "inputs": {"sender": {"B3": str(starter.pubkey())}},
        "action_signer": str(starter.pubkey()),
    }
    started = start(api, owner, deployment, body)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "stopped", run["error"]
    transaction = VersionedTransaction.from_bytes(base64.b64decode(run["transaction"]))
    message = transaction.message
    keys = list(message.account_keys)
    system = Pubkey.from_string("11111111111111111111111111111111")
    transfers = [ix for ix in message.instructions if keys[ix.program_id_index] == system]
    [transfer] = transfers
    source, target = (keys[i] for i in transfer.accounts)
    assert (source, target) == (starter.pubkey(), RECIPIENT)
    assert int.from_bytes(bytes(transfer.data)[4:12], "little") == AMOUNT
    assert keys[0] == starter.pubkey(), "the starter pays the fee"


def test_transfer_sol_runs_its_rhai_nodes_and_collatz_then_sends_both_transfers(
    api: Api, local: LocalSolana
) -> None:
    """Upstream's "Transfer SOL" as its flow_test.ts starts it (the owner's keypair as
    `sender`), with the export's wallet 7165 holding the test's own key: Collatz(9) counts
    19 steps, `a / 100` makes 0.19 SOL, `a + Decimal(0.001)` 0.191 SOL."""
    from flowdeploy import frames
    from tests.unit.engine.upstream import export

    owner_key = Keypair()
    local.airdrop(owner_key.pubkey(), SOL)
    secret = base58.encode(bytes(owner_key))
    body = dict(export())
    body["flows"] = body["flows"].replace(str(RECIPIENT), str(owner_key.pubkey()))
    [wallet] = frames.read(body["wallets"], "wallets")
    wallet.update(public_key=str(owner_key.pubkey()), keypair=secret)
    body["wallets"] = frames.write(list(wallet), [list(wallet.values())])
    owner = new_user()
    report = api.call("POST", "/data/import", user=owner, json_body=body).body
    deployment = api.deploy(owner, flow_ids(report)["Transfer SOL"])
    network = {"solana_network": {"url": local.url, "cluster": "localnet"}}
    assert api.call("PATCH", f"/deployment/{deployment}", user=owner, json_body=network).status
    inputs = {
        "sender": {"B6": secret},
        "recipient": {"B3": str(owner_key.pubkey())},
        "amount": {"D": "0.000001"},
    }
    started = start(api, owner, deployment, {"inputs": inputs})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "succeeded", run["error"]
    assert len(base58.decode(run["outputs"]["signature"]["B6"])) == 64
    nodes, after = [], ""
    while after is not None:
        page = read(api, started, f"/nodes{after and f'?after={after}'}").body
        nodes += page["nodes"]
        after = page["next"]
    scripts = [n for n in nodes if n["command"] == "rhai_script_1x1" and "/" not in n["node_id"]]
    assert sorted(n["outputs"]["u"]["D"] for n in scripts) == ["0.19", "0.191"]
