"""SolanaRpc against the local Solana RPC over real HTTP, and against scripted failures."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer

from flowdeploy.local.solana_rpc import LocalSolana
from flowdeploy.solana import LAMPORTS_PER_SOL, MAX_TRANSACTION_SIZE, MEMO_PROGRAM_ID
from flowdeploy.solana.rpc import (
    ConfirmationTimeout,
    RpcError,
    RpcUnavailable,
    Simulation,
    SolanaRpc,
    TransactionExpired,
    TransactionFailed,
)
from tests.unit.solana.conftest import Scripted, call, forward_to, pay, reply, signed

RENT_EXEMPT_MINIMUM = 890_880
MEMO = Pubkey.from_string(MEMO_PROGRAM_ID)
Make = Callable[..., Scripted]


def envelope(result: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()


def context(value: object) -> dict[str, object]:
    return {"context": {"slot": 1}, "value": value}


def hang(seconds: float) -> Callable[[BaseHTTPRequestHandler, bytes], None]:
    def step(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        time.sleep(seconds)
        reply(200, envelope(1))(handler, body)

    return step


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- reads ---------------------------------------------------------------------


def test_latest_blockhash_is_valid_for_150_blocks(rpc: SolanaRpc) -> None:
    blockhash, last_valid = rpc.latest_blockhash()
    assert isinstance(blockhash, Hash)
    assert last_valid == rpc.block_height() + 150


def test_balance_in_lamports(rpc: SolanaRpc, payer: Keypair) -> None:
    assert rpc.balance(payer.pubkey()) == 10 * LAMPORTS_PER_SOL
    assert rpc.balance(Pubkey.new_unique()) == 0


def test_account_info(rpc: SolanaRpc, payer: Keypair) -> None:
    assert rpc.account_info(payer.pubkey()) == {
        "lamports": 10 * LAMPORTS_PER_SOL,
        "owner": Pubkey.from_string("11111111111111111111111111111111"),
        "data": b"",
        "executable": False,
    }
    memo = rpc.account_info(MEMO)
    assert memo is not None
    assert memo["executable"] is True
    assert len(memo["data"]) > 0
    assert rpc.account_info(Pubkey.new_unique()) is None


def test_minimum_balance_for_rent_exemption(rpc: SolanaRpc) -> None:
    assert rpc.minimum_balance_for_rent_exemption(0) == RENT_EXEMPT_MINIMUM
    assert rpc.minimum_balance_for_rent_exemption(165) > RENT_EXEMPT_MINIMUM


def test_genesis_hash_and_recent_prioritization_fees(
    rpc: SolanaRpc, local: LocalSolana, payer: Keypair
) -> None:
    assert rpc.genesis_hash() == local.chain.genesis_hash
    fees = rpc.recent_prioritization_fees([payer.pubkey()])
    assert fees and all(isinstance(fee, int) and fee >= 0 for fee in fees)


def test_simulate_runs_without_landing(rpc: SolanaRpc, payer: Keypair) -> None:
    to = Pubkey.new_unique()
    blockhash, _ = rpc.latest_blockhash()
    simulation = rpc.simulate(pay(payer, to, LAMPORTS_PER_SOL, blockhash))
    assert simulation == Simulation(
        err=None,
        logs=[
            "Program 11111111111111111111111111111111 invoke [1]",
            "Program 11111111111111111111111111111111 success",
        ],
        units_consumed=150,
    )
    assert rpc.balance(to) == 0


def test_simulate_reports_the_error_in_the_rpc_shape(rpc: SolanaRpc, payer: Keypair) -> None:
    blockhash, _ = rpc.latest_blockhash()
    too_much = pay(payer, Pubkey.new_unique(), 100 * LAMPORTS_PER_SOL, blockhash)
    assert rpc.simulate(too_much).err == {"InstructionError": [0, {"Custom": 1}]}
    below_rent = pay(payer, Pubkey.new_unique(), 1000, blockhash)
    assert rpc.simulate(below_rent).err == {"InsufficientFundsForRent": {"account_index": 1}}


def test_simulate_with_sig_verify_refuses_an_unsigned_transaction(
    rpc: SolanaRpc, payer: Keypair
) -> None:
    blockhash, _ = rpc.latest_blockhash()
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash)
    unsigned = type(tx).populate(tx.message, [Signature.default()])
    assert rpc.simulate(unsigned).err is None
    with pytest.raises(RpcError, match="signature verification failure") as error:
        rpc.simulate(unsigned, sig_verify=True)
    assert error.value.code == -32003


# -- send and confirm ------------------------------------------------------------


def test_a_transfer_is_sent_and_confirmed(rpc: SolanaRpc, payer: Keypair) -> None:
    to = Pubkey.new_unique()
    blockhash, last_valid = rpc.latest_blockhash()
    tx = pay(payer, to, LAMPORTS_PER_SOL, blockhash)
    signature = rpc.send(tx)
    assert signature == tx.signatures[0]
    rpc.confirm(signature, last_valid, timeout=5)
    assert rpc.balance(to) == LAMPORTS_PER_SOL
    assert rpc.balance(payer.pubkey()) == 9 * LAMPORTS_PER_SOL - 5000
    [status] = rpc.signature_statuses([signature])
    assert status is not None
    assert status["err"] is None
    assert status["confirmationStatus"] == "confirmed"


def test_sending_the_same_bytes_again_is_success(rpc: SolanaRpc, payer: Keypair) -> None:
    blockhash, _ = rpc.latest_blockhash()
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash)
    assert rpc.send(tx) == rpc.send(tx) == tx.signatures[0]
    assert rpc.balance(payer.pubkey()) == 9 * LAMPORTS_PER_SOL - 5000


def test_a_preflight_failure_names_the_error_and_the_logs(rpc: SolanaRpc, payer: Keypair) -> None:
    blockhash, _ = rpc.latest_blockhash()
    below_rent = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=1000)
    )
    tx = signed(payer, [Instruction(MEMO, b"fee", []), below_rent], blockhash)
    with pytest.raises(RpcError) as error:
        rpc.send(tx)
    text = str(error.value)
    assert text.startswith(f"Solana RPC {rpc.url}: sendTransaction failed: ")
    assert (
        "Transaction simulation failed: Transaction results in an account (1) "
        "with insufficient funds for rent" in text
    )
    assert 'err {"InsufficientFundsForRent":{"account_index":1}}' in text
    assert "Program log: Memo (len 3)" in text
    assert "\n" not in text
    assert error.value.code == -32002
    assert isinstance(error.value.data, dict)
    assert error.value.data["err"] == {"InsufficientFundsForRent": {"account_index": 1}}
    assert rpc.signature_statuses([tx.signatures[0]]) == [None]


def test_an_unsigned_transaction_fails_signature_verification(
    rpc: SolanaRpc, payer: Keypair
) -> None:
    blockhash, _ = rpc.latest_blockhash()
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash)
    with pytest.raises(RpcError, match="Transaction signature verification failure"):
        rpc.send(type(tx).populate(tx.message, [Signature.default()]))


def test_a_transaction_that_landed_with_an_error_fails_confirm(
    rpc: SolanaRpc, local: LocalSolana, payer: Keypair
) -> None:
    blockhash, last_valid = rpc.latest_blockhash()
    tx = pay(payer, Pubkey.new_unique(), 100 * LAMPORTS_PER_SOL, blockhash)
    wire = base64.b64encode(bytes(tx)).decode()
    call(local.url, "sendTransaction", wire, {"encoding": "base64", "skipPreflight": True})
    with pytest.raises(TransactionFailed) as error:
        rpc.confirm(tx.signatures[0], last_valid, timeout=5)
    assert error.value.err == {"InstructionError": [0, {"Custom": 1}]}
    assert str(error.value) == (
        f"transaction {tx.signatures[0]} failed: Error processing Instruction 0: custom program "
        'error: 0x1 (err {"InstructionError":[0,{"Custom":1}]})'
    )
    assert rpc.balance(payer.pubkey()) == 10 * LAMPORTS_PER_SOL - 5000  # the fee is charged


def test_confirm_stops_when_the_blockhash_expires(rpc: SolanaRpc, local: LocalSolana) -> None:
    signature = Keypair().sign_message(b"never sent")
    _, last_valid = rpc.latest_blockhash()
    local.advance(151)
    with pytest.raises(TransactionExpired, match=r"expired: block height .* passed its last valid"):
        rpc.confirm(signature, last_valid, timeout=5)


def test_an_expired_blockhash_is_refused(
    rpc: SolanaRpc, local: LocalSolana, payer: Keypair
) -> None:
    blockhash, _ = rpc.latest_blockhash()
    local.advance(151)
    with pytest.raises(RpcError, match="Transaction simulation failed: Blockhash not found"):
        rpc.send(pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash))


def test_confirm_gives_up_after_its_timeout(rpc: SolanaRpc) -> None:
    signature = Keypair().sign_message(b"never sent")
    _, last_valid = rpc.latest_blockhash()
    started = time.monotonic()
    with pytest.raises(ConfirmationTimeout, match=r"not confirmed within 0\.3 s"):
        rpc.confirm(signature, last_valid, timeout=0.3, poll=0.05)
    assert time.monotonic() - started < 1


def test_an_airdrop_lands(rpc: SolanaRpc) -> None:
    to = Pubkey.new_unique()
    _, last_valid = rpc.latest_blockhash()
    rpc.confirm(rpc.request_airdrop(to, 2 * LAMPORTS_PER_SOL), last_valid, timeout=5)
    assert rpc.balance(to) == 2 * LAMPORTS_PER_SOL


def test_statuses_of_many_signatures(rpc: SolanaRpc, payer: Keypair) -> None:
    blockhash, _ = rpc.latest_blockhash()
    sent = rpc.send(pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash))
    unknown = [
        Keypair().sign_message(i.to_bytes(2, "little")) for i in range(300)
    ]  # 2 calls of ≤ 256
    statuses = rpc.signature_statuses([*unknown, sent])
    assert statuses[:300] == [None] * 300
    assert statuses[300] is not None
    assert statuses[300]["slot"] > 0


def test_signatures_for_address_pages_and_get_transaction(
    rpc: SolanaRpc, local: LocalSolana, payer: Keypair
) -> None:
    """What the watcher reads: an address's transactions newest first with their memo field,
    paged with until/before, and each landed transaction with its error."""
    address = Pubkey.new_unique()
    blockhash, _ = rpc.latest_blockhash()
    memo = Instruction(MEMO, "héllo".encode(), [])
    sent = [
        rpc.send(signed(payer, [transfer_to(payer, address, LAMPORTS_PER_SOL), memo], blockhash)),
        rpc.send(pay(payer, address, LAMPORTS_PER_SOL, blockhash)),
    ]
    failed = pay(payer, address, 100 * LAMPORTS_PER_SOL, blockhash)
    wire = base64.b64encode(bytes(failed)).decode()
    call(local.url, "sendTransaction", wire, {"encoding": "base64", "skipPreflight": True})
    newest_first = [info.signature for info in rpc.signatures_for_address(address)]
    assert newest_first == [failed.signatures[0], sent[1], sent[0]]
    first, second, third = rpc.signatures_for_address(address)
    assert third.memo == "[6] héllo" and second.memo is None  # bytes, not characters
    assert first.err == {"InstructionError": [0, {"Custom": 1}]}
    assert third.confirmation_status == "confirmed" and third.slot < second.slot
    assert [i.signature for i in rpc.signatures_for_address(address, until=sent[0])] == [
        failed.signatures[0],
        sent[1],
    ]
    assert [i.signature for i in rpc.signatures_for_address(address, limit=1)] == [
        failed.signatures[0]
    ]
    assert [i.signature for i in rpc.signatures_for_address(address, before=sent[1])] == [sent[0]]

    landed = rpc.transaction(sent[0])
    assert landed is not None and landed.err is None
    assert landed.transaction.signatures[0] == sent[0] and landed.slot == third.slot
    bad = rpc.transaction(failed.signatures[0])
    assert bad is not None and bad.err == {"InstructionError": [0, {"Custom": 1}]}
    assert rpc.transaction(Keypair().sign_message(b"never sent")) is None


def transfer_to(payer: Keypair, to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))


def test_an_oversized_transaction_is_refused_before_sending(rpc: SolanaRpc, payer: Keypair) -> None:
    blockhash, _ = rpc.latest_blockhash()
    tx = signed(payer, [Instruction(MEMO, b"x" * 1200, [])], blockhash)
    assert len(bytes(tx)) > MAX_TRANSACTION_SIZE
    with pytest.raises(RpcError, match=r"is 13\d\d bytes, over the 1232-byte limit"):
        rpc.send(tx)
    with pytest.raises(RpcError, match="over the 1232-byte limit"):
        rpc.simulate(tx)


# -- failures: retries, timeouts, envelopes ----------------------------------------


def test_reads_are_retried_after_5xx_and_429(scripted: Make) -> None:
    server = scripted(
        reply(503, b"busy"), reply(429, b"slow down", {"Retry-After": "0"}), reply(200, envelope(7))
    )
    rpc = SolanaRpc(server.url, allow_private=True, retries=2, backoff=0.01)
    assert rpc.block_height() == 7
    assert len(server.bodies) == 3


def test_reads_give_up_after_the_retries(scripted: Make) -> None:
    server = scripted(reply(502, b"bad gateway"))
    rpc = SolanaRpc(server.url, allow_private=True, retries=2, backoff=0.01)
    with pytest.raises(RpcUnavailable) as error:
        rpc.balance(Pubkey.new_unique())
    assert str(error.value) == (
        f"Solana RPC {rpc.url} unreachable: getBalance: HTTP 502 (3 attempts)"
    )
    assert len(server.bodies) == 3


def test_a_hanging_endpoint_times_out(scripted: Make) -> None:
    server = scripted(hang(2), reply(200, envelope(9)))
    rpc = SolanaRpc(server.url, allow_private=True, timeout=0.2, retries=1, backoff=0.01)
    started = time.monotonic()
    assert rpc.block_height() == 9
    assert time.monotonic() - started < 1
    rpc = SolanaRpc(server.url, allow_private=True, timeout=0.2, retries=0)
    server.steps[:] = [hang(2)]
    with pytest.raises(RpcUnavailable, match=r"getBlockHeight: no response within 0\.2 s"):
        rpc.block_height()


def test_send_is_not_retried_after_an_http_error(scripted: Make, payer: Keypair) -> None:
    server = scripted(reply(503, b"busy"), reply(200, envelope("unused")))
    rpc = SolanaRpc(server.url, allow_private=True, backoff=0.01)
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, Hash.default())
    with pytest.raises(RpcUnavailable, match="sendTransaction: HTTP 503"):
        rpc.send(tx)
    assert len(server.bodies) == 1


def test_send_is_retried_when_the_answer_is_lost_and_already_processed_is_success(
    scripted: Make, local: LocalSolana, payer: Keypair
) -> None:
    server = scripted(forward_to(local.url, then_drop=True), forward_to(local.url))
    rpc = SolanaRpc(server.url, allow_private=True, backoff=0.01)
    blockhash, _ = SolanaRpc(local.url, allow_private=True).latest_blockhash()
    to = Pubkey.new_unique()
    tx = pay(payer, to, LAMPORTS_PER_SOL, blockhash)
    assert rpc.send(tx) == tx.signatures[0]
    assert len(server.bodies) == 2
    assert json.loads(server.bodies[0])["params"][1]["encoding"] == "base64"
    assert rpc.balance(to) == LAMPORTS_PER_SOL  # landed once


def test_an_unreachable_port_fails_fast() -> None:
    rpc = SolanaRpc(f"http://127.0.0.1:{free_port()}", allow_private=True, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(RpcUnavailable, match=r"unreachable: getLatestBlockhash: .*refused"):
        rpc.latest_blockhash()
    assert time.monotonic() - started < 1


def test_an_error_envelope_is_an_rpc_error(local: LocalSolana) -> None:
    rpc = SolanaRpc(local.url, allow_private=True)
    with pytest.raises(RpcError) as error:
        rpc._call("getNothing", [])
    assert (error.value.code, error.value.message) == (-32601, "Method not found")
    assert str(error.value) == (
        f"Solana RPC {local.url}: getNothing failed: Method not found (code -32601)"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html>oops</html>", "answered HTTP 200 with no JSON-RPC response: '<html>oops</html>'"),
        (b'{"jsonrpc": "2.0", "id": 1}', "answered HTTP 200 with no JSON-RPC response"),
        (envelope({"value": "not a number"}), 'unexpected result "not a number"'),
        (envelope(context({"blockhash": "x"})), "unexpected result"),
        (
            b'{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"Node is unhealthy"}}',
            "getBalance failed: Node is unhealthy (code -32005)",
        ),
        (b'{"jsonrpc":"2.0","id":1,"error":"odd"}', 'getBalance failed: "odd"'),
    ],
)
def test_answers_that_are_not_results_are_rpc_errors(
    scripted: Make, payload: bytes, message: str
) -> None:
    rpc = SolanaRpc(scripted(reply(200, payload)).url, allow_private=True)
    with pytest.raises(RpcError) as error:
        rpc.balance(Pubkey.new_unique())
    assert not isinstance(error.value, RpcUnavailable)
    assert message in str(error.value)


def test_a_malformed_blockhash_is_an_rpc_error_not_a_panic(scripted: Make) -> None:
    server = scripted(reply(200, envelope(context({"blockhash": "0", "lastValidBlockHeight": 1}))))
    with pytest.raises(RpcError, match='getLatestBlockhash failed: unexpected result "0"'):
        SolanaRpc(server.url, allow_private=True).latest_blockhash()


def test_messages_never_show_the_url_path_or_query(scripted: Make) -> None:
    server = scripted(reply(500, b"down"))
    rpc = SolanaRpc(server.url, allow_private=True, retries=0)
    with pytest.raises(RpcUnavailable) as error:
        rpc.block_height()
    assert "SECRET" not in str(error.value)
    assert f"Solana RPC http://127.0.0.1:{server.server.server_address[1]}/… unreachable" in str(
        error.value
    )


def test_private_addresses_are_refused_unless_allowed(local: LocalSolana) -> None:
    rpc = SolanaRpc(local.url, allow_private=False)
    with pytest.raises(
        RpcError, match=r"refused to connect to non-public address 127\.0\.0\.1"
    ) as e:
        rpc.block_height()
    assert not isinstance(e.value, RpcUnavailable)


def test_allow_private_defaults_to_the_settings(local: LocalSolana) -> None:
    from flowdeploy.settings import settings

    assert settings().http_allow_private is False  # tests run with AWS's setting
    with pytest.raises(RpcError, match="non-public address"):
        SolanaRpc(local.url).block_height()


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com:8899", "http://", "wss://x"])
def test_an_unknown_url_scheme_is_refused(url: str) -> None:
    with pytest.raises(RpcError, match=r"the URL must be http\(s\)://host"):
        SolanaRpc(url, allow_private=True)


def test_the_solana_package_does_not_load_solders() -> None:
    code = (
        "import sys, flowdeploy.solana, flowdeploy.solana.errors; "
        "assert not [m for m in sys.modules if m.startswith('solders')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
