"""ConnectionsTable access: WebSocket connections, what they proved, their subscriptions.

Every item expires with its connection (TTL `remove_at`); `$disconnect`, or a post that
finds the connection gone, removes them at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from pynamodb.expressions.update import Action

from flowdeploy.store import applied, runs
from flowdeploy.store.models import ConnectionItem, FlowRunItem, SubscriptionItem

RUN, SIGN = "RUN#", "SIGN#"


def open_connection(connection_id: str, connected_at: float, remove_at: int) -> None:
    ConnectionItem(
        *ConnectionItem.key(connection_id), connected_at=int(connected_at), remove_at=remove_at
    ).save()


def prove(
    connection_id: str,
    remove_at: int,
    *,
    user_id: str | None = None,
    run_id: str | None = None,
    new_stream: bool = False,
) -> ConnectionItem:
    """Record what a credential proved (and hand out the next stream id); the connection
    as it is now. Creates the item if `$connect` did not (its write failed, say)."""
    item = ConnectionItem(*ConnectionItem.key(connection_id))
    actions: list[Action] = [ConnectionItem.remove_at.set(ConnectionItem.remove_at | remove_at)]
    if user_id is not None:
        actions.append(ConnectionItem.user_ids.add({user_id}))
    if run_id is not None:
        actions.append(ConnectionItem.run_ids.add({run_id}))
    if new_stream:
        actions.append(ConnectionItem.streams.add(1))
    item.update(actions=actions)
    return item


def subscribe_run(connection: ConnectionItem, stream_id: int, run_id: str) -> bool:
    """Count a new subscriber on the run, then subscribe the connection's stream to the run's
    events; False (nothing written) if the run is final or gone: its worker looks for
    subscribers no more.

    The count comes first, so the worker never sends to a subscription it did not count (and
    one that was refused is replayed instead, never sent twice); its item follows a moment
    later, with the count it got (`ticket`), and the worker looks again until it has found as
    many as it counted. Plain conditional writes, no transaction: many subscribers may join one
    run at once, and a transaction on the run item would also make the worker's own writes to
    it fail with a conflict."""
    run = FlowRunItem(id=run_id)
    counted = applied(
        lambda: run.update(
            actions=[FlowRunItem.watchers.add(1)],
            condition=FlowRunItem.status.is_in(runs.QUEUED, runs.RUNNING),
        )
    )
    if not counted:
        return False
    connection_id = connection_id_of(connection)
    _subscribe(
        connection,
        [
            SubscriptionItem(
                f"{RUN}{run_id}",
                f"{connection_id}#{stream_id}",
                connection_id=connection_id,
                stream_id=stream_id,
                ticket=int(run.watchers),
                remove_at=int(connection.remove_at),
            )
        ],
    )
    return True


def subscribe_signatures(
    connection: ConnectionItem, stream_id: int, user_ids: Iterable[str]
) -> None:
    """Subscribe the connection's stream to the signature requests of these users' runs."""
    connection_id = connection_id_of(connection)
    _subscribe(
        connection,
        [
            SubscriptionItem(
                f"{SIGN}{user_id}",
                f"{connection_id}#{stream_id}",
                connection_id=connection_id,
                stream_id=stream_id,
                remove_at=int(connection.remove_at),
            )
            for user_id in sorted(user_ids)
        ],
    )


def _subscribe(connection: ConnectionItem, subscriptions: list[SubscriptionItem]) -> None:
    """Their keys on the connection first (what forgetting it removes), then the items."""
    connection.update(actions=[ConnectionItem.subscriptions.add({_ref(s) for s in subscriptions})])
    for subscription in subscriptions:  # one, or one per user the connection proved
        subscription.save()


def run_subscribers(run_id: str) -> list[SubscriptionItem]:
    return _subscribers(f"{RUN}{run_id}")


def signature_subscribers(user_id: str) -> list[SubscriptionItem]:
    return _subscribers(f"{SIGN}{user_id}")


def _subscribers(pk: str) -> list[SubscriptionItem]:
    return list(SubscriptionItem.query(pk, consistent_read=True))


def forget(connection_id: str) -> None:
    """Remove a connection and its subscriptions (it closed, or a post found it gone)."""
    pk, sk = ConnectionItem.key(connection_id)
    # pynamodb's Model.delete cannot return the old item; its table connection can.
    old = ConnectionItem._get_connection().delete_item(pk, range_key=sk, return_values="ALL_OLD")
    refs = (old.get("Attributes") or {}).get("subscriptions", {}).get("SS", [])
    if refs:
        with SubscriptionItem.batch_write() as batch:
            for ref in refs:
                pk, _, sk = ref.partition(" ")
                batch.delete(SubscriptionItem(pk, sk))


def connection_id_of(item: ConnectionItem) -> str:
    return item.pk.removeprefix("CONN#")


def _ref(subscription: SubscriptionItem) -> str:
    return f"{subscription.pk} {subscription.sk}"
