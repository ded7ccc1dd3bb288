"""One run's Solana side: its cluster, the keys the server holds, and each transaction's
way from node instructions to a confirmed signature (or, with `output_instructions`, to the
caller's wallet).

A run talks only to its deployment's `solana_network.url`. Keys come from the deployment
owner's server wallets (decrypted only here, only when a `wallet` node runs) and from
keypairs produced inside the run. A signature the server cannot make (the action signer's,
or any bare public key) is asked for through a signature request the run waits on.
Transactions of one run are built and sent one at a time, so at most one signature request
is open per run.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ParamSpec, Protocol, TypeVar

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from flowdeploy.solana import LAMPORTS_PER_SOL
from flowdeploy.solana import transaction as tx
from flowdeploy.solana.rpc import RpcError, SolanaRpc, TransactionFailed

# Kept back from the run's remaining time for sending and confirming after a signature.
SEND_MARGIN_SECONDS = 10.0
CONFIRM_SECONDS = 60.0

_P = ParamSpec("_P")
_R = TypeVar("_R")


class SolanaFailure(Exception):
    """A Solana step of a node failed; the message says which and why."""


class TransactionReturned(Exception):
    """`output_instructions`: the transaction goes back to the caller instead of the chain."""

    def __init__(self, transaction: str) -> None:
        super().__init__("the transaction is returned for the action signer to sign")
        self.transaction = transaction


class SignatureBroker(Protocol):
    """Asks a key holder outside the server for a signature of `message` and waits."""

    async def request_signature(
        self, pubkey: Pubkey, message: bytes, timeout: float
    ) -> Signature: ...


class WalletAccess(Protocol):
    """The deployment owner's server wallets."""

    def open(self, wallet_id: str) -> tuple[Pubkey, Keypair | None]:
        """The wallet's public key, and its keypair when the server holds the secret."""
        ...

    def keypair_for_pubkey(self, pubkey: Pubkey) -> Keypair | None: ...


@dataclass(frozen=True, slots=True)
class SolanaSettings:
    """What a run's deployment and start say about Solana."""

    url: str
    cluster: str
    fees: tuple[tx.Fee, ...] = ()
    action_identity: Pubkey | None = None
    action_signer: Pubkey | None = None
    output_instructions: bool = False
    signature_timeout: float = 60.0


