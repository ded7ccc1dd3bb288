"""Solana nodes: wallets and keys, balances, SOL transfers and memos.

A signer input takes a server wallet's public key (the `wallet` node's output), a keypair
made in the run (`generate_keypair`, B6) or any other public key (`B3`, or base58 `S`): a key
the server does not hold is an external signer, normally the action signer, whose signature
is asked for during the run or, with `output_instructions`, left for its wallet to add.

solders is imported only when one of these nodes runs, never when a flow is validated.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flowdeploy.engine.command import (
    SPACE_OPERATOR,
    Collected,
    Command,
    ConfigError,
    NodeContext,
    NodeError,
    Port,
    ReturnTransaction,
    convert_input,
    register,
)
from flowdeploy.engine.convert import (
    NULL_VALUE,
    ConversionError,
    decimal_value,
    describe,
    to_bool,
    to_decimal,
    to_string,
)
from flowdeploy.engine.ports import Field
from flowdeploy.values import B32, B64, STRING, U64, IValue

if TYPE_CHECKING:
    from solders.instruction import Instruction
    from solders.pubkey import Pubkey

    from flowdeploy.engine.graph import FlowGraph
    from flowdeploy.solana.session import SolanaSession

MAX_MEMO_BYTES = 1_000
KEY = ("pubkey",)
SIGNER = ("keypair", "pubkey")


def memo_text(value: IValue) -> str:
    """Memo text: a string of 1 to MAX_MEMO_BYTES bytes of UTF-8."""
    if value.tag != STRING or not isinstance(value.value, str):
        raise ConversionError(f"expected a string (S), got {describe(value)}")
    size = len(value.value.encode())
    if not 0 < size <= MAX_MEMO_BYTES:
        raise ConversionError(f"must be 1 to {MAX_MEMO_BYTES} bytes, got {size}")
    return value.value


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
    ctx: NodeContext,
    session: SolanaSession,
    instructions: list[Instruction],
    signer: Pubkey,
    *others: Pubkey,
) -> IValue:
    """Send one transaction (the first signer pays unless an action signer does); inside a
    flow run by `interflow_instructions`, hand the instructions to it instead."""
    from flowdeploy.solana.session import SolanaFailure, TransactionReturned

    collector = ctx.collector
    if collector is not None:
        collector.add(instructions, [signer, *others])
        raise Collected
    try:
        signature = await session.execute(
            instructions,
            [signer, *others],
            ctx.remaining_seconds,
            lambda line: ctx.log("info", line),
        )
    except TransactionReturned as returned:
        raise ReturnTransaction(returned.transaction, returned.simulation) from None
    except SolanaFailure as failure:
        raise NodeError(str(failure)) from None
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
    outputs = (Port("pubkey", types=KEY),)
    config_fields = (Field("wallet_id", "string", required=True, description="from GET /wallet"),)

    @property
    def wallet_id(self) -> str:
        return _wallet_id(self)

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
    outputs = (Port("keypair", types=("keypair",)), Port("pubkey", types=KEY))

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
    inputs = (Port("pubkey", types=KEY),)
    outputs = (Port("lamports", types=("u64",)), Port("sol", types=("decimal",)))

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


def _wallet_id(command: Command) -> str:
    """Config `wallet_id`: this service's wallet id (text), as GET /wallet lists it."""
    raw = command.config.raw("wallet_id")
    if (isinstance(raw, dict) and set(raw) <= {"U", "I"}) or isinstance(raw, int):
        raise ConfigError(
            "wallet_id",
            f"{raw} is a Space Operator wallet id; import your data with POST /data/import "
            "(which rewrites it) or use an id from GET /wallet",
        )
    wallet_id = command.config.string("wallet_id").strip()
    if not wallet_id:
        raise ConfigError("wallet_id", "is required (an id from GET /wallet)")
    return wallet_id


async def _lamports(amount: Decimal) -> int:
    from flowdeploy.solana.session import lamports_of_sol

    try:
        lamports = lamports_of_sol(amount)
    except ValueError as error:
        raise NodeError(f"input 'amount': {error}") from None
    if lamports >= 2**64:
        raise NodeError(f"input 'amount': {amount} SOL is more lamports than exist")
    return lamports


