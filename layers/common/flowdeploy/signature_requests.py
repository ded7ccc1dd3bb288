"""Signature requests: a running run waits for a signature only its signer can make.

The run opens a request (`open_request`) and polls it; the signer reads it in upstream's
shape (`request_json`, the one serialization of a request: the HTTP routes use it, and so
does the WebSocket `SignatureRequest` event) and answers it with `submit`, which needs no
credentials: the signature proves itself. It is verified against the request's key and
message (or the wallet's changed message, if that kept the transaction's logic) before it
is stored, with one read and one conditional write.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from flowdeploy import base58, run_output
from flowdeploy.errors import BadRequest, Conflict, NotFound
from flowdeploy.store import runs as run_store
from flowdeploy.store import signature_requests as store
from flowdeploy.store.models import FlowRunItem, SignatureRequestItem

# Ids are JSON integers that JavaScript reads exactly (Number.MAX_SAFE_INTEGER).
MAX_ID = 2**53 - 1
TRANSACTION_MESSAGE: Literal["transaction_message"] = "transaction_message"
MESSAGE: Literal["message"] = "message"
# Kept a day after it expires (DynamoDB TTL), so a late answer still gets a precise 409.
KEEP_SECONDS = 86_400
# A transaction message is at most 1,232 bytes: its base64 is at most 1,644 characters.
MAX_MESSAGE_TEXT = 1_700
SIGNATURE_TEXT = Annotated[str, StringConstraints(min_length=1, max_length=100)]
MESSAGE_TEXT = Annotated[str, StringConstraints(max_length=MAX_MESSAGE_TEXT)]
# A signer waits on the answer: GET polls the run at most this far apart while it waits.
MAX_WAIT_PAUSE_SECONDS = 0.5
# The whole body of POST /signature/submit (the route takes no credentials): a little more
# than its three fields can ever need.
MAX_SUBMIT_BYTES = 4_096


class SubmitSignatureParams(BaseModel):
    """Upstream's `POST /signature/submit` body: the request `id`, the signer's ed25519
    `signature` (base58) and, if the wallet changed the message, `new_msg` (base64)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
    signature: SIGNATURE_TEXT
    new_msg: MESSAGE_TEXT | None = None


