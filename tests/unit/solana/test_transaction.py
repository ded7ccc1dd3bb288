"""Transaction assembly against LiteSVM: fees, the identity memo, signing, size."""

from __future__ import annotations

import base64

import pytest
from solders.compute_budget import ID as COMPUTE_BUDGET
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from flowdeploy.solana import MAX_TRANSACTION_SIZE
from flowdeploy.solana.transaction import (
    MAX_COMPUTE_UNIT_LIMIT,
    MEMO_PROGRAM,
    ComputeBudget,
    Fee,
    TransactionInvalid,
    assemble,
    explain_failure,
    memo_instruction,
    new_identity,
    parse_identity_memo,
    sign,
    signers_of,
    unit_limit_for,
)

SOL = 1_000_000_000


@pytest.fixture
def svm() -> LiteSVM:
    return LiteSVM()


def _funded(svm: LiteSVM, lamports: int = 10 * SOL) -> Keypair:
    keypair = Keypair()
    svm.airdrop(keypair.pubkey(), lamports)
    return keypair


def _pay(source: Pubkey, target: Pubkey, lamports: int):
    return transfer(TransferParams(from_pubkey=source, to_pubkey=target, lamports=lamports))


def test_transfer_with_fees_lands_and_moves_exact_amounts(svm: LiteSVM) -> None:
    payer, target = _funded(svm), Keypair().pubkey()
    fee_a, fee_b = Keypair().pubkey(), Keypair().pubkey()
    message = assemble(
        [_pay(payer.pubkey(), target, 2 * SOL)],
        fee_payer=payer.pubkey(),
        blockhash=svm.latest_blockhash(),
        fees=[Fee(fee_a, 1_000_000), Fee(fee_b, 2_000_000)],
    )
    result = svm.send_transaction(sign(message, {payer.pubkey(): payer}))
    assert not hasattr(result, "err"), result
    assert svm.get_balance(target) == 2 * SOL
    assert svm.get_balance(fee_a) == 1_000_000
    assert svm.get_balance(fee_b) == 2_000_000
    assert svm.get_balance(payer.pubkey()) == 10 * SOL - 2 * SOL - 3_000_000 - 5_000


def test_identity_memo_follows_the_specification(svm: LiteSVM) -> None:
    signer, identity = _funded(svm), Keypair()
    target, fee = Keypair().pubkey(), Keypair().pubkey()
    ident = new_identity(identity)
    message = assemble(
        [_pay(signer.pubkey(), target, SOL)],
        fee_payer=signer.pubkey(),
        blockhash=svm.latest_blockhash(),
        fees=[Fee(fee, 1_000_000)],
        identity=ident,
    )
    keys = list(message.account_keys)
    programs = [keys[ix.program_id_index] for ix in message.instructions]
    # the flow's transfer, the fee transfer, then the memo, last
    assert programs == [SYSTEM_PROGRAM, SYSTEM_PROGRAM, MEMO_PROGRAM]
    memo = message.instructions[2]
    assert list(memo.accounts) == []  # no accounts: nobody else has to sign
    text = bytes(memo.data).decode()
    parsed = parse_identity_memo(text)  # verifies the signature of the reference's bytes
    assert parsed.identity == identity.pubkey()
    assert text == (
        f"solana-action:{identity.pubkey()}:{parsed.reference}:"
        f"{identity.sign_message(bytes(parsed.reference))}"
    )
    # identity and reference: read-only non-signers of the first non-memo instruction
    first = [keys[i] for i in message.instructions[0].accounts]
    assert first[-2:] == [identity.pubkey(), parsed.reference]
    for key in (identity.pubkey(), parsed.reference):
        index = keys.index(key)
        assert not message.is_signer(index)
        assert not message.is_maybe_writable(index)
    assert signers_of(message) == [signer.pubkey()]  # the identity does not sign the transaction
    result = svm.send_transaction(sign(message, {signer.pubkey(): signer}))
    assert not hasattr(result, "err"), result
    assert any("Memo" in line for line in result.logs())


def test_references_are_fresh_per_transaction() -> None:
    identity = Keypair()
    assert new_identity(identity).reference != new_identity(identity).reference


def test_a_forged_memo_does_not_verify() -> None:
    identity, other = Keypair(), Keypair()
    genuine = new_identity(identity)
    wrong = other.sign_message(bytes(genuine.reference))
    forged = f"solana-action:{identity.pubkey()}:{genuine.reference}:{wrong}"
    with pytest.raises(ValueError, match="not the identity's signature"):
        parse_identity_memo(forged)
    with pytest.raises(ValueError, match="not an action identity memo"):
        parse_identity_memo("hello")


