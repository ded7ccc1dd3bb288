"""`same_message_logic`: which changes a wallet may make to a message it was asked to sign.

The first cases are upstream's own (`crates/flow-lib-solana/src/utils.rs` tests), built the
same way; the rest use real transfers as a wallet would change them.
"""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, CompiledInstruction, Instruction
from solders.keypair import Keypair
from solders.message import (
    Message,
    MessageAddressTableLookup,
    MessageHeader,
    MessageV0,
    to_bytes_versioned,
)
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from flowdeploy.solana.message_logic import (
    COMPUTE_BUDGET_PROGRAM,
    LIGHTHOUSE_PROGRAM,
    SWIG_PROGRAM,
    MessageChanged,
    same_message_logic,
)
from flowdeploy.solana.transaction import MEMO_PROGRAM

FEE_PAYER = Pubkey.from_string("11111111111111111111111111111112")
PROGRAM = Pubkey.from_string("11111111111111111111111111111113")
LOOKUP_TABLE = Pubkey.from_string("11111111111111111111111111111114")
OTHER = Pubkey.from_string("11111111111111111111111111111115")
EXTRA_SIGNER = Pubkey.from_string("11111111111111111111111111111116")


def v0(
    header: tuple[int, int, int],
    keys: list[Pubkey],
    instructions: list[tuple[int, list[int], bytes]],
    lookups: list[MessageAddressTableLookup] | None = None,
) -> bytes:
    message = MessageV0(
        MessageHeader(*header),
        keys,
        Hash.default(),
        [CompiledInstruction(p, data, bytes(accounts)) for p, accounts, data in instructions],
        lookups or [],
    )
    return to_bytes_versioned(message)


def changed(old: bytes, new: bytes) -> str:
    with pytest.raises(MessageChanged) as raised:
        same_message_logic(old, new)
    return str(raised.value)


# -- upstream's cases -------------------------------------------------------------------


def test_a_rewritten_swig_instruction_is_refused() -> None:
    old = v0((1, 0, 1), [FEE_PAYER, SWIG_PROGRAM], [(1, [], b"\x01")])
    new = v0((1, 0, 1), [FEE_PAYER, SWIG_PROGRAM], [(1, [], b"\x02")])
    assert "different instruction data" in changed(old, new)


def test_lookup_accounts_are_compared_by_identity_after_a_static_key_is_added() -> None:
    lookup = MessageAddressTableLookup(LOOKUP_TABLE, bytes([7]), b"")
    old = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [2], b"\x01")], [lookup])
    new = v0((1, 0, 2), [FEE_PAYER, PROGRAM, OTHER], [(1, [3], b"\x01")], [lookup])
    assert bytes(same_message_logic(old, new).instructions[0].accounts) == bytes([3])


def test_another_lookup_account_is_refused() -> None:
    lookup = MessageAddressTableLookup(LOOKUP_TABLE, bytes([7, 8]), b"")
    old = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [2], b"\x01")], [lookup])
    new = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [3], b"\x01")], [lookup])
    assert "different account inputs for instruction 0" in changed(old, new)


def test_a_lighthouse_guard_naming_the_signer_is_allowed() -> None:
    old = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [], b"\x01")])
    new = v0(
        (1, 0, 2),
        [FEE_PAYER, PROGRAM, LIGHTHOUSE_PROGRAM],
        [(1, [], b"\x01"), (2, [0], b"\x01")],
    )
    same_message_logic(old, new)


def test_a_lighthouse_guard_naming_an_original_account_is_allowed() -> None:
    old = v0((1, 0, 1), [FEE_PAYER, LOOKUP_TABLE, PROGRAM], [(2, [1], b"\x01")])
    new = v0(
        (1, 0, 2),
        [FEE_PAYER, LOOKUP_TABLE, PROGRAM, LIGHTHOUSE_PROGRAM],
        [(2, [1], b"\x01"), (3, [1], b"\x01")],
    )
    same_message_logic(old, new)


def test_a_lighthouse_guard_adding_a_signer_is_refused() -> None:
    old = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [], b"\x01")])
    new = v0(
        (2, 0, 2),
        [FEE_PAYER, EXTRA_SIGNER, PROGRAM, LIGHTHOUSE_PROGRAM],
        [(2, [], b"\x01"), (3, [1], b"\x01")],
    )
    assert "different num_required_signatures" in changed(old, new)


def test_an_unknown_compute_budget_instruction_is_allowed() -> None:
    old = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [], b"\x01")])
    new = v0(
        (1, 0, 2),
        [FEE_PAYER, PROGRAM, COMPUTE_BUDGET_PROGRAM],
        [(2, [], bytes([9, 1, 2, 3, 4])), (1, [], b"\x01")],
    )
    same_message_logic(old, new)


def test_a_memo_naming_the_signer_is_allowed() -> None:
    old = v0((1, 0, 1), [FEE_PAYER, PROGRAM], [(1, [], b"\x01")])
    new = v0(
        (1, 0, 2),
        [FEE_PAYER, PROGRAM, MEMO_PROGRAM],
        [(1, [], b"\x01"), (2, [0], b"wallet memo")],
    )
    same_message_logic(old, new)


