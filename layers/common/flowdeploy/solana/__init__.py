"""Solana: constants here; the RPC client in `rpc`, error texts in `errors`.

Nothing here imports solders at module level: it costs ~25 ms of cold start, paid
only by the code that builds or sends transactions.
"""

from __future__ import annotations

# SPL Memo v2. A one-letter typo still parses as a key, so it lives only here.
MEMO_PROGRAM_ID = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
MEMO_V1_PROGRAM_ID = "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"
MEMO_PROGRAM_IDS = (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID)
COMPUTE_BUDGET_PROGRAM_ID = "ComputeBudget111111111111111111111111111111"
# PACKET_DATA_SIZE: the largest serialized transaction a cluster accepts.
MAX_TRANSACTION_SIZE = 1232
CLUSTERS = {
    "devnet": "https://api.devnet.solana.com",
    "testnet": "https://api.testnet.solana.com",
    "mainnet-beta": "https://api.mainnet-beta.solana.com",
    "localnet": "http://127.0.0.1:8899",
}
LAMPORTS_PER_SOL = 1_000_000_000