class SolanaSession:
    def __init__(
        self,
        settings: SolanaSettings,
        rpc: SolanaRpc,
        wallets: WalletAccess,
        broker: SignatureBroker,
    ) -> None:
        self.settings = settings
        self.rpc = rpc
        self.wallets = wallets
        self.broker = broker
        self.keypairs: dict[Pubkey, Keypair] = {}
        self._lock = asyncio.Lock()
        self._identity: Keypair | None = None  # decrypted once per run, on first use

    def hold(self, keypair: Keypair) -> Pubkey:
        """Let the run sign with `keypair` (a generated or imported key)."""
        self.keypairs[keypair.pubkey()] = keypair
        return keypair.pubkey()

    async def load_wallet(self, wallet_id: str) -> Pubkey:
        """The owner's wallet `wallet_id`: its public key; the run can sign for it when the
        server holds its secret (decrypted here), else its holder is asked."""
        pubkey, keypair = await asyncio.to_thread(self.wallets.open, wallet_id)
        return self.hold(keypair) if keypair is not None else pubkey

    async def balance(self, pubkey: Pubkey) -> int:
        return await self._rpc(self.rpc.balance, pubkey)

    async def execute(
        self, instructions: Sequence[Instruction], signers: Sequence[Pubkey], remaining: float
    ) -> Signature:
        """Build, sign, send and confirm one transaction of `instructions`; its signature.

        With `output_instructions` nothing is sent: TransactionReturned carries the
        transaction, signed by every key the server holds and by no other.
        """
        async with self._lock:
            message, last_valid = await self._build(instructions, signers)
            unsigned = self._sign(message, {})
            await self._simulate(unsigned, message)
            if self.settings.output_instructions:
                raise TransactionReturned(base64.b64encode(bytes(unsigned)).decode())
            signatures = await self._collect_signatures(message, remaining)
            signed = self._sign(message, signatures)
            signature = await self._rpc(self.rpc.send, signed)
            await self._confirm(signature, last_valid, remaining)
            return signature

    async def _build(
        self, instructions: Sequence[Instruction], signers: Sequence[Pubkey]
    ) -> tuple[MessageV0, int]:
        """The message and the last block height at which its blockhash is valid."""
        settings = self.settings
        fee_payer = settings.action_signer or (signers[0] if signers else None)
        if fee_payer is None:
            raise SolanaFailure("the transaction has no fee payer: give an action_signer")
        identity = None
        if settings.action_identity is not None and settings.action_signer is not None:
            identity = tx.new_identity(await self._identity_keypair(settings.action_identity))
        blockhash, last_valid = await self._rpc(self.rpc.latest_blockhash)
        try:
            message = tx.assemble(
                instructions,
                fee_payer=fee_payer,
                blockhash=blockhash,
                fees=settings.fees,
                identity=identity,
            )
        except tx.TransactionInvalid as error:
            raise SolanaFailure(str(error)) from None
        return message, last_valid

    async def _identity_keypair(self, identity: Pubkey) -> Keypair:
        if self._identity is None:
            keypair = await asyncio.to_thread(self.wallets.keypair_for_pubkey, identity)
            if keypair is None:
                raise SolanaFailure(
                    f"the deployment's action_identity {identity} is not one of its owner's wallets"
                )
            self._identity = keypair
        return self._identity

    def _sign(
        self, message: MessageV0, signatures: dict[Pubkey, Signature]
    ) -> VersionedTransaction:
        try:
            return tx.sign(message, self.keypairs, signatures)
        except tx.TransactionInvalid as error:
            raise SolanaFailure(str(error)) from None

    async def _simulate(self, transaction: VersionedTransaction, message: MessageV0) -> None:
        simulation = await self._rpc(self.rpc.simulate, transaction)
        if simulation.err is not None:
            reason = tx.explain_failure(simulation.err, message, simulation.logs)
            raise SolanaFailure(f"the transaction would fail, nothing was sent: {reason}")

    async def _collect_signatures(
        self, message: MessageV0, remaining: float
    ) -> dict[Pubkey, Signature]:
        signed_bytes = tx.message_bytes(message)
        signatures: dict[Pubkey, Signature] = {}
        for key in tx.signers_of(message):
            if key in self.keypairs:
                continue
            timeout = min(self.settings.signature_timeout, remaining - SEND_MARGIN_SECONDS)
            if timeout <= 0:
                raise SolanaFailure(f"no time is left in the run to ask {key} for a signature")
            signature = await self.broker.request_signature(key, signed_bytes, timeout)
            if not signature.verify(key, signed_bytes):  # the broker checks too; never send it
                raise SolanaFailure(f"the signature submitted for {key} does not verify")
            signatures[key] = signature
        return signatures

    async def _confirm(self, signature: Signature, last_valid: int, remaining: float) -> None:
        timeout = max(1.0, min(CONFIRM_SECONDS, remaining - 1.0))
        try:
            await asyncio.to_thread(self.rpc.confirm, signature, last_valid, timeout=timeout)
        except TransactionFailed as failure:
            raise SolanaFailure(f"on chain: {failure}") from None
        except RpcError as error:
            raise SolanaFailure(
                f"transaction {signature} was sent but not confirmed: {error}"
            ) from None

    async def _rpc(self, call: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except RpcError as error:
            raise SolanaFailure(str(error)) from None


def lamports_of_sol(amount: Decimal) -> int:
    """SOL as lamports; ValueError unless positive and a whole number of lamports."""
    lamports = amount * LAMPORTS_PER_SOL
    if amount <= 0 or lamports != lamports.to_integral_value():
        raise ValueError(f"must be a positive amount of SOL in whole lamports, got {amount}")
    return int(lamports)