class RunSignatureParams(BaseModel):
    """`POST /flow_run/{id}/signature`: the same answer, for the run's open request (`id`,
    when given, must name it)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    signature: SIGNATURE_TEXT
    id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)] | None = None
    new_msg: MESSAGE_TEXT | None = None


def request_json(item: SignatureRequestItem) -> dict[str, Any]:
    """A request in upstream's shape (`SignatureRequest` of flow-lib, as the clients read it):
    `time` in epoch milliseconds, `timeout` in seconds, `message` base64."""
    shown: dict[str, Any] = {
        "id": int(item.id),
        "time": int(item.time),
        "pubkey": item.pubkey,
        "message": item.message,
        "timeout": float(item.timeout),
        "kind": item.kind,
        "flow_run_id": item.flow_run_id,
    }
    if item.signatures:
        shown["signatures"] = [dict(presigner) for presigner in item.signatures]
    return shown


# -- The signer's side ---------------------------------------------------------------


def pending_request(run: FlowRunItem, wait: float = 0.0) -> dict[str, Any]:
    """The run's open request, in upstream's shape; while the run goes on without one, wait
    up to `wait` seconds for it (upstream's route waits for the run to ask); then 404."""
    _, item = wait_for_request(run, wait)
    if item is None:
        raise NotFound(f"flow run {run.id} has no pending signature request")
    return request_json(item)


def wait_for_request(
    run: FlowRunItem, wait: float, pubkey: str | None = None
) -> tuple[FlowRunItem | None, SignatureRequestItem | None]:
    """(the run as last read, its open request) once the run asks `pubkey` (anyone, if
    None) for a signature, waiting up to `wait` seconds; (the final run, None) if it ends
    first; (None, None) if neither happens in time."""
    stale: set[str] = set()
    found: list[SignatureRequestItem] = []

    def asks(current: FlowRunItem) -> bool:
        request_id = current.signature_request_id
        if current.status != run_store.RUNNING or not request_id or request_id in stale:
            return False
        item = store.get(int(request_id))
        if (
            item is None
            or item.signature
            or item.closed
            or time.time() >= float(item.expires_at)
            or (pubkey is not None and item.pubkey != pubkey)
        ):
            stale.add(request_id)  # answered, given up or someone else's: wait for the next
            return False
        found.append(item)
        return True

    if asks(run):
        return run, found[-1]
    current = run_output.wait_until(run, wait, asks, max_pause=MAX_WAIT_PAUSE_SECONDS)
    return current, found[-1] if found else None


def request_transaction(item: SignatureRequestItem) -> str:
    """The request as a transaction (base64), as `SignatureRequest.buildTransaction()` of
    the clients makes it: the message with the signatures already made, 64 zero bytes in
    every other signer's slot."""
    from solders.message import from_bytes_versioned
    from solders.signature import Signature
    from solders.transaction import VersionedTransaction

    message = from_bytes_versioned(base64.b64decode(item.message))
    given = {entry["pubkey"]: entry["signature"] for entry in item.signatures or []}
    signers = message.account_keys[: message.header.num_required_signatures]
    signatures = [
        Signature.from_string(given[str(key)]) if str(key) in given else Signature.default()
        for key in signers
    ]
    return base64.b64encode(bytes(VersionedTransaction.populate(message, signatures))).decode()


def submit(request_id: int, signature_text: str, new_msg_text: str | None = None) -> None:
    """Answer request `request_id`: 404 unknown, 400 if the signature does not verify or the
    new message changes the transaction, 409 once answered, expired, given up or sent by
    the wallet itself (found on chain)."""
    item = store.get(request_id)
    if item is None:
        raise NotFound(f"signature request not found: {request_id}")
    now = time.time()
    _require_open(item, now)
    message = base64.b64decode(item.message)
    new_message = _new_message(item, message, new_msg_text)
    signature = _verified(item, signature_text, new_message or message)
    stored_message = base64.b64encode(new_message).decode() if new_message else None
    if not store.answer(request_id, signature, stored_message, now):
        # Taken in between (another answer, or the transaction found on chain): say which.
        current = store.get(request_id)
        if current is not None:
            _require_open(current, time.time())
        raise Conflict(f"signature request {request_id} is no longer pending")


def submit_for_run(run: FlowRunItem, params: RunSignatureParams) -> int:
    """Answer the run's open request (the run-scoped route); its id."""
    request_id = run.signature_request_id if run.status == run_store.RUNNING else None
    if request_id is None:
        raise Conflict(f"flow run {run.id} has no pending signature request")
    if params.id is not None and params.id != int(request_id):
        raise Conflict(f"signature request {params.id} is not the run's pending request")
    submit(int(request_id), params.signature, params.new_msg)
    return int(request_id)


def _require_open(item: SignatureRequestItem, now: float) -> None:
    if item.signature:
        raise Conflict(f"signature request {item.id} was already answered")
    if item.landed_signature:
        raise Conflict(
            f"signature request {item.id} is no longer pending: the wallet sent the "
            f"transaction itself, {item.landed_signature} landed and the run went on with it"
        )
    if item.closed:
        raise Conflict(f"signature request {item.id} is no longer pending: its run stopped waiting")
    if now >= float(item.expires_at):
        ago = now - float(item.expires_at)
        raise Conflict(f"signature request {item.id} expired {ago:.0f} s ago")


def _new_message(item: SignatureRequestItem, message: bytes, text: str | None) -> bytes | None:
    """The wallet's changed message, if it sent one that keeps the transaction's logic."""
    if text is None:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("new_msg: not base64") from None
    if raw == message:
        return None
    if item.kind != TRANSACTION_MESSAGE:
        raise BadRequest(f"new_msg: signature request {item.id} is a message; it cannot change")
    if item.signatures:
        raise BadRequest(
            "new_msg: could not update tx because it will invalidate existing signature"
        )
    from flowdeploy.solana.message_logic import MessageChanged, same_message_logic

    try:
        same_message_logic(message, raw)
    except MessageChanged as change:
        raise BadRequest(f"new_msg changes the transaction: {change}") from None
    return raw


def _verified(item: SignatureRequestItem, text: str, message: bytes) -> str:
    """The base58 signature, once it verifies as `item.pubkey`'s signature of `message`."""
    from solders.pubkey import Pubkey
    from solders.signature import Signature

    try:
        raw = base58.decode(text)
    except ValueError as error:
        raise BadRequest(f"signature: not base58: {error}") from None
    if len(raw) != 64:
        raise BadRequest(f"signature: an ed25519 signature is 64 bytes, got {len(raw)}")
    signature = Signature.from_bytes(raw)
    if not signature.verify(Pubkey.from_string(item.pubkey), message):
        which = "the new message" if message != base64.b64decode(item.message) else "the message"
        raise BadRequest(f"signature verification failed: not {item.pubkey}'s signature of {which}")
    return str(signature)


# -- The run's side --------------------------------------------------------------------


class RunNotRunning(Exception):
    """The run ended before it could ask for a signature."""


def open_request(
    run_id: str,
    pubkey: str,
    message: bytes,
    timeout: float,
    presigners: Sequence[tuple[str, str]] = (),
    kind: str = TRANSACTION_MESSAGE,
) -> SignatureRequestItem:
    """Open a request for `pubkey`'s signature of `message` on a running run."""
    now = time.time()
    for _ in range(5):  # a taken id is a 1-in-9e15 event; five tries are plenty
        item = SignatureRequestItem(
            secrets.randbelow(MAX_ID) + 1,
            flow_run_id=run_id,
            pubkey=pubkey,
            message=base64.b64encode(message).decode(),
            kind=kind,
            time=int(now * 1000),
            timeout=timeout,
            expires_at=now + timeout,
            signatures=[{"pubkey": key, "signature": sig} for key, sig in presigners] or None,
            remove_at=int(now + timeout + KEEP_SECONDS),
        )
        if store.insert(item):
            break
    else:
        raise RuntimeError("no free signature request id after 5 tries")
    request_id = int(item.id)
    if run_store.open_signature_request(run_id, request_id) is None:
        store.close(request_id)
        raise RunNotRunning(f"flow run {run_id} is no longer running")
    return item


def answer_of(request_id: int) -> tuple[str, bytes | None] | None:
    """(signature, the wallet's new message or None) once the request was answered."""
    item = store.get(request_id)
    if item is None or not item.signature:
        return None
    new_message = base64.b64decode(item.new_message) if item.new_message else None
    return item.signature, new_message


def settle_on_chain(request_id: int, landed_signature: str) -> bool:
    """The request's transaction landed, sent by the signer's wallet: close the request
    unless an answer came first (True if the chain won; a later answer is then a 409)."""
    return store.settle_on_chain(request_id, landed_signature)


def close_request(run_id: str, request_id: int) -> None:
    """The run stops waiting: no answer is taken any more."""
    store.close(request_id)
    run_store.close_signature_request(run_id, request_id)
