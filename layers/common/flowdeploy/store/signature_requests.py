"""SignatureRequests table access: open a request, answer it once, close it."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from flowdeploy.store import applied
from flowdeploy.store.models import SignatureRequestItem


def insert(item: SignatureRequestItem) -> bool:
    """Write a new request; False if its id is taken (ids are random: pick another)."""
    return applied(lambda: item.save(condition=SignatureRequestItem.id.does_not_exist()))


def get(request_id: int) -> SignatureRequestItem | None:
    try:
        return SignatureRequestItem.get(request_id, consistent_read=True)
    except DoesNotExist:
        return None


def answer(request_id: int, signature: str, new_message: str | None, now: float) -> bool:
    """Store the verified answer, once, while the request is open and not expired."""
    actions: list[Action] = [SignatureRequestItem.signature.set(signature)]
    if new_message is not None:
        actions.append(SignatureRequestItem.new_message.set(new_message))
    condition = (
        SignatureRequestItem.id.exists()
        & SignatureRequestItem.signature.does_not_exist()
        & SignatureRequestItem.closed.does_not_exist()
        & (SignatureRequestItem.expires_at > now)
    )
    item = SignatureRequestItem(request_id)
    return applied(lambda: item.update(actions=actions, condition=condition))


def settle_on_chain(request_id: int, landed_signature: str) -> bool:
    """Close the request because its transaction landed, sent by the signer's wallet; False
    if it was answered (or closed) first. With `answer`'s condition, exactly one wins."""
    item = SignatureRequestItem(request_id)
    condition = (
        SignatureRequestItem.id.exists()
        & SignatureRequestItem.signature.does_not_exist()
        & SignatureRequestItem.closed.does_not_exist()
    )
    actions: list[Action] = [
        SignatureRequestItem.closed.set(True),
        SignatureRequestItem.landed_signature.set(landed_signature),
    ]
    return applied(lambda: item.update(actions=actions, condition=condition))


def close(request_id: int) -> None:
    """Take no answer any more (the run stopped waiting); a no-op for a missing request."""
    item = SignatureRequestItem(request_id)
    applied(
        lambda: item.update(
            actions=[SignatureRequestItem.closed.set(True)],
            condition=SignatureRequestItem.id.exists(),
        )
    )
