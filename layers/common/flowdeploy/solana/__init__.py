"""Solana: transaction assembly, the RPC client, constants. No solders import here."""

MEMO_PROGRAM_ID = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
MAX_TRANSACTION_SIZE = 1232
LAMPORTS_PER_SOL = 1_000_000_000
CLUSTERS = {
    "devnet": "https://api.devnet.solana.com",
    "testnet": "https://api.testnet.solana.com",
    "mainnet-beta": "https://api.mainnet-beta.solana.com",
    "localnet": "http://127.0.0.1:8899",
}
