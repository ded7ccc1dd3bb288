"""What a run's Solana session is made of in RunFunction: the deployment's network, fees and
identity, the owner's wallets, and signature requests kept on the run item.

Imported only when a run reaches its first Solana node (solders is heavy for a cold start).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime, timedelta

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from flowdeploy import wallets
from flowdeploy.ids import new_id, timestamp
from flowdeploy.settings import settings
from flowdeploy.solana import CLUSTERS
from flowdeploy.solana.rpc import RpcError, SolanaRpc
from flowdeploy.solana.session import SolanaFailure, SolanaSession, SolanaSettings
from flowdeploy.solana.transaction import Fee
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import DeploymentItem, FlowRunItem

logger = logging.getLogger(__name__)

SIGNATURE_POLL_SECONDS = 0.5


def session_for(run: FlowRunItem, deployment: DeploymentItem) -> SolanaSession:
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
    )
    try:
        rpc = SolanaRpc(url, timeout=config.solana_rpc_timeout_seconds)
    except RpcError as error:
        raise SolanaFailure(f"the deployment's solana_network cannot be used: {error}") from None
    return SolanaSession(
        solana_settings, rpc, OwnerWallets(run.user_id), StoredSignatureBroker(run.id)
    )


class OwnerWallets:
    """The deployment owner's server wallets; secrets are decrypted one at a time, on use."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def open(self, wallet_id: str) -> tuple[Pubkey, Keypair | None]:
        wallet = wallets.get_wallet(self.user_id, wallet_id)
        if wallet is None:
            raise SolanaFailure(
                f"wallet {wallet_id} does not exist (any more) for the deployment's owner"
            )
        if not wallet.has_secret:  # its holder signs through a signature request
            return Pubkey.from_string(wallet.pubkey), None
        keypair = self._decrypt(wallet)
        return keypair.pubkey(), keypair

    def keypair_for_pubkey(self, pubkey: Pubkey) -> Keypair | None:
        wallet = wallets.wallet_for_pubkey(self.user_id, str(pubkey))
        if wallet is None or not wallet.has_secret:
            return None
        return self._decrypt(wallet)

    def _decrypt(self, wallet: wallets.Wallet) -> Keypair:
        try:
            return wallets.signing_keypair(wallet)
        except wallets.WalletUnavailable as error:
            raise SolanaFailure(str(error)) from None


class StoredSignatureBroker:
    """Signature requests on the run item: `GET /flow_run/{id}/signature_request` shows the
    open one, `POST /flow_run/{id}/signature` stores a verified answer, and the run polls."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    async def request_signature(self, pubkey: Pubkey, message: bytes, timeout: float) -> Signature:
        created = datetime.now(UTC)
        request_id = new_id()
        request: dict[str, object] = {
            "id": request_id,
            "pubkey": str(pubkey),
            "message": base64.b64encode(message).decode(),
            "timeout": timeout,
            "created_at": timestamp(created),
            "expires_at": timestamp(created + timedelta(seconds=timeout)),
        }
        opened = await asyncio.to_thread(run_store.open_signature_request, self.run_id, request)
        if opened is None:
            raise SolanaFailure("the run is no longer running; no signature was requested")
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        try:
            while loop.time() < until:
                await asyncio.sleep(min(SIGNATURE_POLL_SECONDS, max(0.0, until - loop.time())))
                signature = await self._submitted(request_id)
                if signature is not None:
                    return signature
            raise SolanaFailure(
                f"no signature from {pubkey} within {timeout:g} s; the transaction was not sent"
            )
        finally:
            try:
                await asyncio.to_thread(run_store.close_signature_request, self.run_id, request_id)
            except Exception:  # the final status write removes it too
                logger.warning(
                    "could not close signature request of run %s", self.run_id, exc_info=True
                )

    async def _submitted(self, request_id: str) -> Signature | None:
        try:
            run = await asyncio.to_thread(run_store.get, self.run_id)
        except Exception:  # a failed poll only delays the answer
            logger.warning("could not poll run %s for a signature", self.run_id, exc_info=True)
            return None
        if run is None or run.signature_request_id != request_id or not run.submitted_signature:
            return None
        return Signature.from_string(run.submitted_signature)
