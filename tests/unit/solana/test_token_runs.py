"""SPL Token and Token-2022 nodes through the real handlers, against the local Solana RPC
over HTTP: a mint made, tokens minted and sent to a fresh wallet (its associated account
created by the transfer), balances read; bad inputs fail before anything is sent."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.solana import tokens
from flowdeploy.solana.rpc import SolanaRpc
from tests.conftest import new_user
from tests.unit.api import Api
from tests.unit.engine.flows import edge, node
from tests.unit.solana.test_solana_runs import (  # noqa: F401 - local_settings is autouse
    SOL,
    create_wallet,
    deploy,
    execute,
    local_settings,
    read,
    start,
)

PROGRAMS = pytest.mark.parametrize(
    "program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl-token", "token-2022"]
)


def token_balance(rpc: SolanaRpc, owner: Pubkey, mint: Pubkey) -> int | None:
    """Base units in `owner`'s associated account; None when it does not exist."""
    info = tokens.read_mint(mint, rpc.account_info(mint))
    address = tokens.associated_address(owner, info)
    account = tokens.read_token_account(address, rpc.account_info(address))
    return None if account is None else account.amount


def make_mint(
    rpc: SolanaRpc,
    authority: Keypair,
    units: int,
    decimals: int = 6,
    program: Pubkey = TOKEN_PROGRAM_ID,
) -> Pubkey:
    """A mint of `authority` holding `units` in its associated account, made directly."""
    mint = Keypair()
    setup = tokens.create_mint(
        payer=authority.pubkey(),
        mint=mint.pubkey(),
        decimals=decimals,
        mint_authority=authority.pubkey(),
        freeze_authority=None,
        program=program,
        rent_lamports=rpc.minimum_balance_for_rent_exemption(tokens.MINT_SIZE),
    )
    info = tokens.MintInfo(mint.pubkey(), program, decimals, 0, authority.pubkey())
    ata = tokens.associated_address(authority.pubkey(), info)
    setup += [
        tokens.create_associated_account(authority.pubkey(), authority.pubkey(), info),
        tokens.mint_to(info, ata, authority.pubkey(), units),
    ]
    blockhash, height = rpc.latest_blockhash()
    message = MessageV0.try_compile(authority.pubkey(), setup, [], blockhash)
    rpc.confirm(rpc.send(VersionedTransaction(message, [authority, mint])), height)
    return mint.pubkey()


def test_tokens_are_minted_and_sent_to_a_fresh_wallet_whose_account_the_transfer_creates(
    api: Api, local: LocalSolana
) -> None:
    # SPL Token here; Token-2022 in the next test, through the same nodes.
    owner = new_user()
    treasury = Keypair()
    wallet = create_wallet(api, owner, treasury)
    local.airdrop(treasury.pubkey(), 10 * SOL)
    recipient = Keypair().pubkey()  # has nothing: no SOL, no token account
    flow = {
        "nodes": [
            node("treasury", "wallet", wallet_id=wallet["id"]),
            node("mint_key", "generate_keypair"),
            node("decimals", "const", value={"U": "6"}),
            node("create", "create_mint_account"),
            node("supply", "const", value={"D": "100"}),
            node("mint", "mint_token"),
            node("recipient", "flow_input", label="recipient", type="pubkey"),
            node("amount", "const", value={"D": "2.5"}),
            node("send", "transfer_token"),
            node("balance", "get_token_balance"),
            node("out_mint", "flow_output", label="mint"),
            node("out_balance", "flow_output", label="balance"),
            node("out_account", "flow_output", label="recipient_token_account"),
        ],
        "edges": [
            edge("treasury", "create", "pubkey", "fee_payer"),
            edge("treasury", "create", "pubkey", "mint_authority"),
            edge("mint_key", "create", "keypair", "mint_account"),
            edge("decimals", "create", "output", "decimals"),
            edge("treasury", "mint", "pubkey", "fee_payer"),
            edge("treasury", "mint", "pubkey", "mint_authority"),
            edge("create", "mint", "mint_account", "mint_account"),
            edge("treasury", "mint", "pubkey", "recipient"),
            edge("supply", "mint", "output", "amount"),
            edge("treasury", "send", "pubkey", "fee_payer"),
            edge("treasury", "send", "pubkey", "sender_owner"),
            edge("create", "send", "mint_account", "mint_account"),
            edge("mint", "send", "recipient_token_account", "sender_token_account"),
            edge("recipient", "send", "output", "recipient"),
            edge("amount", "send", "output", "amount"),
            edge("create", "balance", "mint_account", "mint_account"),
            edge("send", "balance", "recipient_token_account", "token_account"),
            edge("create", "out_mint", "mint_account"),
            edge("balance", "out_balance", "ui_amount"),
            edge("send", "out_account", "recipient_token_account"),
        ],
    }
    deployment = deploy(api, owner, flow, local)
    started = start(api, owner, deployment, {"inputs": {"recipient": {"B3": str(recipient)}}})
    execute(api, started["flow_run_id"])

    run = read(api, started).body
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"]["balance"] == {"D": "2.5"}
    mint = Pubkey.from_string(run["outputs"]["mint"]["B3"])
    rpc = SolanaRpc(local.url)
    assert token_balance(rpc, recipient, mint) == 2_500_000
    assert token_balance(rpc, treasury.pubkey(), mint) == 97_500_000
    info = tokens.read_mint(mint, rpc.account_info(mint))
    assert (info.decimals, info.supply, info.program) == (6, 100_000_000, TOKEN_PROGRAM_ID)
    created = run["outputs"]["recipient_token_account"]["B3"]
    assert created == str(tokens.associated_address(recipient, info))
    assert rpc.balance(recipient) == 0  # the fee payer funded the new account


