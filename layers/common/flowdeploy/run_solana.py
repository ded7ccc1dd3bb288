"""What a run's Solana session is made of in RunFunction: the deployment's network, fees and
identity, the owner's wallets, and signature requests (`flowdeploy.signature_requests`).

Imported only when a run reaches its first Solana node (solders is heavy for a cold start).
"""

from __future__ import annotations

import asyncio
import logging

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from flowdeploy import signature_requests, wallets
from flowdeploy.live.run_stream import RunStream
from flowdeploy.settings import settings
from flowdeploy.solana import CLUSTERS
from flowdeploy.solana.rpc import RpcError, SolanaRpc
from flowdeploy.solana.session import (
    SentByWallet,
    SignatureAnswer,
    SolanaFailure,
    SolanaSession,
    SolanaSettings,
)
from flowdeploy.solana.transaction import Fee
from flowdeploy.solana.watcher import ReferenceWatch
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import DeploymentItem, FlowRunItem

logger = logging.getLogger(__name__)

SIGNATURE_POLL_SECONDS = 0.5


def session_for(
    run: FlowRunItem, deployment: DeploymentItem, stream: RunStream | None = None
) -> SolanaSession:
    network = dict(deployment.solana_network or {})
    cluster = str(network.get("cluster") or "")
    url = str(network.get("url") or CLUSTERS.get(cluster, ""))
    if not url:
        raise SolanaFailure(f"the deployment's solana_network has no url: {network}")
    config = settings()
    identity = deployment.action_identity
    solana_settings = SolanaSettings(
        url=url,
        cluster=cluster,
        fees=tuple(
            Fee(Pubkey.from_string(address), int(lamports))
            for address, lamports in deployment.fees or []
        ),
        action_identity=Pubkey.from_string(identity) if identity else None,
        action_signer=Pubkey.from_string(run.action_signer) if run.action_signer else None,
        output_instructions=bool(run.output_instructions),
        signature_timeout=config.signature_request_timeout_seconds,
        compute_unit_price=(
            int(deployment.compute_unit_price)
            if deployment.compute_unit_price is not None
            else None
        ),
        read_only=run.origin == run_store.READ_ORIGIN,
    )
    try:
        rpc = SolanaRpc(url, timeout=config.solana_rpc_timeout_seconds)
    except RpcError as error:
        raise SolanaFailure(f"the deployment's solana_network cannot be used: {error}") from None
    return SolanaSession(
        solana_settings, rpc, OwnerWallets(run.user_id), StoredSignatureBroker(run.id, stream)
    )


class OwnerWallets:
    """The deployment owner's wallets; secrets are decrypted one at a time, on use."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def _wallet(self, wallet_id: str) -> wallets.Wallet:
        wallet = wallets.get_wallet(self.user_id, wallet_id)
        if wallet is None:
            raise SolanaFailure(
                f"wallet {wallet_id} does not exist (any more) for the deployment's owner"
            )
        return wallet

    def keypair(self, wallet_id: str) -> Keypair | None:
        wallet = self._wallet(wallet_id)
        return self._decrypt(wallet) if wallet.holds_secret else None

    def pubkey(self, wallet_id: str) -> Pubkey:
        return Pubkey.from_string(self._wallet(wallet_id).pubkey)

    def keypair_for_pubkey(self, pubkey: Pubkey) -> Keypair | None:
        wallet = wallets.wallet_for_pubkey(self.user_id, str(pubkey))
        return None if wallet is None or not wallet.holds_secret else self._decrypt(wallet)

    def _decrypt(self, wallet: wallets.Wallet) -> Keypair:
        try:
            return wallets.signing_keypair(wallet)
        except wallets.WalletUnavailable as error:
            raise SolanaFailure(str(error)) from None


class StoredSignatureBroker:
    """Signature requests in the SignatureRequests table: the signer reads the open one
    (`GET /flow/signature_request/{run}`), answers it (`POST /signature/submit`), and the
    run polls it — and, with a watch, the chain for the transaction its wallet may send
    itself. One conditional write on the request decides between an answer and the landed
    transaction: whichever is stored first, the other is refused."""

    def __init__(self, run_id: str, stream: RunStream | None = None) -> None:
        self.run_id = run_id
        self.stream = stream

    async def request_signature(
        self,
        pubkey: Pubkey,
        message: bytes,
        timeout: float,
        presigners: dict[Pubkey, Signature],
        watch: ReferenceWatch | None = None,
    ) -> SignatureAnswer | SentByWallet | None:
        try:
            request = await asyncio.to_thread(
                signature_requests.open_request,
                self.run_id,
                str(pubkey),
                message,
                timeout,
                [(str(key), str(signature)) for key, signature in presigners.items()],
            )
        except signature_requests.RunNotRunning:
            raise SolanaFailure(
                "the run is no longer running; no signature was requested"
            ) from None
        request_id = int(request.id)
        if self.stream is not None:
            self.stream.signature_request(request)
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        try:
            while (left := until - loop.time()) > 0:
                pause = min(SIGNATURE_POLL_SECONDS, left)
                if watch is not None:
                    pause = min(pause, watch.seconds_until_due())
                await asyncio.sleep(pause)
                answer = await self._answer(request_id)
                if answer is not None:
                    return answer
                if watch is not None and watch.seconds_until_due() <= 0:
                    landed = await self._look(watch)
                    if landed is not None:
                        return await self._settle(request_id, landed)
            # An answer stored just before the request expired is still taken.
            return await self._answer(request_id)
        finally:
            try:
                await asyncio.to_thread(signature_requests.close_request, self.run_id, request_id)
            except Exception:  # the final status write removes it from the run too
                logger.warning(
                    "could not close signature request of run %s", self.run_id, exc_info=True
                )

    async def _answer(self, request_id: int) -> SignatureAnswer | None:
        try:
            answer = await asyncio.to_thread(signature_requests.answer_of, request_id)
        except Exception:  # a failed poll only delays the answer
            logger.warning("could not poll run %s for a signature", self.run_id, exc_info=True)
            return None
        if answer is None:
            return None
        signature, new_message = answer
        return SignatureAnswer(Signature.from_string(signature), new_message)

    async def _look(self, watch: ReferenceWatch) -> Signature | None:
        """The landed transaction's signature, if the watch finds it now (WatchFailed if it
        landed but failed, or is not the run's)."""
        try:
            return await asyncio.to_thread(watch.poll)
        except RpcError as error:  # a failed look only delays finding it
            logger.warning("run %s could not look on chain: %s", self.run_id, error)
            return None

    async def _settle(self, request_id: int, landed: Signature) -> SentByWallet:
        """Close the request for the landed transaction. If an answer was stored first, the
        run still goes on with the landed transaction: it is on chain, and sending the
        answered one too could do the same thing twice."""
        try:
            won = await asyncio.to_thread(
                signature_requests.settle_on_chain, request_id, str(landed)
            )
        except Exception:  # closing it in `finally` refuses later answers all the same
            logger.warning("could not settle signature request %s", request_id, exc_info=True)
            won = False
        if not won:
            logger.info("signature request %s was answered as its transaction landed", request_id)
        return SentByWallet(landed)
