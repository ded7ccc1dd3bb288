"""Wallet sign-in: a wallet signs a message we issued and becomes a user, with an access
token our own auth accepts; and `claim_token`, an access token for an API key's user.

`POST /auth/init` hands out a message naming the site, the wallet, a nonce and its expiry;
the nonce carries its own MAC, so issuing it stores nothing. `POST /auth/confirm` takes
`<message>.<base58 signature>` (upstream's token), checks the MAC, the expiry and the
ed25519 signature, then marks the nonce used (a conditional write: a replay is a 401) and
records the sign-in. A wallet's user id is derived from its public key, so it is the same
user on every sign-in; the response is upstream's `ConfirmAuthOutput`, a Supabase-like
session. We issue no refresh tokens: `refresh_token` is empty, sign in again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from flowdeploy import base58
from flowdeploy.auth import JWT_AUDIENCE, Caller, issue_access_token
from flowdeploy.errors import BadRequest, Unauthorized
from flowdeploy.ids import timestamp
from flowdeploy.settings import jwt_secret, settings
from flowdeploy.store import sign_in as store

HEADER = "space-operator authentication\n\n"
NONCE_SECONDS = 300
# Wallet users' ids: uuid5 of "solana:<public key>" in this fixed namespace.
USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/flowdeploy/wallet-users")
_NONCE_RANDOM = 16
_NONCE_MAC = 16
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DOMAIN = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")
# A message is short; its token adds a '.' and at most 88 signature characters.
MAX_TOKEN_LENGTH = 2_048
_MESSAGE = re.compile(
    re.escape(HEADER) + r"(?P<domain>\S+) wants you to sign in with your Solana account:\n"
    r"(?P<pubkey>[1-9A-HJ-NP-Za-km-z]{32,44})\n\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9_-]+)\n"
    r"Issued At: (?P<issued>\S+)\n"
    r"Expiration Time: (?P<expires>\S+)"
)


class InitAuthParams(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    pubkey: Annotated[str, StringConstraints(min_length=32, max_length=44)]


class ConfirmAuthParams(BaseModel):
    """`token`: the message from `/auth/init`, a '.', and the wallet's base58 signature of it."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    token: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_LENGTH)]


def user_id_of(pubkey: str) -> str:
    """The user a wallet signs in as: the same for every sign-in of that public key."""
    return str(uuid.uuid5(USER_NAMESPACE, f"solana:{pubkey}"))


def init(pubkey: str, domain: str, now: float | None = None) -> str:
    """The message `pubkey` must sign to sign in at `domain` within NONCE_SECONDS."""
    if not base58.is_pubkey(pubkey):
        raise BadRequest("pubkey: must be a base58 public key (32 bytes)")
    if not _DOMAIN.fullmatch(domain):
        domain = "flowdeploy"
    issued = int(time.time() if now is None else now)
    expires = issued + NONCE_SECONDS
    random = secrets.token_bytes(_NONCE_RANDOM)
    nonce = _b64(random + _mac(domain, pubkey, random, issued, expires))
    return _render(domain, pubkey, nonce, issued, expires)


def confirm(token: str, now: float | None = None) -> dict[str, Any]:
    """The session of the wallet that signed the message in `token`; 401 if the message is
    not one we issued, expired, already used, or the signature is not the wallet's."""
    moment = time.time() if now is None else now
    message, _, signature_text = token.rpartition(".")
    found = _MESSAGE.fullmatch(message)
    if found is None:
        raise Unauthorized("sign-in failed: not a message from POST /auth/init")
    domain, pubkey, nonce = found["domain"], found["pubkey"], found["nonce"]
    issued, expires = _epoch(found["issued"]), _epoch(found["expires"])
    random = _nonce_random(nonce, domain, pubkey, issued, expires)
    if message != _render(domain, pubkey, nonce, issued, expires):
        raise Unauthorized("sign-in failed: the message was altered")
    if moment >= expires:
        raise Unauthorized("sign-in failed: the message expired; ask POST /auth/init again")
    _verify_signature(pubkey, message.encode(), signature_text)
    if not store.use_nonce(random.hex(), remove_at=expires + 60):
        raise Unauthorized("sign-in failed: this message was already used")
    user_id = user_id_of(pubkey)
    user = store.record_sign_in(pubkey, user_id, timestamp())
    session = _session(user_id, int(moment), user.created_at, {"pubkey": pubkey})
    return {"session": session, "new_user": int(user.sign_ins) == 1}


def claim_token(caller: Caller | None, now: float | None = None) -> dict[str, Any]:
    """An access token for the user of the API key the caller sent (upstream's claim_token)."""
    if caller is None or caller.via != "api_key" or caller.user_id is None:
        raise Unauthorized("claim_token needs an API key: send it as x-api-key")
    moment = int(time.time() if now is None else now)
    lifetime = settings().access_token_lifetime_seconds
    return {
        "user_id": caller.user_id,
        "access_token": issue_access_token(caller.user_id, jwt_secret(), lifetime),
        "refresh_token": "",
        "expires_at": moment + lifetime,
    }


def _session(
    user_id: str, moment: int, created_at: str, metadata: dict[str, str]
) -> dict[str, Any]:
    lifetime = settings().access_token_lifetime_seconds
    return {
        "access_token": issue_access_token(user_id, jwt_secret(), lifetime),
        "token_type": "bearer",
        "expires_in": lifetime,
        "expires_at": moment + lifetime,
        "refresh_token": "",
        "user": {
            "id": user_id,
            "aud": JWT_AUDIENCE,
            "role": JWT_AUDIENCE,
            "created_at": created_at,
            "app_metadata": {"provider": "solana", "providers": ["solana"]},
            "user_metadata": metadata,
        },
    }


def _render(domain: str, pubkey: str, nonce: str, issued: int, expires: int) -> str:
    return (
        f"{HEADER}{domain} wants you to sign in with your Solana account:\n{pubkey}\n\n"
        f"Nonce: {nonce}\nIssued At: {_iso(issued)}\nExpiration Time: {_iso(expires)}"
    )


def _mac(domain: str, pubkey: str, random: bytes, issued: int, expires: int) -> bytes:
    key = hmac.new(jwt_secret(), b"flowdeploy sign-in nonce", hashlib.sha256).digest()
    data = b"\0".join(
        [domain.encode(), pubkey.encode(), random, str(issued).encode(), str(expires).encode()]
    )
    return hmac.new(key, data, hashlib.sha256).digest()[:_NONCE_MAC]


def _nonce_random(nonce: str, domain: str, pubkey: str, issued: int, expires: int) -> bytes:
    """The nonce's random part, if its MAC shows we issued it for these fields."""
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    random, mac = raw[:_NONCE_RANDOM], raw[_NONCE_RANDOM:]
    if len(raw) != _NONCE_RANDOM + _NONCE_MAC or not hmac.compare_digest(
        mac, _mac(domain, pubkey, random, issued, expires)
    ):
        raise Unauthorized("sign-in failed: not a message from POST /auth/init (or altered)")
    return random


def _verify_signature(pubkey: str, message: bytes, text: str) -> None:
    from solders.pubkey import Pubkey
    from solders.signature import Signature

    try:
        raw = base58.decode(text)
    except ValueError:
        raw = b""
    if len(raw) != 64 or not Signature.from_bytes(raw).verify(Pubkey.from_string(pubkey), message):
        raise Unauthorized(f"sign-in failed: not {pubkey}'s signature of the message")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_TIME_FORMAT)


def _epoch(text: str) -> int:
    try:
        return int(datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise Unauthorized("sign-in failed: not a message from POST /auth/init") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
