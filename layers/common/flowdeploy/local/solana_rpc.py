"""A local Solana JSON-RPC endpoint on LiteSVM, for `make dev` and the tests.

`LiteSVM()` (not `.default()`) carries the SPL programs flows use: memo v1/v2, token,
token-2022 and ATA. Requests and answers have the public RPC's JSON shapes, errors
included. Two things the SVM does not do are done here, as a validator does them:
the chain advances one block per landed transaction (so blockhashes expire after
150 blocks and `lastValidBlockHeight` means what it says) and each transaction is
checked for signatures, a known recent blockhash and an earlier landing ("already
processed"). Slot and block height are the same number: no slot is ever skipped.

    python -m flowdeploy.local.solana_rpc [--port 8899]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    SimulatedTransactionInfo,
    TransactionMetadata,
)
from solders.transaction_status import (
    InstructionErrorBorshIO,
    InstructionErrorCustom,
    InstructionErrorFieldless,
    TransactionErrorDuplicateInstruction,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorProgramExecutionTemporarilyRestricted,
)

from flowdeploy import base58
from flowdeploy.solana import COMPUTE_BUDGET_PROGRAM_ID, MAX_TRANSACTION_SIZE, MEMO_PROGRAM_IDS
from flowdeploy.solana.errors import describe

log = logging.getLogger("flowdeploy.local.solana")

API_VERSION = "2.2.0"
FEATURE_SET = 3294202862
MAX_PROCESSING_AGE = 150  # blocks a blockhash stays valid
FINALIZED_DEPTH = 31  # confirmations after which a block counts as finalized
MAX_STATUSES = 256
MAX_REQUEST_BYTES = 5 * 1024 * 1024
# base64 of a 1232-byte transaction; the RPC checks the encoded length first.
MAX_BASE64_SIZE = 1644
MAX_BASE58_SIZE = 1683
MAX_BASE58_DATA = 128  # getAccountInfo refuses base58 for larger data
MAX_PRIORITIZATION_ACCOUNTS = 128  # getRecentPrioritizationFees' limit
MAX_SIGNATURES_FOR_ADDRESS = 1000  # getSignaturesForAddress' largest (and default) limit
SET_COMPUTE_UNIT_PRICE = 3  # ComputeBudgetInstruction tag
COMPUTE_BUDGET = Pubkey.from_string(COMPUTE_BUDGET_PROGRAM_ID)
MEMO_PROGRAMS = frozenset(Pubkey.from_string(key) for key in MEMO_PROGRAM_IDS)


class RpcFault(Exception):
    """A JSON-RPC error answer: {"code", "message", "data"?}."""

    def __init__(self, code: int, message: str, data: object | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcFault:
    return RpcFault(-32602, message)


# -- solders' TransactionError → the RPC's JSON ------------------------------


def _variant(value: object) -> str:
    """`TransactionErrorFieldless.BlockhashNotFound` → "BlockhashNotFound"."""
    return str(value).rpartition(".")[2]


def instruction_error_json(err: object) -> object:
    if isinstance(err, InstructionErrorCustom):
        return {"Custom": err.code}
    if isinstance(err, InstructionErrorBorshIO):
        return {"BorshIoError": err.value}
    if isinstance(err, InstructionErrorFieldless):
        return _variant(err)
    raise TypeError(f"unknown instruction error {err!r}")


def error_json(err: object) -> object:
    """A solders TransactionError as the public RPC writes it: "BlockhashNotFound",
    {"InstructionError": [0, {"Custom": 1}]}, {"InsufficientFundsForRent": {"account_index": 2}}.

    (solders' own `to_json` drops the variant names: it gives [0, 1] for Custom(1).)
    """
    if err is None:
        return None
    if isinstance(err, TransactionErrorFieldless):
        return _variant(err)
    if isinstance(err, TransactionErrorInstructionError):
        return {"InstructionError": [err.index, instruction_error_json(err.err)]}
    if isinstance(err, TransactionErrorInsufficientFundsForRent):
        return {"InsufficientFundsForRent": {"account_index": err.account_index}}
    if isinstance(err, TransactionErrorProgramExecutionTemporarilyRestricted):
        return {"ProgramExecutionTemporarilyRestricted": {"account_index": err.account_index}}
    if isinstance(err, TransactionErrorDuplicateInstruction):
        return {"DuplicateInstruction": err.index}
    raise TypeError(f"unknown transaction error {err!r}")


@dataclass(frozen=True)
class Outcome:
    """What executing (or simulating) one transaction gave."""

    err: object | None  # RPC JSON shape
    logs: list[str]
    units_consumed: int
    fee: int

    @classmethod
    def of(
        cls, result: TransactionMetadata | SimulatedTransactionInfo | FailedTransactionMetadata
    ) -> Outcome:
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return cls(error_json(result.err()), list(meta.logs()), *_units_and_fee(meta))
        meta = result.meta() if isinstance(result, SimulatedTransactionInfo) else result
        return cls(None, list(meta.logs()), *_units_and_fee(meta))

    @classmethod
    def refused(cls, err: str) -> Outcome:
        return cls(err, [], 0, 0)

    def simulation_value(self) -> dict[str, Any]:
        return {
            "err": self.err,
            "logs": self.logs,
            "accounts": None,
            "unitsConsumed": self.units_consumed,
            "returnData": None,
            "innerInstructions": None,
            "replacementBlockhash": None,
        }


def _units_and_fee(meta: TransactionMetadata) -> tuple[int, int]:
    return int(meta.compute_units_consumed()), int(meta.fee())


# -- the chain ---------------------------------------------------------------


@dataclass(frozen=True)
class Landed:
    """A transaction in a block: what getSignatureStatuses, getSignaturesForAddress,
    getTransaction and getRecentPrioritizationFees report about it."""

    slot: int
    err: object | None
    transaction: VersionedTransaction | None = None  # None for an airdrop
    block_time: int = 0
    outcome: Outcome | None = None
    pre_balances: tuple[int, ...] = ()
    post_balances: tuple[int, ...] = ()

    @property
    def keys(self) -> list[Pubkey]:
        return [] if self.transaction is None else list(self.transaction.message.account_keys)

    @property
    def compute_unit_price(self) -> int:
        """Micro-lamports per compute unit it paid (SetComputeUnitPrice), 0 without one."""
        if self.transaction is None:
            return 0
        message = self.transaction.message
        keys = list(message.account_keys)
        for instruction in message.instructions:
            data = bytes(instruction.data)
            if (
                keys[instruction.program_id_index] == COMPUTE_BUDGET
                and len(data) == 9
                and data[0] == SET_COMPUTE_UNIT_PRICE
            ):
                return int.from_bytes(data[1:], "little")
        return 0

    def memo(self) -> str | None:
        """The RPC's `memo` field: each memo instruction as "[<bytes>] <text>", joined by "; "
        (Agave's extract_and_fmt_memos)."""
        if self.transaction is None:
            return None
        keys = self.keys
        memos = []
        for instruction in self.transaction.message.instructions:
            if keys[instruction.program_id_index] in MEMO_PROGRAMS:
                data = bytes(instruction.data)
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    text = "(unparseable)"
                memos.append(f"[{len(data)}] {text}")
        return "; ".join(memos) if memos else None


class LocalChain:
    """LiteSVM plus what a validator adds: blocks, blockhash ages, signature statuses.

    Not thread-safe by itself: LocalSolana holds one lock around every call.
    """

    def __init__(self) -> None:
        # Signatures and blockhashes are checked here, as the RPC and the bank do.
        self.svm = LiteSVM().with_sigverify(False).with_blockhash_check(False)
        self.slot = int(self.svm.get_clock().slot)
        # The first blockhash stands for the genesis hash (the same for every local chain).
        self.genesis_hash = self.svm.latest_blockhash()
        self.blockhashes: dict[Hash, int] = {}  # blockhash -> its last valid block height
        self.landed: dict[Signature, Landed] = {}
        self.history: list[Landed] = []  # oldest first: one transaction per block
        self._remember_blockhash()

    def _remember_blockhash(self) -> None:
        self.blockhashes[self.svm.latest_blockhash()] = self.slot + MAX_PROCESSING_AGE
        if len(self.blockhashes) > 4 * MAX_PROCESSING_AGE:
            for old, last_valid in list(self.blockhashes.items()):
                if last_valid < self.slot:
                    del self.blockhashes[old]

    def advance(self, blocks: int = 1) -> None:
        """Produce `blocks` new blocks, each with a new blockhash."""
        for _ in range(blocks):
            self.slot += 1
            self.svm.warp_to_slot(self.slot)
            self.svm.expire_blockhash()
            self._remember_blockhash()

    def latest_blockhash(self) -> tuple[Hash, int]:
        blockhash = self.svm.latest_blockhash()
        return blockhash, self.blockhashes[blockhash]

    def blockhash_valid(self, blockhash: Hash) -> bool:
        last_valid = self.blockhashes.get(blockhash)
        return last_valid is not None and self.slot <= last_valid

    def check(self, tx: VersionedTransaction, *, blockhash: bool = True) -> str | None:
        """Why the bank would refuse `tx` before executing it, or None."""
        if tx.signatures[0] in self.landed:
            return "AlreadyProcessed"
        if blockhash and not self.blockhash_valid(tx.message.recent_blockhash):
            return "BlockhashNotFound"
        return None

    def simulate(self, tx: VersionedTransaction, *, blockhash: bool = True) -> Outcome:
        refused = self.check(tx, blockhash=blockhash)
        if refused:
            return Outcome.refused(refused)
        return Outcome.of(self.svm.simulate_transaction(tx))

    def execute(self, tx: VersionedTransaction) -> Outcome:
        """Land `tx` in a block of its own, with or without an error, unless the bank would
        drop it (bad blockhash, already processed, unknown fee payer…)."""
        refused = self.check(tx)
        if refused:
            return Outcome.refused(refused)
        keys = list(tx.message.account_keys)
        before = tuple(self.svm.get_balance(key) or 0 for key in keys)
        outcome = Outcome.of(self.svm.send_transaction(tx))
        signature = tx.signatures[0]
        if outcome.err is None or self.svm.get_transaction(signature) is not None:
            after = tuple(self.svm.get_balance(key) or 0 for key in keys)
            self._land(
                signature, Landed(self.slot, outcome.err, tx, self._time(), outcome, before, after)
            )
        return outcome

    def _time(self) -> int:
        return int(self.svm.get_clock().unix_timestamp)

    def _land(self, signature: Signature, landed: Landed) -> None:
        self.landed[signature] = landed
        self.history.append(landed)
        self.advance()

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        result = self.svm.airdrop(pubkey, lamports)
        if isinstance(result, FailedTransactionMetadata):
            raise RpcFault(-32600, f"airdrop request failed: {describe(error_json(result.err()))}")
        signature = result.signature()
        self._land(signature, Landed(self.slot, None, block_time=self._time()))
        return signature

    def status(self, signature: Signature) -> dict[str, Any] | None:
        landed = self.landed.get(signature)
        if landed is None:
            return None
        depth = self.slot - landed.slot
        finalized = depth > FINALIZED_DEPTH
        return {
            "slot": landed.slot,
            "confirmations": None if finalized else depth,
            "status": {"Ok": None} if landed.err is None else {"Err": landed.err},
            "err": landed.err,
            "confirmationStatus": "finalized" if finalized else "confirmed",
        }


# -- JSON-RPC methods ----------------------------------------------------------


def _pubkey(value: object) -> Pubkey:
    try:
        return Pubkey.from_string(str(value))
    except ValueError:
        raise invalid_params(f"Invalid param: {value!r} is not a base58 public key") from None


def _signature(value: object) -> Signature:
    try:
        return Signature.from_string(str(value))
    except ValueError:
        raise invalid_params(f"Invalid param: {value!r} is not a signature") from None


def _transaction_json(tx: VersionedTransaction) -> dict[str, Any]:
    message = tx.message
    header = message.header
    body: dict[str, Any] = {
        "accountKeys": [str(key) for key in message.account_keys],
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [
            {
                "programIdIndex": instruction.program_id_index,
                "accounts": list(instruction.accounts),
                "data": base58.encode(bytes(instruction.data)),
                "stackHeight": None,
            }
            for instruction in message.instructions
        ],
    }
    if isinstance(tx.version(), int):
        body["addressTableLookups"] = []
    return {"signatures": [str(s) for s in tx.signatures], "message": body}


def _config(params: list[Any], index: int) -> dict[str, Any]:
    if len(params) <= index or params[index] is None:
        return {}
    if not isinstance(params[index], dict):
        raise invalid_params(f"Invalid params: parameter {index} must be an object")
    config: dict[str, Any] = params[index]
    return config


def _decode_transaction(params: list[Any]) -> VersionedTransaction:
    if not params or not isinstance(params[0], str):
        raise invalid_params("Invalid params: missing the encoded transaction")
    text = params[0]
    encoding = _config(params, 1).get("encoding", "base58")
    if encoding == "base64":
        if len(text) > MAX_BASE64_SIZE:
            raise _too_large(text, "base64", MAX_BASE64_SIZE)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise invalid_params(f"invalid transaction: invalid base64 encoding: {error}") from None
    elif encoding == "base58":
        if len(text) > MAX_BASE58_SIZE:
            raise _too_large(text, "base58", MAX_BASE58_SIZE)
        try:
            raw = base58.decode(text, max_length=MAX_BASE58_SIZE)
        except ValueError as error:
            raise invalid_params(f"invalid transaction: invalid base58 encoding: {error}") from None
    else:
        raise invalid_params(
            f"unsupported encoding: {encoding}. Supported encodings: base58, base64"
        )
    if len(raw) > MAX_TRANSACTION_SIZE:
        raise invalid_params(
            f"invalid transaction: decoded solana_transaction::versioned::VersionedTransaction "
            f"too large: {len(raw)} bytes (max: {MAX_TRANSACTION_SIZE} bytes)"
        )
    try:
        tx = VersionedTransaction.from_bytes(raw)
        tx.sanitize()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # a malformed transaction can make solders panic
        raise invalid_params(
            f"invalid transaction: failed to deserialize VersionedTransaction: {error}"
        ) from None
    return tx


def _too_large(text: str, encoding: str, limit: int) -> RpcFault:
    return invalid_params(
        f"invalid transaction: {encoding} encoded solana_transaction::versioned::"
        f"VersionedTransaction too large: {len(text)} bytes "
        f"(max: encoded/raw {limit}/{MAX_TRANSACTION_SIZE})"
    )


def _signatures_verify(tx: VersionedTransaction) -> bool:
    try:
        return all(tx.verify_with_results())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        return False


SIGNATURE_FAILURE = RpcFault(-32003, "Transaction signature verification failure")


class LocalRpc:
    """The JSON-RPC methods over one LocalChain."""

    def __init__(self, chain: LocalChain, lock: threading.RLock) -> None:
        self.chain = chain
        self.lock = lock
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getLatestBlockhash": self.get_latest_blockhash,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "requestAirdrop": self.request_airdrop,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "getBlockHeight": lambda params: self.chain.slot,
            "getSlot": lambda params: self.chain.slot,
            "getHealth": lambda params: "ok",
            "getVersion": lambda params: {"solana-core": API_VERSION, "feature-set": FEATURE_SET},
            "isBlockhashValid": self.is_blockhash_valid,
            "getGenesisHash": lambda params: str(self.chain.genesis_hash),
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getTransaction": self.get_transaction,
        }

    def context(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self.chain.slot, "apiVersion": API_VERSION}, "value": value}

    def answer(self, request: object) -> dict[str, Any]:
        """One request object → its response object."""
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            result = self._dispatch(request)
        except RpcFault as fault:
            return error_response(fault, request_id)
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _dispatch(self, request: object) -> Any:
        if not (
            isinstance(request, dict)
            and request.get("jsonrpc") == "2.0"
            and isinstance(request.get("method"), str)
        ):
            raise RpcFault(-32600, "Invalid request")
        method = self.methods.get(request["method"])
        if method is None:
            raise RpcFault(-32601, "Method not found")
        params = request.get("params", [])
        if not isinstance(params, list):
            raise invalid_params("Invalid params: must be an array")
        try:
            with self.lock:
                return method(params)
        except RpcFault:
            raise
        except (TypeError, ValueError, IndexError, OverflowError) as error:
            raise invalid_params(f"Invalid params: {error}") from None
        except Exception:
            log.exception("%s failed", request["method"])
            raise RpcFault(-32603, "Internal error") from None

    def get_latest_blockhash(self, params: list[Any]) -> Any:
        blockhash, last_valid = self.chain.latest_blockhash()
        return self.context({"blockhash": str(blockhash), "lastValidBlockHeight": last_valid})

    def get_balance(self, params: list[Any]) -> Any:
        return self.context(self.chain.svm.get_balance(_pubkey(params[0])) or 0)

    def get_account_info(self, params: list[Any]) -> Any:
        account = self.chain.svm.get_account(_pubkey(params[0]))
        if account is None:
            return self.context(None)
        raw = bytes(account.data)
        encoding = _config(params, 1).get("encoding", "binary")
        if encoding in {"base58", "binary"} and len(raw) > MAX_BASE58_DATA:
            raise invalid_params(
                "Encoded binary (base 58) data should be less than 128 bytes, "
                "please use Base64 encoding."
            )
        data: object
        if encoding in {"base64", "jsonParsed"}:  # nothing here has a JSON parser
            data = [base64.b64encode(raw).decode(), "base64"]
        elif encoding == "base58":
            data = [base58.encode(raw), "base58"]
        elif encoding == "binary":
            data = base58.encode(raw)
        else:
            raise invalid_params(f"Invalid params: unsupported encoding {encoding!r}")
        return self.context(
            {
                "data": data,
                "executable": account.executable,
                "lamports": account.lamports,
                "owner": str(account.owner),
                "rentEpoch": account.rent_epoch,
                "space": len(raw),
            }
        )

    def get_minimum_balance_for_rent_exemption(self, params: list[Any]) -> Any:
        size = params[0]
        if not isinstance(size, int) or size < 0:
            raise invalid_params("Invalid params: the data length must be a non-negative integer")
        return self.chain.svm.minimum_balance_for_rent_exemption(size)

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        try:
            blockhash = Hash.from_string(str(params[0]))
        except Exception:
            raise invalid_params(f"Invalid param: {params[0]!r} is not a blockhash") from None
        return self.context(self.chain.blockhash_valid(blockhash))

    def send_transaction(self, params: list[Any]) -> Any:
        tx = _decode_transaction(params)
        signature = tx.signatures[0]
        if not _config(params, 1).get("skipPreflight", False):
            if not _signatures_verify(tx):
                raise SIGNATURE_FAILURE
            preflight = self.chain.simulate(tx)
            if preflight.err is not None:
                value = preflight.simulation_value()
                raise RpcFault(
                    -32002, f"Transaction simulation failed: {describe(preflight.err)}", value
                )
        if _signatures_verify(tx):  # the leader drops what does not verify
            self.chain.execute(tx)
        return str(signature)

    def simulate_transaction(self, params: list[Any]) -> Any:
        tx = _decode_transaction(params)
        config = _config(params, 1)
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify and not _signatures_verify(tx):
            raise SIGNATURE_FAILURE
        value = self.chain.simulate(tx, blockhash=not replace).simulation_value()
        if replace:
            blockhash, last_valid = self.chain.latest_blockhash()
            value["replacementBlockhash"] = {
                "blockhash": str(blockhash),
                "lastValidBlockHeight": last_valid,
            }
        return self.context(value)

    def get_signature_statuses(self, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], list):
            raise invalid_params("Invalid params: expected an array of signatures")
        if len(params[0]) > MAX_STATUSES:
            raise invalid_params(f"Too many inputs provided; max {MAX_STATUSES}")
        statuses = []
        for text in params[0]:
            try:
                signature = Signature.from_string(str(text))
            except ValueError:
                raise invalid_params(f"Invalid param: {text!r} is not a signature") from None
            statuses.append(self.chain.status(signature))
        return self.context(statuses)

    def get_recent_prioritization_fees(self, params: list[Any]) -> Any:
        """Per recent block, the lowest compute-unit price a transaction locking the given
        accounts paid in it. A validator takes the block's lowest price, raised to the lowest
        price paid by transactions writing each given account; here a block holds one
        transaction, so both are that transaction's price, whichever accounts are asked."""
        accounts = params[0] if params else []
        if not isinstance(accounts, list):
            raise invalid_params("Invalid params: expected an array of account addresses")
        if len(accounts) > MAX_PRIORITIZATION_ACCOUNTS:
            raise invalid_params(f"Too many inputs provided; max {MAX_PRIORITIZATION_ACCOUNTS}")
        for account in accounts:
            _pubkey(account)
        oldest = self.chain.slot - MAX_PROCESSING_AGE
        return [
            {"slot": block.slot, "prioritizationFee": block.compute_unit_price}
            for block in self.chain.history
            if block.slot > oldest
        ]

    def get_signatures_for_address(self, params: list[Any]) -> Any:
        """Transactions naming the address, newest first, with the RPC's `memo` field."""
        address = _pubkey(params[0] if params else None)
        config = _config(params, 1)
        limit = config.get("limit", MAX_SIGNATURES_FOR_ADDRESS)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_SIGNATURES_FOR_ADDRESS:
            raise invalid_params(f"Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}")
        before = _signature(config["before"]) if config.get("before") else None
        until = _signature(config["until"]) if config.get("until") else None
        found: list[dict[str, Any]] = []
        started = before is None
        for signature, landed in reversed(self.chain.landed.items()):
            if not started:
                started = signature == before
                continue
            if signature == until:
                break
            if address not in landed.keys:
                continue
            status = self.chain.status(signature) or {}
            found.append(
                {
                    "signature": str(signature),
                    "slot": landed.slot,
                    "err": landed.err,
                    "memo": landed.memo(),
                    "blockTime": landed.block_time,
                    "confirmationStatus": status.get("confirmationStatus"),
                }
            )
            if len(found) == limit:
                break
        return found

    def get_transaction(self, params: list[Any]) -> Any:
        """A landed transaction with its status meta, base64 or JSON encoded."""
        signature = _signature(params[0] if params else None)
        config = _config(params, 1)
        landed = self.chain.landed.get(signature)
        if landed is None or landed.transaction is None or landed.outcome is None:
            return None
        tx = landed.transaction
        version = tx.version()
        if not isinstance(version, int):
            version_out: object = "legacy"
        else:
            supported = config.get("maxSupportedTransactionVersion")
            if not isinstance(supported, int) or supported < version:
                raise RpcFault(
                    -32015,
                    f"Transaction version ({version}) is not supported by the requesting "
                    "client. Please try the request again with the following configuration "
                    f'parameter: "maxSupportedTransactionVersion": {version}',
                )
            version_out = version
        encoding = config.get("encoding", "json")
        encoded: object
        if encoding == "base64":
            encoded = [base64.b64encode(bytes(tx)).decode(), "base64"]
        elif encoding == "json":
            encoded = _transaction_json(tx)
        else:
            raise invalid_params(f"Invalid params: unsupported encoding {encoding!r}")
        outcome = landed.outcome
        return {
            "slot": landed.slot,
            "blockTime": landed.block_time,
            "version": version_out,
            "transaction": encoded,
            "meta": {
                "err": landed.err,
                "status": {"Ok": None} if landed.err is None else {"Err": landed.err},
                "fee": outcome.fee,
                "preBalances": list(landed.pre_balances),
                "postBalances": list(landed.post_balances),
                "innerInstructions": [],
                "logMessages": outcome.logs,
                "preTokenBalances": [],
                "postTokenBalances": [],
                "rewards": [],
                "loadedAddresses": {"writable": [], "readonly": []},
                "computeUnitsConsumed": outcome.units_consumed,
            },
        }

    def request_airdrop(self, params: list[Any]) -> Any:
        lamports = params[1]
        if not isinstance(lamports, int) or lamports <= 0:
            raise invalid_params("Invalid params: lamports must be a positive integer")
        return str(self.chain.airdrop(_pubkey(params[0]), lamports))


