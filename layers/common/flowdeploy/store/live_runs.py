"""LiveRunsTable access: each user's runs that are queued or running, for the per-user limit.

One item per user holds the ids of their live runs (`runs`, a string set). A start takes a
place with one conditional UpdateItem (add the new run's id if the set holds fewer than the
limit): DynamoDB applies such writes to one item one at a time, so no interleaving of starts
passes the limit. Runs leave the set lazily: only when it is full are the listed runs read
back and the finished ones (and those whose start died before writing the run) taken out,
so a run's end costs nothing here.
"""

from __future__ import annotations

import time

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import size

from flowdeploy.store import applied
from flowdeploy.store.models import FlowRunItem, LiveRunsItem
from flowdeploy.store.runs import FINAL

# A listed run that does not exist is a start still writing it, or one that died doing so;
# after this long (its id is a UUIDv7, which says when it was made) it is the latter.
START_GRACE_SECONDS = 60


def admit(user_id: str, run_id: str, limit: int) -> bool:
    """Count `run_id` among the user's live runs if they have fewer than `limit`."""
    item = LiveRunsItem(user_id)
    fewer = size(LiveRunsItem.runs) < limit  # type: ignore[no-untyped-call]
    room = LiveRunsItem.runs.does_not_exist() | fewer

    def take() -> bool:
        return applied(lambda: item.update([LiveRunsItem.runs.add({run_id})], condition=room))

    # Full: the places of runs that ended are taken back, then one more try.
    return take() or (_forget_ended(user_id) and take())


def release(user_id: str, run_id: str) -> None:
    """Give the place back (a start that failed after taking it)."""
    LiveRunsItem(user_id).update([LiveRunsItem.runs.delete({run_id})])


def listed(user_id: str) -> set[str]:
    try:
        return set(LiveRunsItem.get(user_id, consistent_read=True).runs or ())
    except DoesNotExist:
        return set()


def _forget_ended(user_id: str) -> bool:
    """Take out the user's listed runs that are final, or never written; whether any were."""
    ids = listed(user_id)
    runs = {
        run.id: run.status
        for run in FlowRunItem.batch_get(
            ids, consistent_read=True, attributes_to_get=["id", "status"]
        )
    }
    cutoff_ms = (time.time() - START_GRACE_SECONDS) * 1000
    ended = {
        run_id
        for run_id in ids
        if runs.get(run_id) in FINAL or (run_id not in runs and _created_ms(run_id) < cutoff_ms)
    }
    if ended:
        LiveRunsItem(user_id).update([LiveRunsItem.runs.delete(ended)])
    return bool(ended)


def _created_ms(run_id: str) -> float:
    """When a UUIDv7 was made (ms since the epoch); 0 for anything else."""
    hexa = run_id.replace("-", "")
    if len(hexa) != 32 or hexa[12] != "7":
        return 0
    return int(hexa[:12], 16)
