"""The watcher on its own, against the local Solana RPC over HTTP: the RPC's memo field,
which transactions count as the run's, and how many RPC calls a watch makes."""

from __future__ import annotations

import base64

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.solana import LAMPORTS_PER_SOL
from flowdeploy.solana import transaction as tx
from flowdeploy.solana.rpc import SolanaRpc
from flowdeploy.solana.watcher import (
    MAX_POLL_SECONDS,
    ReferenceWatch,
    WatchFailed,
    parse_memo_field,
)
from tests import wallet
from tests.unit.solana.conftest import call


@pytest.mark.parametrize(
    ("field", "memos"),
    [
        ("[5] hello", ["hello"]),
        ("[5] hello; [3] a;b", ["hello", "a;b"]),
        ("[4] a; b; [1] c", ["a; b", "c"]),  # lengths are what delimit, not "; "
        ("[6] héllo; [1] x", ["héllo", "x"]),  # in bytes
        ("[3] (unparseable); [1] x", ["(unparseable)", "x"]),  # data that was not UTF-8
        ("no prefix", []),
    ],
)
def test_the_rpc_memo_field_is_read_by_its_lengths(field: str, memos: list[str]) -> None:
    assert parse_memo_field(field) == memos


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def identity_message(
    payer: Keypair, identity: Keypair, blockhash: Hash
) -> tuple[MessageV0, tx.Identity]:
    memo = tx.new_identity(identity)
    send = transfer(
        TransferParams(
            from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=LAMPORTS_PER_SOL
        )
    )
    message = tx.assemble(
        [send],
        fee_payer=payer.pubkey(),
        blockhash=blockhash,
        identity=memo,
        budget=tx.ComputeBudget(0, 200_000),
    )
    return message, memo


def land(local: LocalSolana, transaction: VersionedTransaction) -> Signature:
    encoded = base64.b64encode(bytes(transaction)).decode()
    reply = call(
        local.url, "sendTransaction", encoded, {"encoding": "base64", "skipPreflight": True}
    )
    return Signature.from_string(reply["result"])


def test_only_the_runs_own_transaction_counts(
    local: LocalSolana, rpc: SolanaRpc, payer: Keypair
) -> None:
    """Another transaction of the identity is skipped; one carrying the memo but doing
    something else is refused, naming the difference; the wallet's own compute budget is
    not a difference."""
    identity = Keypair()
    blockhash, _ = rpc.latest_blockhash()
    message, memo = identity_message(payer, identity, blockhash)
    clock = Clock()
    watch = ReferenceWatch(rpc, memo, message, clock=clock)
    watch.start()
    other, _ = identity_message(payer, identity, blockhash)  # the identity's next run
    land(local, VersionedTransaction(other, [payer]))
    assert watch.poll() is None

    forged = tx.assemble(
        [
            transfer(
                TransferParams(
                    from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=2
                )
            )
        ],
        fee_payer=payer.pubkey(),
        blockhash=blockhash,
        identity=memo,
    )
    land(local, VersionedTransaction(forged, [payer]))
    with pytest.raises(WatchFailed, match="is not the transaction the run built: different"):
        watch.poll()

    fresh, fresh_memo = identity_message(payer, identity, blockhash)
    watch = ReferenceWatch(rpc, fresh_memo, fresh, clock=clock)
    watch.start()
    sent = land(local, VersionedTransaction(wallet.with_compute_budget(fresh, 1_000, 9), [payer]))
    assert watch.poll() == sent


def test_a_watch_makes_few_rpc_calls_per_second(local: LocalSolana, rpc: SolanaRpc) -> None:
    """Polls back off to one every MAX_POLL_SECONDS: counted over a 60 s request and the
    120 s after it (each poll then also reads the block height)."""
    identity, payer = Keypair(), Keypair()
    blockhash, _ = rpc.latest_blockhash()
    message, memo = identity_message(payer, identity, blockhash)
    clock = Clock()
    watch = ReferenceWatch(rpc, memo, message, seconds=180, clock=clock)
    watch.start()
    while clock.now < 60:
        clock.now += watch.seconds_until_due()
        assert watch.poll() is None
    during_request = watch.calls
    watch.stop_taking_signatures()
    while not watch.over:
        clock.now += watch.seconds_until_due()
        watch.poll()
    after_request = watch.calls - during_request
    assert during_request / 60 <= 0.4  # upstream: 1 per second
    assert after_request / 120 <= 2 / MAX_POLL_SECONDS + 0.05
    print(f"RPC calls per second: {during_request / 60:.2f}, then {after_request / 120:.2f}")