def error_response(fault: RpcFault, request_id: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": fault.body(), "id": request_id}


def handle_body(rpc: LocalRpc, body: bytes) -> object:
    """The JSON answer to one HTTP request body: a response object, or a list for a batch."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return error_response(RpcFault(-32700, "Parse error"), None)
    if isinstance(request, list):
        if not request:
            return error_response(RpcFault(-32600, "Invalid request"), None)
        return [rpc.answer(item) for item in request]
    return rpc.answer(request)


# -- the server ----------------------------------------------------------------


class LocalSolana:
    """The endpoint on a loopback port: `with LocalSolana() as solana: solana.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the local Solana RPC listens on a loopback address only")
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.chain = LocalChain()
        self.rpc = LocalRpc(self.chain, self.lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def svm(self) -> LiteSVM:
        """The LiteSVM itself, for test set-up; take `lock` while the server runs."""
        return self.chain.svm

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local Solana RPC is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> LocalSolana:
        """Listen (OSError if the port is taken) and serve in a daemon thread."""
        self._server = _make_server(self.rpc, self.host, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="local-solana-rpc",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSolana:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Credit `pubkey` at once, as a landed airdrop transaction."""
        with self.lock:
            return self.chain.airdrop(pubkey, lamports)

    def advance(self, blocks: int = 1) -> None:
        """Produce empty blocks: blockhashes age, statuses gain confirmations."""
        with self.lock:
            self.chain.advance(blocks)


def _make_server(rpc: LocalRpc, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "flowdeploy-local-solana"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._reply(413, b"payload too large", "text/plain")
                return
            answer = handle_body(rpc, self.rfile.read(length))
            self._reply(200, json.dumps(answer).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, b"ok", "text/plain")
            else:
                self._reply(405, b"Used HTTP Method is not allowed. POST or OPTIONS is required")

        def _reply(self, status: int, payload: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowdeploy.local.solana_rpc")
    parser.add_argument("--port", type=int, default=8899, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    solana = LocalSolana(port=args.port)
    try:
        solana.start()
    except OSError as error:
        print(f"cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"local Solana RPC (LiteSVM, in memory) on {solana.url}; stop with Ctrl-C", flush=True)
    print(f"FLOWDEPLOY_SOLANA_RPC={solana.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        solana.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
