"""One run's Solana side: its cluster, the keys the server holds, and each transaction's
way from node instructions to a confirmed signature (or, with `output_instructions`, to the
caller's wallet).

A run talks only to its deployment's `solana_network.url`. Keys come from the deployment
owner's server wallets (decrypted only here, only when a `wallet` node runs) and from
keypairs produced inside the run. A signature the server cannot make (the action signer's,
or any bare public key) is asked for through a signature request the run waits on. With an
`action_identity`, the last signer's wallet may instead send the transaction itself: the
run then finds it on chain by its memo's reference (`flowdeploy.solana.watcher`), and
whichever comes first, a signature or the landed transaction, is taken, once.
Transactions of one run are built and sent one at a time, so at most one signature request
is open per run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ParamSpec, Protocol, TypeVar

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from flowdeploy.solana import LAMPORTS_PER_SOL
from flowdeploy.solana import transaction as tx
from flowdeploy.solana.rpc import RpcError, Simulation, SolanaRpc, TransactionFailed
from flowdeploy.solana.watcher import WATCH_SECONDS, ReferenceWatch, WatchFailed

# Kept back from the run's remaining time for sending and confirming after a signature.
SEND_MARGIN_SECONDS = 10.0
CONFIRM_SECONDS = 60.0
MAX_SIMULATION_LOG_LINES = 100
MAX_SIMULATION_LOG_CHARS = 500

_P = ParamSpec("_P")
_R = TypeVar("_R")


class SolanaFailure(Exception):
    """A Solana step of a node failed; the message says which and why."""


class TransactionReturned(Exception):
    """`output_instructions`: the transaction goes back to the caller instead of the chain,
    with what its simulation said (a failure is the wallet's to judge, not a refusal)."""

    def __init__(self, transaction: str, simulation: dict[str, Any]) -> None:
        super().__init__("the transaction is returned for the action signer to sign")
        self.transaction = transaction
        self.simulation = simulation


@dataclass(frozen=True, slots=True)
class Built:
    """A transaction's final message and what its simulation said."""

    message: MessageV0
    last_valid_block_height: int
    budget: tx.ComputeBudget
    simulation: Simulation | None
    failure: str | None  # why it would fail (or could not be simulated); None if it would land
    identity: tx.Identity | None = None  # its identity memo, by which it is found on chain

    def record(self) -> dict[str, Any]:
        """The simulation as a run records it: error, logs, compute units and budget."""
        simulation = self.simulation
        logs = simulation.logs[-MAX_SIMULATION_LOG_LINES:] if simulation else []
        return {
            "err": simulation.err if simulation else None,
            "error": self.failure,
            "logs": [line[:MAX_SIMULATION_LOG_CHARS] for line in logs],
            "units_consumed": simulation.units_consumed if simulation else None,
            "compute_unit_limit": self.budget.unit_limit,
            "compute_unit_price": self.budget.unit_price,
        }


@dataclass(frozen=True, slots=True)
class SignatureAnswer:
    """A signer's answer: its signature and, if its wallet changed the message (e.g. added
    compute-budget instructions), the message it signed instead."""

    signature: Signature
    new_message: bytes | None = None


@dataclass(frozen=True, slots=True)
class SentByWallet:
    """The signer's wallet sent the transaction itself; it landed (confirmed, successful)
    with this signature."""

    signature: Signature


class SignatureBroker(Protocol):
    """Asks a key holder outside the server for a signature of `message` and waits.

    `presigners` are the signatures already made on `message`; while there are any, the
    signer may not change the message (they would no longer verify). With a `watch`, the
    chain is searched for the transaction meanwhile: if it lands first, the request is
    closed (a later answer is refused) and SentByWallet returned. None: no answer within
    `timeout` (the request is closed).
    """

    async def request_signature(
        self,
        pubkey: Pubkey,
        message: bytes,
        timeout: float,
        presigners: dict[Pubkey, Signature],
        watch: ReferenceWatch | None = None,
    ) -> SignatureAnswer | SentByWallet | None: ...


@dataclass(frozen=True, slots=True)
class Collected:
    """The signatures a transaction needs from outside, or the transaction itself when the
    signer's wallet sent it (`landed`)."""

    message: MessageV0
    signatures: dict[Pubkey, Signature]
    landed: Signature | None = None


class WalletAccess(Protocol):
    """The deployment owner's wallets."""

    def keypair(self, wallet_id: str) -> Keypair | None:
        """The wallet's keypair; None for a wallet the server holds no secret of."""
        ...

    def pubkey(self, wallet_id: str) -> Pubkey:
        """The wallet's public key, without opening its secret."""
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
    # Micro-lamports per compute unit; None: the median of getRecentPrioritizationFees.
    compute_unit_price: int | None = None
    # Read mode (`/deployment/read`): nothing is signed or sent, no secret is opened.
    read_only: bool = False


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
        """Decrypt the owner's wallet `wallet_id` for this run; its public key. A wallet the
        server holds no secret of (an adapter wallet) signs through a signature request."""
        if self.settings.read_only:
            return await asyncio.to_thread(self.wallets.pubkey, wallet_id)
        keypair = await asyncio.to_thread(self.wallets.keypair, wallet_id)
        if keypair is None:
            return await asyncio.to_thread(self.wallets.pubkey, wallet_id)
        return self.hold(keypair)

    async def balance(self, pubkey: Pubkey) -> int:
        return await self._rpc(self.rpc.balance, pubkey)

    async def account(self, pubkey: Pubkey) -> dict[str, Any] | None:
        """getAccountInfo of `pubkey` (lamports, owner, data, executable); None if absent."""
        return await self._rpc(self.rpc.account_info, pubkey)

    async def rent_exempt(self, size: int) -> int:
        """Lamports a new account of `size` data bytes needs."""
        return await self._rpc(self.rpc.minimum_balance_for_rent_exemption, size)

    async def execute(
        self,
        instructions: Sequence[Instruction],
        signers: Sequence[Pubkey],
        remaining: float,
        log: Callable[[str], None] | None = None,
    ) -> Signature:
        """Build, sign, send and confirm one transaction of `instructions`; its signature
        (that of the transaction the signer's wallet sent, if it sent it itself).

        With `output_instructions` nothing is sent: TransactionReturned carries the
        transaction, signed by every key the server holds and by no other, even when its
        simulation fails (the failure goes with it). `log` gets a line on how it landed.
        """
        if self.settings.read_only:
            raise SolanaFailure(
                "a read never signs or sends a transaction, and this node would send one: "
                "start the deployment (POST /deployment/start) to run it"
            )
        async with self._lock:
            built = await self._build(instructions, signers)
            if self.settings.output_instructions:
                returned = self._sign(built.message, {})
                raise TransactionReturned(
                    base64.b64encode(bytes(returned)).decode(), built.record()
                )
            if built.failure is not None:
                raise SolanaFailure(
                    f"the transaction would fail, nothing was sent: {built.failure}"
                )
            collected = await self._collect_signatures(built, remaining, log)
            if collected.landed is not None:
                return collected.landed
            signed = self._sign(collected.message, collected.signatures)
            signature = await self._rpc(self.rpc.send, signed)
            await self._confirm(signature, built.last_valid_block_height, remaining)
            if log is not None:
                log(f"transaction {signature} confirmed")
            return signature

    async def _build(self, instructions: Sequence[Instruction], signers: Sequence[Pubkey]) -> Built:
        """The final message: compute budget first, its unit limit sized by simulating the
        whole transaction once with the largest limit."""
        settings = self.settings
        fee_payer = settings.action_signer or (signers[0] if signers else None)
        if fee_payer is None:
            raise SolanaFailure("the transaction has no fee payer: give an action_signer")
        identity = None
        if settings.action_identity is not None:
            identity = tx.new_identity(await self._identity_keypair(settings.action_identity))
        blockhash, last_valid = await self._rpc(self.rpc.latest_blockhash)

        def compile_with(budget: tx.ComputeBudget) -> MessageV0:
            try:
                return tx.assemble(
                    instructions,
                    fee_payer=fee_payer,
                    blockhash=blockhash,
                    fees=settings.fees,
                    identity=identity,
                    budget=budget,
                )
            except tx.TransactionInvalid as error:
                raise SolanaFailure(str(error)) from None

        price = settings.compute_unit_price
        if price is None:
            price = await self._recent_unit_price(compile_with(tx.ComputeBudget(0)))
        trial = compile_with(tx.ComputeBudget(price))
        simulation, failure = await self._simulate(self._sign(trial, {}), trial)
        units = simulation.units_consumed if simulation and simulation.err is None else None
        count = len(instructions) + len(settings.fees) + (identity is not None)
        budget = tx.ComputeBudget(price, tx.unit_limit_for(units, count))
        return Built(compile_with(budget), last_valid, budget, simulation, failure, identity)

    async def _recent_unit_price(self, message: MessageV0) -> int:
        """The median of the recent blocks' fees for the transaction's writable accounts; 0
        when the cluster cannot say."""
        writable = [
            key
            for index, key in enumerate(message.account_keys)
            if message.is_maybe_writable(index)
        ]
        try:
            fees = await asyncio.to_thread(self.rpc.recent_prioritization_fees, writable)
        except RpcError:
            return 0
        return sorted(fees)[(len(fees) - 1) // 2] if fees else 0

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

    async def _simulate(
        self, transaction: VersionedTransaction, message: MessageV0
    ) -> tuple[Simulation | None, str | None]:
        """The simulation and, if it fails (or cannot be made), why in the transaction's terms."""
        try:
            simulation = await asyncio.to_thread(self.rpc.simulate, transaction)
        except RpcError as error:
            if not self.settings.output_instructions:
                raise SolanaFailure(str(error)) from None
            return None, f"it could not be simulated: {error}"
        if simulation.err is None:
            return simulation, None
        return simulation, tx.explain_failure(simulation.err, message, simulation.logs)

    async def _collect_signatures(
        self, built: Built, remaining: float, log: Callable[[str], None] | None
    ) -> Collected:
        """Each external signer's signature, asked one at a time (the message and every
        signature made so far: the server's keys' and earlier signers'); the message they
        signed, which the first may have changed while nobody else had signed.

        The last signer holds every other signature, so its wallet may send the transaction
        itself: with an identity memo the run then looks for it on chain meanwhile, and
        after the request's timeout for as long as a transaction signed in time could land.
        """
        message = built.message
        signatures: dict[Pubkey, Signature] = {}
        external = [key for key in tx.signers_of(message) if key not in self.keypairs]
        for position, key in enumerate(external):
            timeout = min(self.settings.signature_timeout, remaining - SEND_MARGIN_SECONDS)
            if timeout <= 0:
                raise SolanaFailure(f"no time is left in the run to ask {key} for a signature")
            signed_bytes = tx.message_bytes(message)
            presigners = {
                signer: self.keypairs[signer].sign_message(signed_bytes)
                for signer in tx.signers_of(message)
                if signer in self.keypairs
            }
            presigners.update(signatures)
            watch = None
            if built.identity is not None and position == len(external) - 1:
                seconds = min(max(WATCH_SECONDS, timeout), remaining - SEND_MARGIN_SECONDS)
                watch = ReferenceWatch(self.rpc, built.identity, message, seconds=seconds)
                await self._rpc(watch.start)
            answer = await self._ask(key, signed_bytes, timeout, presigners, watch)
            if isinstance(answer, SignatureAnswer) and watch is not None:
                # A wallet may both answer and send: never send a second transaction.
                answer = await self._look_once(watch) or answer
            if isinstance(answer, SentByWallet):
                if log is not None and watch is not None:
                    log(
                        f"transaction {answer.signature} was sent by {key}'s wallet itself; "
                        f"found on chain by its reference {watch.reference} after "
                        f"{watch.elapsed:.1f} s ({watch.calls} RPC calls)"
                    )
                return Collected(message, signatures, answer.signature)
            if answer.new_message is not None and answer.new_message != signed_bytes:
                message = self._changed(signed_bytes, answer.new_message, presigners, key)
                signed_bytes = answer.new_message
            if not answer.signature.verify(key, signed_bytes):  # the broker checks too
                raise SolanaFailure(f"the signature submitted for {key} does not verify")
            signatures[key] = answer.signature
        return Collected(message, signatures)

    async def _ask(
        self,
        key: Pubkey,
        signed_bytes: bytes,
        timeout: float,
        presigners: dict[Pubkey, Signature],
        watch: ReferenceWatch | None,
    ) -> SignatureAnswer | SentByWallet:
        """`key`'s answer, or the transaction its wallet sent; SolanaFailure if neither."""
        try:
            answer = await self.broker.request_signature(
                key, signed_bytes, timeout, presigners, watch
            )
            if answer is None and watch is not None:
                answer = await self._keep_watching(watch)
        except WatchFailed as failure:
            raise SolanaFailure(str(failure)) from None
        if answer is not None:
            return answer
        if watch is None:
            raise SolanaFailure(
                f"no signature from {key} within {timeout:g} s; nothing was sent (without an "
                "action_identity a wallet must return its signature: a transaction it sends "
                "itself cannot be found)"
            )
        until = (
            f"by block height {watch.horizon}, when every blockhash it could carry had expired"
            if watch.past_horizon
            else f"within {watch.seconds:g} s"
        )
        raise SolanaFailure(
            f"no signature from {key} within {timeout:g} s, and no transaction with this "
            f"run's reference {watch.reference} landed {until}; nothing was sent"
        )

    async def _keep_watching(self, watch: ReferenceWatch) -> SentByWallet | None:
        """After the request's timeout: the transaction, if it still lands in time."""
        with contextlib.suppress(RpcError):  # no horizon then: it looks for its whole time
            await asyncio.to_thread(watch.stop_taking_signatures)
        while not watch.over:
            await asyncio.sleep(watch.seconds_until_due())
            found = await self._look_once(watch)
            if found is not None:
                return found
        return None

    async def _look_once(self, watch: ReferenceWatch) -> SentByWallet | None:
        try:
            signature = await asyncio.to_thread(watch.poll)
        except RpcError:  # a failed look only delays finding it
            return None
        except WatchFailed as failure:
            raise SolanaFailure(str(failure)) from None
        return SentByWallet(signature) if signature is not None else None

    @staticmethod
    def _changed(
        old: bytes, new: bytes, presigners: dict[Pubkey, Signature], key: Pubkey
    ) -> MessageV0:
        from flowdeploy.solana.message_logic import MessageChanged, same_message_logic

        if presigners:
            raise SolanaFailure(f"{key} changed a transaction that others had already signed")
        try:
            return same_message_logic(old, new)
        except MessageChanged as change:
            raise SolanaFailure(f"{key}'s wallet changed the transaction: {change}") from None

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