# -- real transfers, as wallets change them --------------------------------------------


def price(micro_lamports: int) -> Instruction:
    return Instruction(
        COMPUTE_BUDGET_PROGRAM, bytes([3]) + micro_lamports.to_bytes(8, "little"), []
    )


def limit(units: int) -> Instruction:
    return Instruction(COMPUTE_BUDGET_PROGRAM, bytes([2]) + units.to_bytes(4, "little"), [])


PAYER, RECIPIENT = Keypair().pubkey(), Keypair().pubkey()
BLOCKHASH = Hash.new_unique()


def pay(lamports: int, *before: Instruction, payer: Pubkey = PAYER) -> bytes:
    send = transfer(TransferParams(from_pubkey=payer, to_pubkey=RECIPIENT, lamports=lamports))
    return to_bytes_versioned(MessageV0.try_compile(payer, [*before, send], [], BLOCKHASH))


def test_a_wallet_that_adds_a_compute_unit_limit_and_price_keeps_the_logic() -> None:
    new = pay(1_000, limit(200_000), price(5_000))
    assert to_bytes_versioned(same_message_logic(pay(1_000), new)) == new


def test_a_wallet_that_retunes_compute_budget_keeps_the_logic() -> None:
    same_message_logic(pay(1_000, price(1)), pay(1_000, price(50_000), limit(300_000)))


@pytest.mark.parametrize(
    ("wallet_added", "reason"),
    [
        (price(1_000_001), "different business instructions count"),
        (limit(1_400_001), "different business instructions count"),
    ],
)
def test_compute_budget_beyond_upstreams_limits_is_refused(
    wallet_added: Instruction, reason: str
) -> None:
    assert reason in changed(pay(1_000), pay(1_000, wallet_added))


def test_another_amount_is_refused() -> None:
    assert "different instruction data 0" in changed(pay(1_000), pay(2_000))


def test_another_fee_payer_is_refused() -> None:
    assert changed(pay(1_000), pay(1_000, payer=Keypair().pubkey())) == "different fee payer"


def test_another_blockhash_is_refused() -> None:
    send = transfer(TransferParams(from_pubkey=PAYER, to_pubkey=RECIPIENT, lamports=1_000))
    other = to_bytes_versioned(MessageV0.try_compile(PAYER, [send], [], Hash.new_unique()))
    assert changed(pay(1_000), other) == "different blockhash"


def test_an_added_transfer_is_refused() -> None:
    drain = transfer(TransferParams(from_pubkey=PAYER, to_pubkey=OTHER, lamports=10**9))
    assert "different business instructions count" in changed(pay(1_000), pay(1_000, drain))


def test_a_memo_naming_an_account_of_the_transaction_is_refused() -> None:
    same_message_logic(pay(1_000), pay(1_000, Instruction(MEMO_PROGRAM, b"hi", [])))
    on_recipient = Instruction(MEMO_PROGRAM, b"hi", [AccountMeta(RECIPIENT, False, False)])
    assert "business instructions count" in changed(pay(1_000), pay(1_000, on_recipient))


def test_the_identity_memo_stays_an_instruction_of_a_changed_message() -> None:
    """Upstream counts the original's own memo as a wallet addition in the new message, so
    it refuses every changed message that carries an identity memo; here the memo stays."""
    memo = Instruction(MEMO_PROGRAM, b"solana-action:identity:reference:signature", [])
    assert to_bytes_versioned(same_message_logic(pay(1_000, memo), pay(1_000, memo))) == pay(
        1_000, memo
    )
    same_message_logic(pay(1_000, memo), pay(1_000, limit(200_000), price(5), memo))
    assert "different business instructions count" in changed(pay(1_000, memo), pay(1_000))
    other = Instruction(MEMO_PROGRAM, b"solana-action:identity:other:signature", [])
    assert "different business instructions count" in changed(pay(1_000, memo), pay(1_000, other))


def test_a_landed_transaction_may_have_a_newer_blockhash() -> None:
    send = transfer(TransferParams(from_pubkey=PAYER, to_pubkey=RECIPIENT, lamports=1_000))
    newer = to_bytes_versioned(MessageV0.try_compile(PAYER, [send], [], Hash.new_unique()))
    same_message_logic(pay(1_000), newer, same_blockhash=False)
    other = to_bytes_versioned(
        MessageV0.try_compile(
            PAYER,
            [transfer(TransferParams(from_pubkey=PAYER, to_pubkey=OTHER, lamports=1_000))],
            [],
            Hash.new_unique(),
        )
    )
    with pytest.raises(MessageChanged, match="different account inputs for instruction 0"):
        same_message_logic(pay(1_000), other, same_blockhash=False)


def test_a_legacy_message_or_garbage_is_refused() -> None:
    send = transfer(TransferParams(from_pubkey=PAYER, to_pubkey=RECIPIENT, lamports=1_000))
    legacy = bytes(Message.new_with_blockhash([send], PAYER, BLOCKHASH))
    assert changed(pay(1_000), legacy) == "only V0 message is supported"
    assert "new_msg is not a transaction message" in changed(pay(1_000), b"\x80garbage")