def test_an_unsigned_slot_is_zeros_and_the_wallet_can_sign_it_later(svm: LiteSVM) -> None:
    wallet, server = _funded(svm), _funded(svm)
    target = Keypair().pubkey()
    message = assemble(
        [_pay(wallet.pubkey(), target, SOL), memo_instruction("hi", [server.pubkey()])],
        fee_payer=wallet.pubkey(),
        blockhash=svm.latest_blockhash(),
    )
    partial = sign(message, {server.pubkey(): server})
    wire = base64.b64encode(bytes(partial)).decode()
    decoded = VersionedTransaction.from_bytes(base64.b64decode(wire))
    assert decoded.message.account_keys[0] == wallet.pubkey()  # the fee payer
    assert decoded.signatures[0] == Signature.default()
    assert decoded.signatures[1] == server.sign_message(to_bytes_versioned(message))
    # as it is, it cannot land
    assert hasattr(svm.send_transaction(decoded), "err")
    signed = VersionedTransaction.populate(
        decoded.message,
        [wallet.sign_message(to_bytes_versioned(decoded.message)), decoded.signatures[1]],
    )
    result = svm.send_transaction(signed)
    assert not hasattr(result, "err"), result
    assert svm.get_balance(target) == SOL


def test_a_transaction_over_1232_bytes_is_refused() -> None:
    payer = Keypair()
    message = assemble(
        [_pay(payer.pubkey(), Keypair().pubkey(), 1)],
        fee_payer=payer.pubkey(),
        blockhash=Hash.new_unique(),
        fees=[Fee(Keypair().pubkey(), 1_000_000) for _ in range(30)],
    )
    with pytest.raises(TransactionInvalid, match=f"at most {MAX_TRANSACTION_SIZE}"):
        sign(message, {payer.pubkey(): payer})


def test_the_identity_needs_a_non_memo_instruction() -> None:
    payer = Keypair()
    with pytest.raises(TransactionInvalid, match="neither a memo nor a compute-budget"):
        assemble(
            [memo_instruction("only a memo", [payer.pubkey()])],
            fee_payer=payer.pubkey(),
            blockhash=Hash.new_unique(),
            identity=new_identity(Keypair()),
        )
    with pytest.raises(TransactionInvalid, match="at least one instruction"):
        assemble([], fee_payer=payer.pubkey(), blockhash=Hash.new_unique())


def test_failures_are_explained_in_terms_of_the_transaction() -> None:
    payer, target, fee = Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey()
    message = assemble(
        [_pay(payer, target, 5)],
        fee_payer=payer,
        blockhash=Hash.new_unique(),
        fees=[Fee(fee, 10_000)],
    )
    keys = list(message.account_keys)
    rent = explain_failure(
        {"InsufficientFundsForRent": {"account_index": keys.index(fee)}}, message
    )
    assert f"transfer of 10,000 lamports to {fee} fails" in rent
    assert "890,880" in rent
    funds = explain_failure({"InstructionError": [0, {"Custom": 1}]}, message)
    assert funds == (
        f"instruction 0 (transfer of 5 lamports from {payer} to {target}) fails: "
        f"{payer} has insufficient funds"
    )
    assert "has no account" in explain_failure("AccountNotFound", message)
    assert "BlockhashNotFound" in explain_failure("BlockhashNotFound", message)


def test_compute_budget_instructions_come_first_and_the_identity_skips_them() -> None:
    payer, identity, fee = Keypair(), new_identity(Keypair()), Fee(Keypair().pubkey(), 1_000_000)
    target = Keypair().pubkey()
    pay = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=target, lamports=5))
    message = assemble(
        [pay],
        fee_payer=payer.pubkey(),
        blockhash=Hash.new_unique(),
        fees=[fee],
        identity=identity,
        budget=ComputeBudget(unit_price=1_234, unit_limit=56_789),
    )
    keys = list(message.account_keys)
    programs = [keys[ix.program_id_index] for ix in message.instructions]
    assert programs == [
        COMPUTE_BUDGET,
        COMPUTE_BUDGET,
        SYSTEM_PROGRAM,
        SYSTEM_PROGRAM,
        MEMO_PROGRAM,
    ]
    price, limit = (bytes(ix.data) for ix in message.instructions[:2])
    assert price == bytes(set_compute_unit_price(1_234).data)
    assert limit == bytes(set_compute_unit_limit(56_789).data)
    assert [ix.accounts for ix in message.instructions[:2]] == [b"", b""]
    carried = [keys[i] for i in message.instructions[2].accounts]
    assert carried == [payer.pubkey(), target, identity.identity, identity.reference]


def test_compute_budget_instructions_a_flow_has_are_not_added_twice() -> None:
    payer = Keypair()
    own_limit = set_compute_unit_limit(300_000)
    memo = memo_instruction("hi", [payer.pubkey()])
    message = assemble(
        [own_limit, memo],
        fee_payer=payer.pubkey(),
        blockhash=Hash.new_unique(),
        budget=ComputeBudget(unit_price=7),
    )
    datas = [bytes(ix.data) for ix in message.instructions]
    assert datas == [bytes(set_compute_unit_price(7).data), bytes(own_limit.data), b"hi"]


def test_the_unit_limit_is_the_simulated_units_with_a_stated_margin() -> None:
    assert unit_limit_for(1_000, 3) == 1_000 + 200 + 1_000
    assert unit_limit_for(1_001, 3) == 1_001 + 201 + 1_000  # the margin rounds up
    assert unit_limit_for(1_300_000, 1) == MAX_COMPUTE_UNIT_LIMIT
    assert unit_limit_for(None, 3) == 600_000  # no usable simulation: 200,000 each
    assert unit_limit_for(0, 9) == MAX_COMPUTE_UNIT_LIMIT
