"""What a browser wallet does to a transaction it is asked to sign, for tests that play one."""

from __future__ import annotations

from solders.instruction import AccountMeta, Instruction
from solders.message import MessageV0

from flowdeploy.solana.message_logic import COMPUTE_BUDGET_PROGRAM


def with_compute_budget(message: MessageV0, limit: int, price: int) -> MessageV0:
    """The message with the wallet's own compute-unit limit and price first, replacing any
    compute-budget instruction it had (as Phantom does with its priority fee)."""
    keys = message.account_keys
    kept = [
        Instruction(
            keys[ix.program_id_index],
            bytes(ix.data),
            [
                AccountMeta(keys[i], message.is_signer(i), message.is_maybe_writable(i))
                for i in bytes(ix.accounts)  # static keys only: our messages use no lookups
            ],
        )
        for ix in message.instructions
        if keys[ix.program_id_index] != COMPUTE_BUDGET_PROGRAM
    ]
    budget = [
        Instruction(COMPUTE_BUDGET_PROGRAM, bytes([2]) + limit.to_bytes(4, "little"), []),
        Instruction(COMPUTE_BUDGET_PROGRAM, bytes([3]) + price.to_bytes(8, "little"), []),
    ]
    return MessageV0.try_compile(keys[0], budget + kept, [], message.recent_blockhash)
