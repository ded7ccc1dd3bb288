"""The local stack's Solana RPC: `make dev` serves one next to the API."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from flowdeploy.solana import LAMPORTS_PER_SOL
from flowdeploy.solana.rpc import SolanaRpc
from tests.conftest import Stack

pytestmark = pytest.mark.integration


def test_the_stack_serves_a_local_solana_rpc(stack: Stack) -> None:
    assert stack.solana_url.startswith("http://127.0.0.1:")
    rpc = SolanaRpc(stack.solana_url, allow_private=True)
    to = Pubkey.new_unique()
    _, last_valid = rpc.latest_blockhash()
    rpc.confirm(rpc.request_airdrop(to, LAMPORTS_PER_SOL), last_valid, timeout=10)
    assert rpc.balance(to) == LAMPORTS_PER_SOL
