"""The product's Solana JSON-RPC client: stdlib HTTP, solders values at the edges.

One code path for real clusters and the local LiteSVM endpoint. Every call has a
timeout; reads are retried with backoff on transport errors and HTTP 429/5xx;
`send` only on transport errors (the same signed bytes cannot land twice). The
JSON-RPC envelope is checked here, before anything is parsed, and responses are
read as plain JSON: solders' response parsers can panic on unusual error shapes.
Messages name the method and the endpoint's origin only, never its path or query,
where providers put API keys.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import itertools
import json
import random
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from flowdeploy.netguard import AddressRefused, connection_classes
from flowdeploy.solana import MAX_TRANSACTION_SIZE
from flowdeploy.solana.errors import describe

T = TypeVar("T")

# getAccountInfo of a 10 MiB account is ~14 MB of base64; nothing legitimate is larger.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_STATUSES_PER_CALL = 256  # getSignatureStatuses' limit
MAX_SIGNATURES_PER_CALL = 1000  # getSignaturesForAddress' limit (and default)
MAX_PRIORITIZATION_ACCOUNTS = 128  # getRecentPrioritizationFees' limit
LOG_LINES_IN_MESSAGES = 8
_ids = itertools.count(1)


class RpcError(Exception):
    """The cluster answered with a JSON-RPC error (or something that is not an answer)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        data: object | None = None,
        method: str = "",
        url: str = "",
        detail: str = "",
        text: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        self.url = url
        where = f"Solana RPC {url}: " if url else ""
        what = f"{method} failed: " if method else ""
        super().__init__(text or f"{where}{what}{message}{detail}")


class RpcUnavailable(RpcError):
    """No answer after retries: transport failure, timeout, HTTP 429 or 5xx."""

    def __init__(self, url: str, reason: str, *, method: str = "") -> None:
        super().__init__(
            reason, method=method, url=url, text=f"Solana RPC {url} unreachable: {reason}"
        )


class TransactionExpired(RpcError):
    """The block height passed the transaction's last valid block height: it can never land."""


class ConfirmationTimeout(RpcError):
    """The transaction was neither confirmed nor expired within the time given."""


class TransactionFailed(Exception):
    """The transaction landed on chain with an error (its fee is still charged)."""

    def __init__(self, err: object, signature: str | None = None) -> None:
        self.err = err
        self.signature = signature
        subject = f"transaction {signature}" if signature else "transaction"
        super().__init__(f"{subject} failed: {describe(err)} (err {_compact(err)})")


@dataclass(frozen=True)
class Simulation:
    err: object | None
    logs: list[str]
    units_consumed: int | None


@dataclass(frozen=True)
class SignatureInfo:
    """One entry of getSignaturesForAddress: a transaction naming the address."""

    signature: Signature
    slot: int
    err: object | None
    memo: str | None  # the RPC's memo field: "[<bytes>] <text>", several joined by "; "
    confirmation_status: str | None


