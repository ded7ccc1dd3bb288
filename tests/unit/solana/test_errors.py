"""One-line texts for transaction errors in the RPC's JSON shape."""

from __future__ import annotations

import pytest

from flowdeploy.solana.errors import describe


@pytest.mark.parametrize(
    ("err", "text"),
    [
        ("BlockhashNotFound", "Blockhash not found"),
        ("WouldExceedMaxBlockCostLimit", "would exceed max block cost limit"),
        (
            {"InstructionError": [2, {"Custom": 6001}]},
            "Error processing Instruction 2: custom program error: 0x1771",
        ),
        (
            {"InstructionError": [0, "MissingRequiredSignature"]},
            "Error processing Instruction 0: missing required signature for instruction",
        ),
        (
            {"InsufficientFundsForRent": {"account_index": 2}},
            "Transaction results in an account (2) with insufficient funds for rent",
        ),
        ({"Unheard": {"of": 1}}, 'unheard: {"of": 1}'),
        (["odd"], '["odd"]'),
    ],
)
def test_describe(err: object, text: str) -> None:
    assert describe(err) == text