def transfer_flow(**config: Any) -> dict[str, Any]:
    """`sender` (flow input) sends `amount` of `mint` to `recipient`; fee payer = sender."""
    return {
        "nodes": [
            node("sender", "flow_input", label="sender", type="pubkey"),
            node("mint", "flow_input", label="mint", type="pubkey"),
            node("recipient", "flow_input", label="recipient", type="pubkey"),
            node("amount", "flow_input", label="amount", type="decimal"),
            node("send", "transfer_token", **config),
            node("out", "flow_output", label="signature"),
        ],
        "edges": [
            edge("sender", "send", "output", "fee_payer"),
            edge("sender", "send", "output", "sender_owner"),
            edge("mint", "send", "output", "mint_account"),
            edge("recipient", "send", "output", "recipient"),
            edge("amount", "send", "output", "amount"),
            edge("send", "out", "signature"),
        ],
    }


@PROGRAMS
def test_a_wallet_gets_a_token_transfer_to_sign_under_output_instructions(
    api: Api, local: LocalSolana, program: Pubkey
) -> None:
    owner, sender = new_user(), Keypair()
    local.airdrop(sender.pubkey(), SOL)
    rpc = SolanaRpc(local.url)
    mint = make_mint(rpc, sender, 5_000, decimals=3, program=program)
    recipient = Keypair().pubkey()
    deployment = deploy(api, owner, transfer_flow(), local, output_instructions=True)
    inputs = {
        "sender": {"B3": str(sender.pubkey())},
        "mint": {"B3": str(mint)},
        "recipient": {"B3": str(recipient)},
        "amount": {"D": "1.25"},
    }
    started = start(
        api, owner, deployment, {"inputs": inputs, "action_signer": str(sender.pubkey())}
    )
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "stopped" and run["simulation"]["error"] is None, run
    tx = VersionedTransaction.from_bytes(base64.b64decode(run["transaction"]))
    signed = VersionedTransaction.populate(
        tx.message, [sender.sign_message(to_bytes_versioned(tx.message))]
    )
    rpc.confirm(rpc.send(signed), rpc.latest_blockhash()[1])
    assert token_balance(rpc, recipient, mint) == 1_250
    assert token_balance(rpc, sender.pubkey(), mint) == 3_750


@pytest.mark.parametrize(
    ("amount", "config", "mint_kind", "message"),
    [
        ("1", {}, "unknown", "does not exist on this cluster"),
        ("1", {}, "not a mint", "is not a token mint"),
        ("6", {}, "mint", "insufficient token balance"),
        ("1", {"decimals": {"U": "9"}}, "mint", "decimals 9 is not the mint's"),
        ("0.0001", {}, "mint", "more decimal places than the mint's 3"),
        ("0", {}, "mint", "must be positive"),
        ("1", {"fund_recipient": {"B": False}}, "mint", "fund_recipient is false"),
    ],
)
def test_bad_token_transfers_fail_before_anything_is_sent(
    api: Api, local: LocalSolana, amount: str, config: dict[str, Any], mint_kind: str, message: str
) -> None:
    owner = new_user()
    sender = Keypair()
    create_wallet(api, owner, sender)  # the server signs: a bad transfer would be sent
    local.airdrop(sender.pubkey(), SOL)
    rpc = SolanaRpc(local.url)
    mint = {
        "unknown": Keypair().pubkey(),
        "not a mint": sender.pubkey(),
        "mint": make_mint(rpc, sender, 5_000, decimals=3),
    }[mint_kind]
    deployment = deploy(api, owner, transfer_flow(**config), local)
    recipient = Keypair().pubkey()
    inputs = {
        "sender": {"B3": str(sender.pubkey())},
        "mint": {"B3": str(mint)},
        "recipient": {"B3": str(recipient)},
        "amount": {"D": amount},
    }
    lamports = rpc.balance(sender.pubkey())
    started = start(api, owner, deployment, {"inputs": inputs})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed", run
    assert message in run["error"], run["error"]
    assert rpc.balance(sender.pubkey()) == lamports  # no fee: nothing was sent
    assert rpc.account_info(recipient) is None


def test_the_associated_account_node_creates_once_and_then_only_answers_the_address(
    api: Api, local: LocalSolana
) -> None:
    owner, payer = new_user(), Keypair()
    wallet = create_wallet(api, owner, payer)
    local.airdrop(payer.pubkey(), SOL)
    rpc = SolanaRpc(local.url)
    mint = make_mint(rpc, payer, 1, program=TOKEN_2022_PROGRAM_ID)
    holder = Keypair().pubkey()
    flow = {
        "nodes": [
            node("payer", "wallet", wallet_id=wallet["id"]),
            node(
                "ata",
                "associated_token_account",
                owner={"B3": str(holder)},
                mint_account={"B3": str(mint)},
            ),
            node("address", "flow_output", label="address"),
            node("signature", "flow_output", label="signature"),
        ],
        "edges": [
            edge("payer", "ata", "pubkey", "fee_payer"),
            edge("ata", "address", "associated_token_account"),
            edge("ata", "signature", "signature"),
        ],
    }
    deployment = deploy(api, owner, flow, local)
    outputs = []
    for _ in range(2):
        started = start(api, owner, deployment, {})
        execute(api, started["flow_run_id"])
        run = read(api, started).body
        assert run["status"] == "succeeded", run
        outputs.append(run["outputs"])
    first, second = outputs
    assert first["address"] == second["address"]
    assert "signature" in first and "signature" not in second  # nothing sent the second time
    assert token_balance(rpc, holder, mint) == 0  # it exists, empty
