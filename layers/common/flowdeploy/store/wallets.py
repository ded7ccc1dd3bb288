"""Wallets table access: a user's wallets and the public-key claims that keep them unique."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from flowdeploy.store import transactions as _transactions
from flowdeploy.store.models import WalletItem, WalletPubkeyItem


def _condition_failed(error: TransactWriteError) -> bool:
    return any(
        r is not None and r.code == "ConditionalCheckFailed" for r in error.cancellation_reasons
    )


def insert(item: WalletItem) -> bool:
    """Write a new wallet and claim its public key; False if the user already holds the key."""
    claim = WalletPubkeyItem(*WalletPubkeyItem.key(item.user_id, item.pubkey), wallet_id=item.id)
    try:
        with TransactWrite(connection=_transactions()) as transaction:
            transaction.save(claim, condition=WalletPubkeyItem.id.does_not_exist())
            transaction.save(item, condition=WalletItem.id.does_not_exist())
    except TransactWriteError as error:
        if _condition_failed(error):
            return False
        raise
    return True


def of_user(
    user_id: str, after: str | None = None, limit: int | None = None
) -> Iterator[WalletItem]:
    """The user's wallets, oldest first (ids are UUIDv7); those after wallet `after`."""
    later = WalletItem.id > after if after is not None else None
    return WalletItem.query(user_id, later, consistent_read=True, limit=limit)


def get(user_id: str, wallet_id: str) -> WalletItem | None:
    try:
        return WalletItem.get(user_id, wallet_id, consistent_read=True)
    except DoesNotExist:
        return None


def by_pubkey(user_id: str, pubkey: str) -> WalletItem | None:
    """The user's wallet holding `pubkey`: its claim, then the wallet (both consistent)."""
    try:
        claim = WalletPubkeyItem.get(*WalletPubkeyItem.key(user_id, pubkey), consistent_read=True)
    except DoesNotExist:
        return None
    return get(user_id, claim.wallet_id)


def update(item: WalletItem, actions: list[Any]) -> WalletItem | None:
    """Apply `actions` to the wallet if it still exists; the updated wallet, or None."""
    from flowdeploy.store import applied

    if not applied(lambda: item.update(actions=actions, condition=WalletItem.id.exists())):
        return None
    return item


def delete(user_id: str, wallet_id: str) -> bool:
    """Delete the user's wallet and its claim; False if there is no such wallet."""
    item = get(user_id, wallet_id)
    if item is None:
        return False
    claim = WalletPubkeyItem(*WalletPubkeyItem.key(user_id, item.pubkey))
    try:
        with TransactWrite(connection=_transactions()) as transaction:
            transaction.delete(item, condition=WalletItem.id.exists())
            transaction.delete(claim, condition=WalletPubkeyItem.wallet_id == wallet_id)
    except TransactWriteError as error:
        if _condition_failed(error):
            return False  # deleted meanwhile
        raise
    return True
