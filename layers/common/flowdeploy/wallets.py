"""Server-held Solana wallets: generated or imported, their secret keys encrypted with KMS.

The secret key never leaves this module but as a `Keypair` handed to the signer
(`signing_keypair`): it is not returned, logged, put in an exception or a repr.
solders is imported inside the functions that need it, so routes that only list
or delete wallets do not pay for loading it at cold start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError

from flowdeploy import base58, paging
from flowdeploy.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    describe,
)
from flowdeploy.ids import new_id, parse_uuid, timestamp
from flowdeploy.store import wallet_key
from flowdeploy.store import wallets as store
from flowdeploy.store.models import WalletItem

if TYPE_CHECKING:
    from solders.keypair import Keypair

KEYPAIR_BYTES = 64


class WalletUnavailable(Exception):
    """A wallet cannot sign: it was deleted, or KMS refused to decrypt its key."""

    def __init__(self, wallet_id: str, message: str) -> None:
        super().__init__(message)
        self.wallet_id = wallet_id


class NewWallet(BaseModel):
    """POST /wallet: a name, and optionally a keypair to import (else one is generated)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    keypair: SecretStr | None = Field(
        default=None,
        description="base58 of the 64-byte secret key (secret ‖ public), as solana-keygen "
        "and Phantom export it; omit it to have a new keypair generated",
    )


@dataclass(frozen=True)
class Wallet:
    """A user's wallet, without its secret."""

    id: str
    user_id: str
    name: str
    pubkey: str
    created_at: str
    # False for an adapter wallet: the key stays in the user's wallet app.
    holds_secret: bool = True
    details: dict[str, str | None] | None = None

    def row(self) -> dict[str, str]:
        """The JSON shape of the API."""
        return {
            "id": self.id,
            "name": self.name,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
        }


def _wallet(item: WalletItem) -> Wallet:
    return Wallet(
        id=item.id,
        user_id=item.user_id,
        name=item.name,
        pubkey=item.pubkey,
        created_at=item.created_at,
        holds_secret=item.encrypted_secret is not None,
        details=item.details,
    )


def _context(user_id: str, wallet_id: str) -> dict[str, str]:
    """Binds a ciphertext to its row: moved to another user's or wallet's row, it won't decrypt."""
    return {"user_id": user_id, "wallet_id": wallet_id}


def _params(body: object) -> NewWallet:
    if isinstance(body, NewWallet):
        return body
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    try:
        return NewWallet.model_validate(body)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None


def _imported(text: str) -> Keypair:
    """The keypair of base58 `text`; each refusal says why without repeating the text."""
    from solders.keypair import Keypair

    text = text.strip()
    if not text:
        raise BadRequest("keypair: must not be empty (omit it to generate a new keypair)")
    if len(text) > base58.MAX_TEXT_LENGTH:
        raise BadRequest(
            f"keypair: {len(text)} characters is too long for base58 of {KEYPAIR_BYTES} bytes"
        )
    position = next((i for i, char in enumerate(text) if char not in base58.ALPHABET), None)
    if position is not None:
        raise BadRequest(
            f"keypair: not base58 (character {position + 1} is not in the base58 alphabet)"
        )
    secret = base58.decode(text)
    if len(secret) != KEYPAIR_BYTES:
        raise BadRequest(
            f"keypair: must be {KEYPAIR_BYTES} bytes (secret key then public key, as "
            f"solana-keygen and Phantom export it), got {len(secret)} bytes"
        )
    try:
        return Keypair.from_bytes(secret)
    except ValueError:
        raise BadRequest(
            "keypair: its last 32 bytes are not the public key of its first 32 bytes"
        ) from None


def create_wallet(user_id: str, body: object) -> Wallet:
    """Generate or import a keypair for `user_id` and store it encrypted; 400/409/503."""
    params = _params(body)
    if params.keypair is None:
        from solders.keypair import Keypair

        keypair = Keypair()
    else:
        keypair = _imported(params.keypair.get_secret_value())
    pubkey = str(keypair.pubkey())
    if store.by_pubkey(user_id, pubkey) is not None:
        raise Conflict(f"you already have a wallet with public key {pubkey}")
    item = _new_item(user_id, params.name, pubkey, keypair)
    if not store.insert(item):  # the same key imported concurrently
        raise Conflict(f"you already have a wallet with public key {pubkey}")
    return _wallet(item)


