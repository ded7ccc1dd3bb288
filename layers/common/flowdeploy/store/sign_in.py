"""SignIn table access: wallet users, and the sign-in nonces already used."""

from __future__ import annotations

from flowdeploy.store import applied
from flowdeploy.store.models import UsedNonceItem, WalletUserItem


def use_nonce(nonce: str, remove_at: int) -> bool:
    """Mark a sign-in nonce used; False if it already was (a replayed sign-in)."""
    item = UsedNonceItem(UsedNonceItem.key(nonce), remove_at=remove_at)
    return applied(lambda: item.save(condition=UsedNonceItem.pk.does_not_exist()))


def record_sign_in(pubkey: str, user_id: str, moment: str) -> WalletUserItem:
    """Count a sign-in of the wallet, creating its user on the first; the user after it."""
    item = WalletUserItem(WalletUserItem.key(pubkey))
    item.update(
        actions=[
            WalletUserItem.user_id.set(user_id),
            WalletUserItem.created_at.set(WalletUserItem.created_at | moment),
            WalletUserItem.last_sign_in_at.set(moment),
            WalletUserItem.sign_ins.add(1),
        ]
    )
    return item
