"""The local Solana RPC answers in the public RPC's documented JSON shapes."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from typing import Any

import pytest
from solders.compute_budget import set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorBorshIO,
    TransactionErrorDuplicateInstruction,
    TransactionErrorFieldless,
)

from flowdeploy import base58
from flowdeploy.local.solana_rpc import LocalSolana, error_json, instruction_error_json
from flowdeploy.solana import LAMPORTS_PER_SOL, MEMO_PROGRAM_ID
from tests.unit.solana.conftest import call, pay, post, signed

MEMO = Pubkey.from_string(MEMO_PROGRAM_ID)
SYSTEM = "11111111111111111111111111111111"


def result(url: str, method: str, *params: Any) -> Any:
    answer = call(url, method, *params)
    assert set(answer) == {"jsonrpc", "id", "result"}, answer
    return answer["result"]


def error(url: str, method: str, *params: Any) -> dict[str, Any]:
    answer = call(url, method, *params)
    assert set(answer) == {"jsonrpc", "id", "error"}, answer
    return dict(answer["error"])


def value(url: str, method: str, *params: Any) -> Any:
    """The `value` of an RpcResponse, after checking its context."""
    answer = result(url, method, *params)
    assert set(answer) == {"context", "value"}
    assert set(answer["context"]) == {"slot", "apiVersion"}
    assert isinstance(answer["context"]["slot"], int)
    return answer["value"]


def wire(tx: VersionedTransaction) -> str:
    return base64.b64encode(bytes(tx)).decode()


def blockhash_of(url: str) -> Hash:
    return Hash.from_string(value(url, "getLatestBlockhash")["blockhash"])


def test_get_latest_blockhash(local: LocalSolana) -> None:
    latest = value(local.url, "getLatestBlockhash", {"commitment": "confirmed"})
    assert set(latest) == {"blockhash", "lastValidBlockHeight"}
    assert latest["lastValidBlockHeight"] == result(local.url, "getBlockHeight") + 150
    assert value(local.url, "isBlockhashValid", latest["blockhash"]) is True
    assert value(local.url, "isBlockhashValid", str(Hash.new_unique())) is False


def test_blocks_advance_per_landed_transaction(local: LocalSolana, payer: Keypair) -> None:
    height = result(local.url, "getBlockHeight")
    before = blockhash_of(local.url)
    result(
        local.url,
        "sendTransaction",
        wire(pay(payer, Pubkey.new_unique(), 10**9, before)),
        {"encoding": "base64"},
    )
    assert result(local.url, "getBlockHeight") == height + 1
    assert result(local.url, "getSlot") == height + 1
    assert blockhash_of(local.url) != before
    assert value(local.url, "isBlockhashValid", str(before)) is True
    local.advance(150)
    assert value(local.url, "isBlockhashValid", str(before)) is False


def test_get_balance(local: LocalSolana, payer: Keypair) -> None:
    assert value(local.url, "getBalance", str(payer.pubkey())) == 10 * LAMPORTS_PER_SOL
    assert value(local.url, "getBalance", str(Pubkey.new_unique())) == 0


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("base64", [base64.b64encode(b"").decode(), "base64"]),
        ("base58", ["", "base58"]),
        (None, ""),
    ],
)
def test_get_account_info(
    local: LocalSolana, payer: Keypair, encoding: str | None, data: object
) -> None:
    config = {"encoding": encoding} if encoding else {}
    account = value(local.url, "getAccountInfo", str(payer.pubkey()), config)
    assert account == {
        "data": data,
        "executable": False,
        "lamports": 10 * LAMPORTS_PER_SOL,
        "owner": SYSTEM,
        "rentEpoch": account["rentEpoch"],
        "space": 0,
    }
    assert value(local.url, "getAccountInfo", str(Pubkey.new_unique())) is None


def test_base58_account_data_is_limited_to_128_bytes(local: LocalSolana) -> None:
    failure = error(local.url, "getAccountInfo", MEMO_PROGRAM_ID, {"encoding": "base58"})
    assert failure["code"] == -32602
    assert "please use Base64 encoding" in failure["message"]


def test_programs_of_the_non_default_litesvm_are_there(local: LocalSolana) -> None:
    for program in (
        MEMO_PROGRAM_ID,
        "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
        "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
    ):
        account = value(local.url, "getAccountInfo", program, {"encoding": "base64"})
        assert account is not None, program
        assert account["executable"] is True


def test_small_methods(local: LocalSolana) -> None:
    assert result(local.url, "getMinimumBalanceForRentExemption", 0) == 890_880
    assert result(local.url, "getHealth") == "ok"
    version = result(local.url, "getVersion")
    assert set(version) == {"solana-core", "feature-set"}


def test_send_and_get_signature_statuses(local: LocalSolana, payer: Keypair) -> None:
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash_of(local.url))
    sent = result(local.url, "sendTransaction", wire(tx), {"encoding": "base64"})
    assert sent == str(tx.signatures[0])
    unknown = str(Keypair().sign_message(b"?"))
    statuses = value(
        local.url, "getSignatureStatuses", [sent, unknown], {"searchTransactionHistory": True}
    )
    assert statuses[1] is None
    assert statuses[0] == {
        "slot": statuses[0]["slot"],
        "confirmations": 1,  # its block is behind the current one
        "err": None,
        "status": {"Ok": None},
        "confirmationStatus": "confirmed",
    }
    local.advance(40)
    [finalized] = value(local.url, "getSignatureStatuses", [sent])
    assert (finalized["confirmationStatus"], finalized["confirmations"]) == ("finalized", None)


def test_send_takes_base58_the_rpc_default(local: LocalSolana, payer: Keypair) -> None:
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash_of(local.url))
    assert result(local.url, "sendTransaction", base58.encode(bytes(tx))) == str(tx.signatures[0])


def test_a_failed_preflight_in_the_rpc_error_shape(local: LocalSolana, payer: Keypair) -> None:
    tx = pay(payer, Pubkey.new_unique(), 100 * LAMPORTS_PER_SOL, blockhash_of(local.url))
    failure = error(local.url, "sendTransaction", wire(tx), {"encoding": "base64"})
    assert failure["code"] == -32002
    assert failure["message"] == (
        "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
    )
    assert failure["data"] == {
        "err": {"InstructionError": [0, {"Custom": 1}]},
        "logs": failure["data"]["logs"],
        "accounts": None,
        "unitsConsumed": 150,
        "returnData": None,
        "innerInstructions": None,
        "replacementBlockhash": None,
    }
    assert any("insufficient lamports" in line for line in failure["data"]["logs"])


def test_skip_preflight_lands_a_failing_transaction_with_its_error(
    local: LocalSolana, payer: Keypair
) -> None:
    tx = pay(payer, Pubkey.new_unique(), 100 * LAMPORTS_PER_SOL, blockhash_of(local.url))
    config = {"encoding": "base64", "skipPreflight": True}
    assert result(local.url, "sendTransaction", wire(tx), config) == str(tx.signatures[0])
    [status] = value(local.url, "getSignatureStatuses", [str(tx.signatures[0])])
    assert status["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert status["status"] == {"Err": {"InstructionError": [0, {"Custom": 1}]}}


def test_a_bad_signature_is_refused_before_simulation(local: LocalSolana, payer: Keypair) -> None:
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash_of(local.url))
    unsigned = VersionedTransaction.populate(tx.message, [Signature.default()])
    assert error(local.url, "sendTransaction", wire(unsigned), {"encoding": "base64"}) == {
        "code": -32003,
        "message": "Transaction signature verification failure",
    }
    config = {"encoding": "base64", "skipPreflight": True}
    result(local.url, "sendTransaction", wire(unsigned), config)  # accepted, then dropped
    assert value(local.url, "getSignatureStatuses", [str(unsigned.signatures[0])]) == [None]


def test_already_processed_and_unknown_blockhash(local: LocalSolana, payer: Keypair) -> None:
    tx = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, blockhash_of(local.url))
    result(local.url, "sendTransaction", wire(tx), {"encoding": "base64"})
    again = error(local.url, "sendTransaction", wire(tx), {"encoding": "base64"})
    assert again["message"] == (
        "Transaction simulation failed: This transaction has already been processed"
    )
    assert again["data"]["err"] == "AlreadyProcessed"
    stale = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, Hash.new_unique())
    unknown = error(local.url, "sendTransaction", wire(stale), {"encoding": "base64"})
    assert unknown["message"] == "Transaction simulation failed: Blockhash not found"
    assert unknown["data"]["err"] == "BlockhashNotFound"


def test_simulate_transaction(local: LocalSolana, payer: Keypair) -> None:
    stale = pay(payer, Pubkey.new_unique(), LAMPORTS_PER_SOL, Hash.new_unique())
    config = {"encoding": "base64"}
    simulated = value(local.url, "simulateTransaction", wire(stale), config)
    assert simulated["err"] == "BlockhashNotFound"
    replaced = value(
        local.url, "simulateTransaction", wire(stale), {**config, "replaceRecentBlockhash": True}
    )
    assert replaced["err"] is None
    assert replaced["unitsConsumed"] == 150
    assert set(replaced["replacementBlockhash"]) == {"blockhash", "lastValidBlockHeight"}
    both = {**config, "replaceRecentBlockhash": True, "sigVerify": True}
    assert error(local.url, "simulateTransaction", wire(stale), both)["code"] == -32602


def test_memo_instruction_errors_keep_their_names(local: LocalSolana, payer: Keypair) -> None:
    blockhash = blockhash_of(local.url)
    needs_signer = Instruction(MEMO, b"hi", [AccountMeta(Pubkey.new_unique(), False, False)])
    tx = signed(payer, [needs_signer], blockhash)
    simulated = value(local.url, "simulateTransaction", wire(tx), {"encoding": "base64"})
    assert simulated["err"] == {"InstructionError": [0, "MissingRequiredSignature"]}
    not_a_program = signed(payer, [Instruction(Pubkey.new_unique(), b"", [])], blockhash)
    simulated = value(local.url, "simulateTransaction", wire(not_a_program), {"encoding": "base64"})
    assert simulated["err"] == "InvalidProgramForExecution"


def test_errors_without_a_transaction_to_cause_them() -> None:
    assert error_json(TransactionErrorFieldless.AccountNotFound) == "AccountNotFound"
    assert error_json(TransactionErrorDuplicateInstruction(3)) == {"DuplicateInstruction": 3}
    assert instruction_error_json(InstructionErrorBorshIO("bad")) == {"BorshIoError": "bad"}
    assert error_json(None) is None


def test_an_oversized_transaction_is_invalid_params(local: LocalSolana, payer: Keypair) -> None:
    tx = signed(payer, [Instruction(MEMO, b"x" * 1200, [])], blockhash_of(local.url))
    failure = error(local.url, "sendTransaction", wire(tx), {"encoding": "base64"})
    assert failure["code"] == -32602
    assert "too large: 1832 bytes" in failure["message"]
    assert "(max: encoded/raw 1644/1232)" in failure["message"]


def test_request_airdrop(local: LocalSolana) -> None:
    to = Pubkey.new_unique()
    signature = result(local.url, "requestAirdrop", str(to), LAMPORTS_PER_SOL)
    [status] = value(local.url, "getSignatureStatuses", [signature])
    assert status["err"] is None
    assert value(local.url, "getBalance", str(to)) == LAMPORTS_PER_SOL


def test_batches_and_protocol_errors(local: LocalSolana) -> None:
    batch = post(
        local.url,
        b'[{"jsonrpc":"2.0","id":1,"method":"getHealth"},'
        b'{"jsonrpc":"2.0","id":"b","method":"getNothing"},{"id":3}]',
    )
    assert batch == [
        {"jsonrpc": "2.0", "result": "ok", "id": 1},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "b"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": 3},
    ]
    assert post(local.url, b"{not json") == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error"},
        "id": None,
    }
    assert error(local.url, "getBalance", "not a key")["code"] == -32602
    assert error(local.url, "getBalance")["code"] == -32602


def test_health_over_get_and_nothing_else(local: LocalSolana) -> None:
    with urllib.request.urlopen(f"{local.url}/health", timeout=5) as reply:
        assert reply.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(local.url, timeout=5)
    assert refused.value.code == 405


def test_it_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalSolana(host="0.0.0.0")


# -- getRecentPrioritizationFees, getGenesisHash, getSignaturesForAddress, getTransaction --


def send_of(payer: Keypair, to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))


def test_recent_prioritization_fees_report_each_recent_blocks_compute_unit_price(
    local: LocalSolana, payer: Keypair
) -> None:
    target = Keypair().pubkey()
    priced = signed(
        payer,
        [set_compute_unit_price(7_777), send_of(payer, target, 1_000_000)],
        blockhash_of(local.url),
    )
    result(local.url, "sendTransaction", wire(priced), {"encoding": "base64"})
    fees = result(local.url, "getRecentPrioritizationFees", [str(target)])
    assert all(set(fee) == {"slot", "prioritizationFee"} for fee in fees)
    assert fees[-1]["prioritizationFee"] == 7_777
    assert len(fees) <= 150
    assert result(local.url, "getRecentPrioritizationFees")[-1]["prioritizationFee"] == 7_777
    too_many = [str(Keypair().pubkey()) for _ in range(129)]
    assert error(local.url, "getRecentPrioritizationFees", too_many)["code"] == -32602
    assert error(local.url, "getRecentPrioritizationFees", ["nope"])["code"] == -32602


def test_the_genesis_hash_is_a_fixed_base58_hash(local: LocalSolana) -> None:
    genesis = result(local.url, "getGenesisHash")
    assert Hash.from_string(genesis) == local.chain.genesis_hash
    local.advance(3)
    assert result(local.url, "getGenesisHash") == genesis


def test_signatures_for_address_list_newest_first_with_the_rpcs_memo_field(
    local: LocalSolana, payer: Keypair
) -> None:
    watched = Keypair().pubkey()
    first = pay(payer, watched, 1_000_000, blockhash_of(local.url))
    result(local.url, "sendTransaction", wire(first), {"encoding": "base64"})
    note = "solana-action:x:y:z"
    memo = signed(
        payer,
        [
            Instruction(MEMO, note.encode(), []),
            Instruction(MEMO, "héllo".encode(), []),
            send_of(payer, watched, 1_000_000),
        ],
        blockhash_of(local.url),
    )
    result(local.url, "sendTransaction", wire(memo), {"encoding": "base64"})
    listed = result(local.url, "getSignaturesForAddress", str(watched))
    assert [entry["signature"] for entry in listed] == [
        str(memo.signatures[0]),
        str(first.signatures[0]),
    ]
    newest = listed[0]
    assert set(newest) == {"signature", "slot", "err", "memo", "blockTime", "confirmationStatus"}
    assert newest["memo"] == f"[{len(note)}] {note}; [6] héllo"
    assert newest["err"] is None and newest["confirmationStatus"] == "confirmed"
    assert listed[1]["memo"] is None
    assert result(local.url, "getSignaturesForAddress", str(watched), {"limit": 1}) == [newest]
    after = {"before": newest["signature"]}
    assert result(local.url, "getSignaturesForAddress", str(watched), after) == listed[1:]
    assert result(local.url, "getSignaturesForAddress", str(Keypair().pubkey())) == []
    assert error(local.url, "getSignaturesForAddress", str(watched), {"limit": 0})["code"] == -32602


def test_get_transaction_returns_the_landed_transaction_and_its_meta(
    local: LocalSolana, payer: Keypair
) -> None:
    target = Keypair().pubkey()
    tx = pay(payer, target, 2_000_000, blockhash_of(local.url))
    signature = result(local.url, "sendTransaction", wire(tx), {"encoding": "base64"})
    refused = error(local.url, "getTransaction", signature, {"encoding": "base64"})
    assert refused["code"] == -32015 and "maxSupportedTransactionVersion" in refused["message"]
    config = {"encoding": "base64", "maxSupportedTransactionVersion": 0}
    found = result(local.url, "getTransaction", signature, config)
    assert found["version"] == 0
    assert base64.b64decode(found["transaction"][0]) == bytes(tx)
    meta = found["meta"]
    assert meta["err"] is None and meta["fee"] == 5_000
    assert meta["postBalances"][1] - meta["preBalances"][1] == 2_000_000
    assert any("invoke" in line for line in meta["logMessages"])
    as_json = result(local.url, "getTransaction", signature, {"maxSupportedTransactionVersion": 0})[
        "transaction"
    ]
    assert as_json["signatures"] == [signature]
    assert as_json["message"]["accountKeys"][1] == str(target)
    unknown = str(Signature.from_bytes(bytes(64)))
    assert result(local.url, "getTransaction", unknown, config) is None
