"""Solana nodes: wallets and keys, balances, SOL transfers and memos.

A signer input takes a server wallet's public key (the `wallet` node's output), a keypair
made in the run (`generate_keypair`, B6) or any other public key (`B3`, or base58 `S`): a key
the server does not hold is an external signer, normally the action signer, whose signature
is asked for during the run or, with `output_instructions`, left for its wallet to add.

solders is imported only when one of these nodes runs, never when a flow is validated.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from flowdeploy.engine.command import (
    Command,
    ConfigError,
    NodeContext,
    NodeError,
    Port,
    ReturnTransaction,
    convert_input,
    register,
)
from flowdeploy.engine.convert import ConversionError, decimal_value, describe, to_decimal
from flowdeploy.values import B32, B64, STRING, U64, IValue

if TYPE_CHECKING:
    from solders.instruction import Instruction
    from solders.pubkey import Pubkey

    from flowdeploy.engine.graph import FlowGraph
    from flowdeploy.solana.session import SolanaSession

MAX_MEMO_BYTES = 1_000


def pubkey_of(value: IValue) -> Pubkey:
    """A public key from B3, a base58 S, or a B6 keypair (its public half)."""
    from solders.pubkey import Pubkey

    payload = value.value
    if value.tag == B32 and isinstance(payload, bytes):
        return Pubkey.from_bytes(payload)
    if value.tag == B64 and isinstance(payload, bytes):
        return Pubkey.from_bytes(payload[32:])
    if value.tag == STRING and isinstance(payload, str):
        try:
            return Pubkey.from_string(payload.strip())
        except ValueError:
            pass
    raise ConversionError(f"expected a public key (B3 or base58 S), got {describe(value)}")


def signer_of(value: IValue, session: SolanaSession) -> Pubkey:
    """The signing key a signer input names; a B6 keypair is held for the run."""
    from solders.keypair import Keypair

    if value.tag == B64 and isinstance(value.value, bytes):
        try:
            keypair = Keypair.from_bytes(value.value)
        except ValueError:
            raise ConversionError(
                "expected a keypair (B6: 32-byte secret then its public key); the public "
                "half does not match the secret"
            ) from None
        return session.hold(keypair)
    return pubkey_of(value)


async def _send(
    ctx: NodeContext, session: SolanaSession, instructions: list[Instruction], signer: Pubkey
) -> IValue:
    from flowdeploy.solana.session import SolanaFailure, TransactionReturned

    try:
        signature = await session.execute(instructions, [signer], ctx.remaining_seconds)
    except TransactionReturned as returned:
        raise ReturnTransaction(returned.transaction, returned.simulation) from None
    except SolanaFailure as failure:
        raise NodeError(str(failure)) from None
    ctx.log("info", f"transaction {signature} confirmed")
    return IValue(B64, bytes(signature))


def _session(ctx: NodeContext) -> SolanaSession:
    from flowdeploy.solana.session import SolanaFailure

    try:
        session = ctx.solana
    except SolanaFailure as failure:
        raise NodeError(str(failure)) from None
    if session is None:
        raise NodeError("this run has no Solana network")
    return session


@register
class Wallet(Command):
    """The deployment owner's server wallet `wallet_id` (from `GET /wallet`): outputs its
    `pubkey`, and the run can sign for that key."""

    name = "wallet"
    outputs = (Port("pubkey"),)

    @property
    def wallet_id(self) -> str:
        wallet_id = self.config.string("wallet_id").strip()
        if not wallet_id:
            raise ConfigError("wallet_id", "is required (an id from GET /wallet)")
        return wallet_id

    def check(self, graph: FlowGraph, node_id: str) -> None:
        _ = self.wallet_id

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.session import SolanaFailure

        session = _session(ctx)
        try:
            pubkey = await session.load_wallet(self.wallet_id)
        except SolanaFailure as failure:
            raise NodeError(str(failure)) from None
        return {"pubkey": IValue(B32, bytes(pubkey))}


@register
class GenerateKeypair(Command):
    """A new random keypair: `keypair` (B6, secret then public key) and `pubkey` (B3); the run
    can sign for it."""

    name = "generate_keypair"
    outputs = (Port("keypair"), Port("pubkey"))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from solders.keypair import Keypair

        session = _session(ctx)
        keypair = Keypair()
        pubkey = session.hold(keypair)
        return {"keypair": IValue(B64, bytes(keypair)), "pubkey": IValue(B32, bytes(pubkey))}


@register
class GetBalance(Command):
    """The balance of `pubkey` on the run's cluster: `lamports` (U) and `sol` (D)."""

    name = "get_balance"
    inputs = (Port("pubkey"),)
    outputs = (Port("lamports"), Port("sol"))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana import LAMPORTS_PER_SOL
        from flowdeploy.solana.session import SolanaFailure

        pubkey = convert_input(inputs, "pubkey", pubkey_of)
        session = _session(ctx)
        try:
            lamports = await session.balance(pubkey)
        except SolanaFailure as failure:
            raise NodeError(str(failure)) from None
        sol = Decimal(lamports) / LAMPORTS_PER_SOL
        return {"lamports": IValue(U64, lamports), "sol": decimal_value(sol)}


@register
class TransferSol(Command):
    """Sends `amount` SOL (a decimal, whole lamports) from the signer `from` to `to`;
    outputs the confirmed transaction's `signature`."""

    name = "transfer_sol"
    inputs = (Port("from"), Port("to"), Port("amount"))
    outputs = (Port("signature"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from solders.system_program import TransferParams, transfer

        from flowdeploy.solana.session import lamports_of_sol

        session = _session(ctx)
        source = convert_input(inputs, "from", lambda value: signer_of(value, session))
        target = convert_input(inputs, "to", pubkey_of)
        amount = convert_input(inputs, "amount", to_decimal)
        try:
            lamports = lamports_of_sol(amount)
        except ValueError as error:
            raise NodeError(f"input 'amount': {error}") from None
        if lamports >= 2**64:
            raise NodeError(f"input 'amount': {amount} SOL is more lamports than exist")
        instruction = transfer(
            TransferParams(from_pubkey=source, to_pubkey=target, lamports=lamports)
        )
        return {"signature": await _send(ctx, session, [instruction], source)}


@register
class Memo(Command):
    """Writes `memo` (UTF-8 text) on chain with the SPL Memo program, signed by `signer`;
    outputs the confirmed transaction's `signature`."""

    name = "memo"
    inputs = (Port("signer"), Port("memo"))
    outputs = (Port("signature"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.transaction import memo_instruction

        session = _session(ctx)
        signer = convert_input(inputs, "signer", lambda value: signer_of(value, session))
        memo = inputs["memo"]
        if memo.tag != STRING or not isinstance(memo.value, str):
            raise NodeError(f"input 'memo': expected a string (S), got {describe(memo)}")
        size = len(memo.value.encode())
        if not 0 < size <= MAX_MEMO_BYTES:
            raise NodeError(f"input 'memo': must be 1 to {MAX_MEMO_BYTES} bytes, got {size}")
        instruction = memo_instruction(memo.value, [signer])
        return {"signature": await _send(ctx, session, [instruction], signer)}