@dataclass(frozen=True)
class LandedTransaction:
    """A transaction in a block (getTransaction) and its outcome."""

    transaction: VersionedTransaction
    slot: int
    err: object | None


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def display_url(url: str) -> str:
    """The endpoint as messages show it: its origin, with "/…" for a hidden path or query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    hidden = "/…" if parts.path not in {"", "/"} or parts.query else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


class SolanaRpc:
    """A blocking JSON-RPC client for one endpoint; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        allow_private: bool | None = None,
        commitment: str = "confirmed",
        backoff: float = 0.25,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = display_url(url) if parts.scheme else url[:40]
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise RpcError(f"the URL must be http(s)://host[:port][/path], not {self.url!r}")
        if allow_private is None:
            from flowdeploy.settings import settings

            allow_private = settings().http_allow_private
        plain, secure = connection_classes(allow_private)
        self._connection = secure if parts.scheme == "https" else plain
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "flowdeploy",
        }
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self.timeout = timeout
        self.retries = retries
        self.commitment = commitment
        self.backoff = backoff

    # -- reads ---------------------------------------------------------------

    def latest_blockhash(self) -> tuple[Hash, int]:
        """(blockhash, lastValidBlockHeight) at the client's commitment."""
        method = "getLatestBlockhash"
        value = self._value(method, self._call(method, [{"commitment": self.commitment}]))
        if not isinstance(value, dict):
            raise self._unexpected(method, value)
        blockhash = self._parse(method, Hash.from_string, value.get("blockhash"))
        return blockhash, self._int(method, value.get("lastValidBlockHeight"))

    def block_height(self) -> int:
        method = "getBlockHeight"
        return self._int(method, self._call(method, [{"commitment": self.commitment}]))

    def balance(self, pubkey: Pubkey) -> int:
        """Lamports held by `pubkey` (0 for an account that does not exist)."""
        method = "getBalance"
        result = self._call(method, [str(pubkey), {"commitment": self.commitment}])
        return self._int(method, self._value(method, result))

    def account_info(self, pubkey: Pubkey) -> dict[str, Any] | None:
        """{"lamports": int, "owner": Pubkey, "data": bytes, "executable": bool}, or None when
        the account does not exist."""
        method = "getAccountInfo"
        params = [str(pubkey), {"encoding": "base64", "commitment": self.commitment}]
        value = self._value(method, self._call(method, params))
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._unexpected(method, value)
        data = value.get("data")
        if not (isinstance(data, list) and len(data) == 2 and data[1] == "base64"):
            raise self._unexpected(method, data)
        try:
            raw = base64.b64decode(str(data[0]), validate=True)
        except (binascii.Error, ValueError):
            raise self._unexpected(method, "data that is not base64") from None
        return {
            "lamports": self._int(method, value.get("lamports")),
            "owner": self._parse(method, Pubkey.from_string, value.get("owner")),
            "data": raw,
            "executable": bool(value.get("executable")),
        }

    def genesis_hash(self) -> Hash:
        """The cluster's genesis hash: what names the chain (CAIP-2 `solana:<first 32>`)."""
        method = "getGenesisHash"
        return self._parse(method, Hash.from_string, self._call(method, []))

    def recent_prioritization_fees(self, accounts: Sequence[Pubkey]) -> list[int]:
        """Micro-lamports per compute unit that landed a transaction writing `accounts`, one
        number per recent block (up to 150), oldest first."""
        method = "getRecentPrioritizationFees"
        keys = [str(key) for key in accounts[:MAX_PRIORITIZATION_ACCOUNTS]]
        result = self._call(method, [keys])
        if not isinstance(result, list):
            raise self._unexpected(method, result)
        fees = []
        for entry in result:
            if not isinstance(entry, dict):
                raise self._unexpected(method, entry)
            fees.append(self._int(method, entry.get("prioritizationFee")))
        return fees

    def minimum_balance_for_rent_exemption(self, size: int) -> int:
        """Lamports an account of `size` data bytes needs to be rent-exempt."""
        method = "getMinimumBalanceForRentExemption"
        return self._int(method, self._call(method, [size, {"commitment": self.commitment}]))

    def signature_statuses(
        self, sigs: Sequence[Signature], *, search_history: bool = False
    ) -> list[dict[str, Any] | None]:
        """For each signature {"slot", "confirmations", "err", "confirmationStatus"}, or None
        when the cluster has not seen it."""
        method = "getSignatureStatuses"
        statuses: list[dict[str, Any] | None] = []
        for start in range(0, len(sigs), MAX_STATUSES_PER_CALL):
            chunk = [str(s) for s in sigs[start : start + MAX_STATUSES_PER_CALL]]
            params = [chunk, {"searchTransactionHistory": search_history}]
            value = self._value(method, self._call(method, params))
            if not isinstance(value, list) or len(value) != len(chunk):
                raise self._unexpected(method, value)
            for status in value:
                if status is None:
                    statuses.append(None)
                elif isinstance(status, dict):
                    statuses.append(
                        {
                            "slot": status.get("slot"),
                            "confirmations": status.get("confirmations"),
                            "err": status.get("err"),
                            "confirmationStatus": status.get("confirmationStatus"),
                        }
                    )
                else:
                    raise self._unexpected(method, status)
        return statuses

    def signatures_for_address(
        self,
        address: Pubkey,
        *,
        until: Signature | None = None,
        before: Signature | None = None,
        limit: int = MAX_SIGNATURES_PER_CALL,
    ) -> list[SignatureInfo]:
        """Transactions naming `address`, newest first: those after `until` (exclusive) and
        before `before` (exclusive), at most `limit`, at the client's commitment."""
        method = "getSignaturesForAddress"
        config: dict[str, Any] = {"limit": limit, "commitment": self.commitment}
        if until is not None:
            config["until"] = str(until)
        if before is not None:
            config["before"] = str(before)
        result = self._call(method, [str(address), config])
        if not isinstance(result, list):
            raise self._unexpected(method, result)
        found = []
        for entry in result:
            if not isinstance(entry, dict):
                raise self._unexpected(method, entry)
            memo, status = entry.get("memo"), entry.get("confirmationStatus")
            found.append(
                SignatureInfo(
                    signature=self._parse(method, Signature.from_string, entry.get("signature")),
                    slot=self._int(method, entry.get("slot")),
                    err=entry.get("err"),
                    memo=memo if isinstance(memo, str) else None,
                    confirmation_status=status if isinstance(status, str) else None,
                )
            )
        return found

    def transaction(self, signature: Signature) -> LandedTransaction | None:
        """The landed transaction `signature` with its slot and error; None if the cluster
        has none (not landed, or not at the client's commitment)."""
        method = "getTransaction"
        config = {
            "encoding": "base64",
            "commitment": self.commitment,
            "maxSupportedTransactionVersion": 0,
        }
        result = self._call(method, [str(signature), config])
        if result is None:
            return None
        if not isinstance(result, dict):
            raise self._unexpected(method, result)
        encoded, meta = result.get("transaction"), result.get("meta")
        if not (isinstance(encoded, list) and len(encoded) == 2 and encoded[1] == "base64"):
            raise self._unexpected(method, encoded)
        if not isinstance(meta, dict):
            raise self._unexpected(method, meta)
        try:
            raw = base64.b64decode(str(encoded[0]), validate=True)
            transaction = VersionedTransaction.from_bytes(raw)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # binascii.Error, ValueError or a solders panic
            raise self._unexpected(method, "a transaction that does not decode") from None
        slot = self._int(method, result.get("slot"))
        return LandedTransaction(transaction, slot, meta.get("err"))

    def simulate(self, tx: VersionedTransaction, *, sig_verify: bool = False) -> Simulation:
        """Run `tx` against the cluster's current state without landing it."""
        method = "simulateTransaction"
        config = {
            "encoding": "base64",
            "sigVerify": sig_verify,
            "replaceRecentBlockhash": False,
            "commitment": self.commitment,
        }
        value = self._value(method, self._call(method, [self._wire(method, tx), config]))
        if not isinstance(value, dict):
            raise self._unexpected(method, value)
        logs = value.get("logs") or []
        units = value.get("unitsConsumed")
        return Simulation(
            err=value.get("err"),
            logs=[str(line) for line in logs] if isinstance(logs, list) else [],
            units_consumed=units if isinstance(units, int) else None,
        )

    # -- writes --------------------------------------------------------------

    def send(self, tx: VersionedTransaction) -> Signature:
        """Submit `tx` after the cluster's preflight simulation; its first signature.

        A preflight failure is an RpcError carrying the simulation's err and logs. An
        "already processed" answer means these exact bytes were accepted before (e.g. a
        retry after a lost response): that is success.
        """
        method = "sendTransaction"
        config = {
            "encoding": "base64",
            "skipPreflight": False,
            "preflightCommitment": self.commitment,
        }
        signature = tx.signatures[0]
        try:
            result = self._call(method, [self._wire(method, tx), config], idempotent=False)
        except RpcUnavailable:
            raise
        except RpcError as error:
            if _already_processed(error):
                return signature
            raise
        return self._parse(method, Signature.from_string, result)

    def request_airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Ask a faucet-enabled cluster (devnet, testnet, local) for lamports."""
        method = "requestAirdrop"
        result = self._call(
            method, [str(pubkey), lamports, {"commitment": self.commitment}], idempotent=False
        )
        return self._parse(method, Signature.from_string, result)

    def confirm(
        self,
        sig: Signature,
        last_valid_block_height: int,
        *,
        timeout: float = 60.0,
        poll: float = 0.5,
    ) -> None:
        """Return once `sig` is confirmed or finalized. TransactionFailed when it landed with an
        error; TransactionExpired once the block height passes `last_valid_block_height`
        without it; ConfirmationTimeout after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.signature_statuses([sig])[0]
            if status is None:
                height = self.block_height()
                if height > last_valid_block_height:
                    # It may have landed in the very last valid block: look once more.
                    status = self.signature_statuses([sig])[0]
                    if status is None:
                        raise TransactionExpired(
                            f"transaction {sig} expired: block height {height} passed its "
                            f"last valid block height {last_valid_block_height} before it "
                            "was confirmed",
                            method="confirm",
                            url=self.url,
                        )
            if status is not None:
                if status["err"] is not None:
                    raise TransactionFailed(status["err"], str(sig))
                if status["confirmationStatus"] in {"confirmed", "finalized"} or (
                    status["confirmationStatus"] is None and status["confirmations"] is None
                ):  # nodes before 1.5 said "finalized" only by confirmations: null
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfirmationTimeout(
                    f"transaction {sig} was not confirmed within {timeout:g} s",
                    method="confirm",
                    url=self.url,
                )
            time.sleep(min(poll, remaining))

    # -- plumbing ------------------------------------------------------------

    def _wire(self, method: str, tx: VersionedTransaction) -> str:
        raw = bytes(tx)
        if len(raw) > MAX_TRANSACTION_SIZE:
            raise RpcError(
                f"the transaction is {len(raw)} bytes, over the {MAX_TRANSACTION_SIZE}-byte "
                "limit of a Solana transaction",
                method=method,
                url=self.url,
            )
        return base64.b64encode(raw).decode()

    def _call(self, method: str, params: list[Any], *, idempotent: bool = True) -> Any:
        """The `result` of one JSON-RPC call, retried as the module docstring says."""
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
        ).encode()
        reason = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, retry_after))
            try:
                status, headers, payload = self._post(body)
            except AddressRefused as error:
                raise RpcError(str(error), method=method, url=self.url) from None
            except (OSError, http.client.HTTPException) as error:
                reason = _transport_reason(error, self.timeout)
                retry_after = None
                continue
            if status == 429 or status >= 500:
                reason = f"HTTP {status}"
                retry_after = _seconds(headers.get("retry-after"))
                if idempotent:
                    continue
                raise RpcUnavailable(self.url, f"{method}: {reason}", method=method)
            return self._result(method, status, payload)
        attempts = f" ({self.retries + 1} attempts)" if self.retries else ""
        raise RpcUnavailable(self.url, f"{method}: {reason}{attempts}", method=method)

    def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + self.timeout
        connection = self._connection(self._host, self._port, timeout=self.timeout)
        try:
            connection.request("POST", self._target, body, self._headers)
            response = connection.getresponse()
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read1(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise http.client.HTTPException(
                        f"the response is over {MAX_RESPONSE_BYTES} bytes"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError("timed out reading the response")
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, b"".join(chunks)
        finally:
            connection.close()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self.backoff * 2.0 ** (attempt - 1) * (0.5 + random.random())  # noqa: S311
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, 5.0)

    def _result(self, method: str, status: int, payload: bytes) -> Any:
        try:
            envelope = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            envelope = None
        if not isinstance(envelope, dict) or not ({"result", "error"} & envelope.keys()):
            snippet = payload[:200].decode(errors="replace").replace("\n", " ")
            raise RpcError(
                f"answered HTTP {status} with no JSON-RPC response: {snippet!r}",
                method=method,
                url=self.url,
            )
        error = envelope.get("error")
        if error is not None:
            raise self._error(method, error)
        return envelope.get("result")

    def _error(self, method: str, error: object) -> RpcError:
        if not isinstance(error, dict):
            return RpcError(_compact(error), method=method, url=self.url)
        code = error.get("code")
        message = str(error.get("message") or "error without a message")
        data = error.get("data")
        detail = f" (code {code})" if isinstance(code, int) else ""
        if isinstance(data, dict) and "err" in data:
            err = data.get("err")
            if err is not None and _compact(err) not in message:
                detail += f"; err {_compact(err)}"
            logs = data.get("logs")
            if isinstance(logs, list) and logs:
                tail = [str(line) for line in logs[-LOG_LINES_IN_MESSAGES:]]
                skipped = f"… {len(logs) - len(tail)} more | " if len(logs) > len(tail) else ""
                detail += f"; logs: {skipped}{' | '.join(tail)}"
        return RpcError(
            message,
            code=code if isinstance(code, int) else None,
            data=data,
            method=method,
            url=self.url,
            detail=detail,
        )

    def _value(self, method: str, result: Any) -> Any:
        """The `value` of an RpcResponse ({"context": …, "value": …})."""
        if not isinstance(result, dict) or "value" not in result:
            raise self._unexpected(method, result)
        return result["value"]

    def _int(self, method: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._unexpected(method, value)
        return value

    def _parse(self, method: str, parse: Callable[[str], T], value: Any) -> T:
        if not isinstance(value, str):
            raise self._unexpected(method, value)
        try:
            return parse(value)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # solders raises ValueError, ParseHashError or even a panic
            raise self._unexpected(method, value) from None

    def _unexpected(self, method: str, value: Any) -> RpcError:
        return RpcError(f"unexpected result {_compact(value)[:200]}", method=method, url=self.url)


def _already_processed(error: RpcError) -> bool:
    err = error.data.get("err") if isinstance(error.data, dict) else None
    return err == "AlreadyProcessed" or "already been processed" in error.message


def _transport_reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no response within {timeout:g} s"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if type(error).__name__ not in text else text


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
