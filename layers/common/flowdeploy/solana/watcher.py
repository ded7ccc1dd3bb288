"""Finding on chain a transaction the signer's wallet sent itself, by its identity memo.

Most wallets and every Blink client sign *and send*: the run then gets no signature back,
but the transaction carries this run's Solana Actions identity memo (`solana-action:
<identity>:<reference>:<signature>`, a fresh reference per transaction). As upstream does
(`crates/flow-lib-solana/src/watcher.rs`), the identity's transactions are read with
getSignaturesForAddress at `confirmed`, only those after the newest one seen (`until`), and
the one whose RPC memo field holds this memo is it. Stricter than upstream, that transaction
is then read (getTransaction) and must do what the run built — same fee payer, signers and
instructions; the wallet may have put its own compute budget first or used a newer
blockhash (`same_message_logic`) — and must have succeeded.

Polls back off from FIRST_POLL_SECONDS to MAX_POLL_SECONDS: about one RPC call every 3 s
once a wallet is slow, against upstream's one a second. Without an identity there is no
reference to look for: the wallet must return its signature.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from solders.message import MessageV0
from solders.signature import Signature

from flowdeploy.solana import transaction as tx
from flowdeploy.solana.message_logic import MessageChanged, same_message_logic
from flowdeploy.solana.rpc import SignatureInfo, SolanaRpc, TransactionFailed

logger = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 1.0  # a wallet needs a moment to show, sign and send
POLL_BACKOFF = 1.5
MAX_POLL_SECONDS = 3.0
# Upstream's ACTION_CONFIRM_TIMEOUT: how long, at most, a run looks for the transaction.
WATCH_SECONDS = 180.0
PAGE = 1000  # getSignaturesForAddress' largest page
MAX_PAGES = 5  # per poll: an identity landing over 5,000 transactions in 3 s is not watched
# Blocks a blockhash stays valid (MAX_PROCESSING_AGE), and a margin for a wallet that read
# its blockhash at `processed`, a little ahead of `confirmed`.
BLOCKHASH_BLOCKS = 150
BLOCKHASH_MARGIN_BLOCKS = 32
LANDED = frozenset({None, "confirmed", "finalized"})  # None: nodes before 1.5
_MEMO_PREFIX = re.compile(rb"\[(\d+)\] ")
_UNPARSEABLE = b"(unparseable)"


class WatchFailed(Exception):
    """The transaction was found, and it failed on chain or is not the run's transaction."""


def parse_memo_field(field: str) -> list[str]:
    """The memos in an RPC `memo` field: "[<bytes>] <text>", several joined by "; " (Agave's
    extract_and_fmt_memos). Lengths are in bytes, so a memo holding "; " is read whole."""
    raw = field.encode()
    memos: list[str] = []
    position = 0
    while (match := _MEMO_PREFIX.match(raw, position)) is not None:
        start = match.end()
        end = start + int(match.group(1))
        if raw.startswith(_UNPARSEABLE, start) and not (
            end == len(raw) or raw.startswith(b"; ", end)
        ):
            end = start + len(_UNPARSEABLE)  # data that was not UTF-8: its length is not the text's
        memos.append(raw[start:end].decode(errors="replace"))
        if not raw.startswith(b"; ", end):
            break
        position = end + 2
    return memos