@register
class TransferSol(Command):
    """Sends `amount` SOL (a decimal, whole lamports) from the signer `from` to `to`;
    outputs the confirmed transaction's `signature`."""

    name = "transfer_sol"
    inputs = (
        Port("from", types=SIGNER),
        Port("to", types=KEY),
        Port("amount", types=("decimal",)),
    )
    outputs = (Port("signature", types=("signature",)),)

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
    inputs = (
        Port("signer", types=SIGNER),
        Port("memo", types=("string",), description="1 to 1,000 bytes", rule=memo_text),
    )
    outputs = (Port("signature", types=("signature",)),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.transaction import memo_instruction

        text = self.get(inputs, "memo")
        session = _session(ctx)
        signer = convert_input(inputs, "signer", lambda value: signer_of(value, session))
        instruction = memo_instruction(text, [signer])
        return {"signature": await _send(ctx, session, [instruction], signer)}


# -- Space Operator's definitions ------------------------------------------------------


@register
class SpaceOperatorWallet(Command):
    """The owner's wallet config `wallet_id`: `pubkey`, and `keypair` to sign with. The
    secret key never becomes a value: `keypair` carries the public key, and the run signs
    for it (a public-key-only wallet's holder is asked through a signature request)."""

    name = "wallet"
    formats = (SPACE_OPERATOR,)
    inputs = (Port("wallet", required=False, types=SIGNER, description="a key to use instead"),)
    outputs = (Port("pubkey", types=("string",)), Port("keypair", types=("keypair",)))
    config_fields = (
        Field("wallet_id", "string", required=True, description="from GET /wallet"),
        Field("public_key", "pubkey", description="the wallet's public key (informative)"),
    )

    @property
    def wallet_id(self) -> str:
        return _wallet_id(self)

    def check(self, graph: FlowGraph, node_id: str) -> None:
        _ = self.wallet_id

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.session import SolanaFailure

        session = _session(ctx)
        if self.given(inputs, "wallet") is not None:
            pubkey = convert_input(inputs, "wallet", lambda value: signer_of(value, session))
        else:
            try:
                pubkey = await session.load_wallet(self.wallet_id)
            except SolanaFailure as failure:
                raise NodeError(str(failure)) from None
        key = IValue(B32, bytes(pubkey))
        return {"pubkey": key, "keypair": key}


def _seed_keypair(phrase: str, passphrase: str) -> Any:
    """A keypair from a BIP39 seed phrase, as upstream derives it: the first 32 bytes of
    PBKDF2-HMAC-SHA512(phrase, "mnemonic" + passphrase, 2048 rounds). The phrase is not
    checked against the BIP39 word list."""
    import hashlib
    import unicodedata

    from solders.keypair import Keypair

    words = " ".join(phrase.split())
    seed = hashlib.pbkdf2_hmac(
        "sha512",
        unicodedata.normalize("NFKD", words).encode(),
        unicodedata.normalize("NFKD", "mnemonic" + passphrase).encode(),
        2048,
    )
    return Keypair.from_seed(seed[:32])


@register
class SpaceOperatorGenerateKeypair(Command):
    """A keypair: `private_key` when given (a keypair, or a public key whose holder will be
    asked to sign), else one derived from `seed` (and `passphrase`), else a random one."""

    name = "generate_keypair"
    formats = (SPACE_OPERATOR,)
    inputs = (
        Port("seed", required=False, types=("string",), description="a BIP39 phrase"),
        Port("private_key", required=False, types=SIGNER),
        Port("passphrase", required=False, types=("string",)),
        Port("check_new_account", required=False, types=("bool",), rule=to_bool),
    )
    outputs = (Port("pubkey", types=KEY), Port("keypair", types=("keypair",)))

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from solders.keypair import Keypair

        session = _session(ctx)
        given = self.given(inputs, "private_key")
        if given is not None and given.tag != B64:
            pubkey = convert_input(inputs, "private_key", pubkey_of)
            key = IValue(B32, bytes(pubkey))
            await self._check_new(ctx, session, inputs, pubkey)
            return {"pubkey": key, "keypair": key}
        if given is not None:
            pubkey = convert_input(inputs, "private_key", lambda value: signer_of(value, session))
            await self._check_new(ctx, session, inputs, pubkey)
            return {"pubkey": IValue(B32, bytes(pubkey)), "keypair": given}
        if self.given(inputs, "seed") is not None:
            phrase = convert_input(inputs, "seed", to_string)
            passphrase = (
                convert_input(inputs, "passphrase", to_string)
                if self.given(inputs, "passphrase")
                else ""
            )
            keypair = _seed_keypair(phrase, passphrase)
        else:
            keypair = Keypair()
        pubkey = session.hold(keypair)
        await self._check_new(ctx, session, inputs, pubkey)
        return {"pubkey": IValue(B32, bytes(pubkey)), "keypair": IValue(B64, bytes(keypair))}

    async def _check_new(
        self, ctx: NodeContext, session: SolanaSession, inputs: dict[str, IValue], key: Pubkey
    ) -> None:
        if not self.get(inputs, "check_new_account", False):
            return
        from flowdeploy.solana.session import SolanaFailure

        try:
            balance = await session.balance(key)
        except SolanaFailure as failure:
            raise NodeError(str(failure)) from None
        if balance > 0:
            raise NodeError("account already exists")


@register
class SpaceOperatorTransferSol(Command):
    """Sends `amount` SOL from `sender` to `recipient` (`fee_payer` pays the fee when given);
    outputs the confirmed `signature`. With `submit` false nothing is sent and `signature`
    is null."""

    name = "transfer_sol"
    formats = (SPACE_OPERATOR,)
    inputs = (
        Port("fee_payer", required=False, types=("keypair",)),
        Port("sender", types=("keypair",)),
        Port("recipient", types=KEY),
        Port("amount", types=("f64",), description="SOL, in whole lamports", rule=to_decimal),
        Port("submit", required=False, types=("bool",), rule=to_bool),
    )
    outputs = (Port("signature", types=("signature",)),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from solders.system_program import TransferParams, transfer

        amount = self.get(inputs, "amount")
        lamports = await _lamports(amount)
        if not self.get(inputs, "submit", True):
            return {"signature": NULL_VALUE}
        session = _session(ctx)
        sender = convert_input(inputs, "sender", lambda value: signer_of(value, session))
        recipient = convert_input(inputs, "recipient", pubkey_of)
        signers = [sender]
        if self.given(inputs, "fee_payer") is not None:
            payer = convert_input(inputs, "fee_payer", lambda value: signer_of(value, session))
            if payer != sender:
                signers.insert(0, payer)
        instruction = transfer(
            TransferParams(from_pubkey=sender, to_pubkey=recipient, lamports=lamports)
        )
        return {"signature": await _send(ctx, session, [instruction], *signers)}