def _new_item(
    user_id: str,
    name: str,
    pubkey: str,
    keypair: Keypair | None,
    details: dict[str, str | None] | None = None,
) -> WalletItem:
    """A new wallet row, its secret (if any) encrypted for exactly this row; 503 if KMS fails."""
    wallet_id = new_id()
    return WalletItem(
        user_id,
        wallet_id,
        name=name,
        pubkey=pubkey,
        encrypted_secret=None if keypair is None else _encrypt(keypair, user_id, wallet_id),
        details=details,
        created_at=timestamp(),
    )


def _encrypt(keypair: Keypair, user_id: str, wallet_id: str) -> bytes:
    try:
        return wallet_key.encrypt(bytes(keypair), _context(user_id, wallet_id))
    except wallet_key.KeyUnavailable as error:
        raise ServiceUnavailable(
            f"the wallet key is unavailable ({error}); nothing was stored"
        ) from None


# -- Upstream's POST /wallets/upsert ------------------------------------------------

HARDCODED, ADAPTER = "HARDCODED", "ADAPTER"


class UpsertWalletBody(BaseModel):
    """Upstream's wallet row (`wallets` table) as its clients send it: `public_key`, or a
    `keypair` to hold (base58, 64 bytes), or both; without a keypair the wallet is an
    adapter wallet whose key stays in the user's wallet app."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: Annotated[str, StringConstraints(max_length=64)] | None = None
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    keypair: SecretStr | None = None
    type: Literal["HARDCODED", "ADAPTER"] | None = None
    name: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""
    adapter: Annotated[str, StringConstraints(max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None
    icon: Annotated[str, StringConstraints(max_length=2048)] | None = None
    user_id: Annotated[str, StringConstraints(max_length=64)] | None = None


def upstream_row(wallet: Wallet) -> dict[str, Any]:
    """A wallet as a row of upstream's `wallets` table (never its secret)."""
    details = wallet.details or {}
    return {
        "id": wallet.id,
        "created_at": wallet.created_at,
        "type": HARDCODED if wallet.holds_secret else ADAPTER,
        "adapter": details.get("adapter") or "",
        "public_key": wallet.pubkey,
        "user_id": wallet.user_id,
        "description": details.get("description") or "Wallet used for payments",
        "name": wallet.name,
        "icon": details.get("icon"),
    }


def upsert_wallet(user_id: str, body: UpsertWalletBody) -> Wallet:
    """Add the user's wallet for a public key, or update the one they hold (its name and
    details; its secret if it had none). 400 for a key that does not match, 403 for another
    user's user_id, 404 for an id that is not the user's wallet of that key."""
    if body.user_id is not None and body.user_id != user_id:
        raise Forbidden("user_id must be your own user id (the wallet is yours)")
    keypair = None if body.keypair is None else _imported(body.keypair.get_secret_value())
    pubkey = _upsert_pubkey(body, keypair)
    if body.type == ADAPTER and keypair is not None:
        raise BadRequest("type: an ADAPTER wallet has no keypair (send HARDCODED with it)")
    fields = {"adapter": body.adapter, "description": body.description, "icon": body.icon}
    details: dict[str, str | None] = {k: v for k, v in fields.items() if v is not None}
    existing = store.by_pubkey(user_id, pubkey)
    if existing is None:
        if body.id is not None:
            raise NotFound(f"wallet not found: {body.id}")
        if body.type == HARDCODED and keypair is None:
            raise BadRequest("keypair: a HARDCODED wallet needs its keypair")
        item = _new_item(user_id, body.name, pubkey, keypair, details or None)
        if store.insert(item):
            return _wallet(item)
        existing = store.by_pubkey(user_id, pubkey)  # added concurrently: update that one
        if existing is None:
            raise Conflict(f"wallet {pubkey} changed concurrently; retry")
    return _update_upserted(existing, body, keypair, details)