class ReferenceWatch:
    """Looks for one transaction, identified by its identity memo, on chain.

    Blocking (RPC over HTTP): call from a worker thread. `start` takes the cursor before the
    transaction is shown to anyone; `poll` when `seconds_until_due` reaches 0. Once no more
    signatures are taken, `stop_taking_signatures` fixes the block height after which no
    transaction the wallet could have signed in time can land; `over` tells when to give up.
    """

    def __init__(
        self,
        rpc: SolanaRpc,
        identity: tx.Identity,
        message: MessageV0,
        *,
        seconds: float = WATCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpc = rpc
        self.identity = identity
        self.memo = identity.memo
        self.message_bytes = tx.message_bytes(message)
        self.seconds = seconds
        self.calls = 0  # RPC calls made, for the log line and the measurements
        self.horizon: int | None = None  # the last block height a late transaction can land in
        self._clock = clock
        self.started = clock()
        self._deadline = self.started + seconds
        self._delay = FIRST_POLL_SECONDS
        self._due = self.started + FIRST_POLL_SECONDS
        self._until: Signature | None = None
        self._pending: SignatureInfo | None = None  # seen, not yet readable at `confirmed`
        self._past_horizon = False

    @property
    def reference(self) -> str:
        return str(self.identity.reference)

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    @property
    def past_horizon(self) -> bool:
        """The chain passed the horizon: nothing signed in time can land any more."""
        return self._past_horizon

    @property
    def over(self) -> bool:
        """True once looking further is pointless: past its time, or past the horizon."""
        return self._past_horizon or self._clock() >= self._deadline

    def seconds_until_due(self) -> float:
        return max(0.0, min(self._due, self._deadline) - self._clock())

    def start(self) -> None:
        """Take the identity's newest transaction as the cursor: ours is not built yet."""
        newest = self._signatures(until=None, before=None, limit=1)
        self._until = newest[0].signature if newest else None

    def stop_taking_signatures(self) -> None:
        """No signature is taken any more: a transaction signed until now can land until
        every blockhash it could carry has expired."""
        self.calls += 1
        self.horizon = self.rpc.block_height() + BLOCKHASH_BLOCKS + BLOCKHASH_MARGIN_BLOCKS

    def poll(self) -> Signature | None:
        """The transaction's signature once it landed (confirmed, successful, the run's);
        WatchFailed if it landed otherwise. RpcError on a failed call: try again later."""
        self._due = self._clock() + self._delay
        self._delay = min(MAX_POLL_SECONDS, self._delay * POLL_BACKOFF)
        height = None
        if self.horizon is not None:
            self.calls += 1
            height = self.rpc.block_height()  # read first: what lands up to it is seen below
        found = self._pending or self._scan()
        if found is not None:
            signature = self._verified(found)
            if signature is not None:
                return signature
        if (
            height is not None
            and self.horizon is not None
            and height > self.horizon
            and self._pending is None  # one it saw but could not read yet: keep at it
        ):
            self._past_horizon = True
        return None

    def _scan(self) -> SignatureInfo | None:
        """The first (oldest) new transaction of the identity carrying the memo."""
        pages: list[list[SignatureInfo]] = []
        before = None
        for _ in range(MAX_PAGES):
            page = self._signatures(until=self._until, before=before, limit=PAGE)
            pages.append(page)
            if len(page) < PAGE:
                break
            before = page[-1].signature
        else:
            logger.warning(
                "identity %s: over %d new transactions in one poll",
                self.identity.identity,
                PAGE * MAX_PAGES,
            )
        newest = next((page[0] for page in pages if page), None)
        if newest is not None:
            self._until = newest.signature
        for page in reversed(pages):
            for info in reversed(page):
                if info.memo is not None and self.memo in parse_memo_field(info.memo):
                    return info
        return None

    def _verified(self, info: SignatureInfo) -> Signature | None:
        """`info`'s signature if its transaction is the run's and succeeded; None while it
        cannot be read yet."""
        self._pending = info
        if info.confirmation_status not in LANDED:
            return None
        self.calls += 1
        landed = self.rpc.transaction(info.signature)
        if landed is None:
            return None
        self._pending = None
        signature = info.signature
        message = landed.transaction.message
        raw = tx.message_bytes(message) if isinstance(message, MessageV0) else bytes(message)
        try:
            same_message_logic(self.message_bytes, raw, same_blockhash=False)
        except MessageChanged as change:
            raise WatchFailed(
                f"transaction {signature} carries this run's identity memo (reference "
                f"{self.reference}) but is not the transaction the run built: {change}"
            ) from None
        if landed.err is not None:
            failure = TransactionFailed(landed.err, str(signature))
            raise WatchFailed(f"the wallet sent the transaction itself and on chain {failure}")
        return signature

    def _signatures(
        self, *, until: Signature | None, before: Signature | None, limit: int
    ) -> list[SignatureInfo]:
        self.calls += 1
        return self.rpc.signatures_for_address(
            self.identity.identity, until=until, before=before, limit=limit
        )