def _update_upserted(
    existing: WalletItem,
    body: UpsertWalletBody,
    keypair: Keypair | None,
    details: dict[str, str | None],
) -> Wallet:
    if body.id is not None and body.id != existing.id:
        raise NotFound(f"wallet not found: {body.id}")
    if body.type == HARDCODED and keypair is None and existing.encrypted_secret is None:
        raise BadRequest("keypair: a HARDCODED wallet needs its keypair")
    actions: list[Any] = []
    if "name" in body.model_fields_set:
        actions.append(WalletItem.name.set(body.name))
    if details:
        actions.append(WalletItem.details.set({**(existing.details or {}), **details}))
    if keypair is not None and existing.encrypted_secret is None:
        secret = _encrypt(keypair, existing.user_id, existing.id)
        actions.append(WalletItem.encrypted_secret.set(secret))
    if not actions:
        return _wallet(existing)
    updated = store.update(existing, actions)
    if updated is None:
        raise Conflict(f"wallet {existing.pubkey} was deleted meanwhile; retry")
    return _wallet(updated)


def _upsert_pubkey(body: UpsertWalletBody, keypair: Keypair | None) -> str:
    if keypair is not None:
        pubkey = str(keypair.pubkey())
        if body.public_key is not None and body.public_key != pubkey:
            raise BadRequest("public_key is not the public key of keypair")
        return pubkey
    if body.public_key is None:
        raise BadRequest("send public_key (an adapter wallet) or keypair (a wallet we hold)")
    if not base58.is_pubkey(body.public_key):
        raise BadRequest("public_key: must be a base58 public key (32 bytes)")
    return body.public_key


def list_wallets(user_id: str) -> list[Wallet]:
    """All the user's wallets, oldest first."""
    return [_wallet(item) for item in store.of_user(user_id)]


MAX_PAGE = 100


def page_of_wallets(user_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the user's wallets, oldest first: `{"wallets": [...], "next": <id> | null}`."""
    page = paging.request(query, MAX_PAGE, parse_uuid)
    found = store.of_user(user_id, page.after, page.limit + 1)
    rows, following = paging.fill(found, page, lambda item: _wallet(item).row(), lambda i: i.id)
    return {"wallets": rows, "next": following}


def get_wallet(user_id: str, wallet_id: str) -> Wallet | None:
    canonical = parse_uuid(wallet_id)
    if canonical is None:
        return None
    item = store.get(user_id, canonical)
    return _wallet(item) if item is not None else None


def wallet_for_pubkey(user_id: str, pubkey: str) -> Wallet | None:
    """The user's wallet holding `pubkey`, if any."""
    item = store.by_pubkey(user_id, pubkey)
    return _wallet(item) if item is not None else None


def delete_wallet(user_id: str, wallet_id: str) -> None:
    """Delete the user's wallet; 404 for an unknown id or another user's wallet."""
    canonical = parse_uuid(wallet_id)
    if canonical is None or not store.delete(user_id, canonical):
        raise NotFound(f"wallet not found: {canonical or 'not a wallet id'}")


def signing_keypair(wallet: Wallet) -> Keypair:
    """The wallet's keypair, decrypted with KMS; WalletUnavailable if it is gone or refused."""
    from solders.keypair import Keypair

    item = store.get(wallet.user_id, wallet.id)
    if item is None:
        raise WalletUnavailable(wallet.id, f"wallet {wallet.pubkey} ({wallet.id}) was deleted")
    if item.encrypted_secret is None:
        raise WalletUnavailable(
            wallet.id,
            f"wallet {wallet.pubkey} ({wallet.id}) is an adapter wallet: the server holds no "
            "secret key for it",
        )
    try:
        secret = wallet_key.decrypt(item.encrypted_secret, _context(item.user_id, item.id))
    except wallet_key.KeyUnavailable as error:
        raise WalletUnavailable(
            wallet.id, f"wallet {wallet.pubkey} ({wallet.id}) cannot be unlocked: {error}"
        ) from None
    try:
        keypair = Keypair.from_bytes(secret)
    except ValueError:
        keypair = None
    if keypair is None or str(keypair.pubkey()) != item.pubkey:
        raise WalletUnavailable(
            wallet.id, f"wallet {wallet.pubkey} ({wallet.id}) holds a damaged key"
        )
    return keypair
