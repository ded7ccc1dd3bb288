"""SweeperFunction's work: no run stays queued or running for ever.

A run whose worker died after claiming it (its lease ran out) is failed, whether or not
its message comes back; a run still queued long after it was started (its message was
lost: the start died between writing the run and sending the message, or its message
could not be delivered) is failed too. Each is one conditional write, so a run that a
worker claims or finishes meanwhile is left alone.
"""

from __future__ import annotations

import time
from itertools import islice

from flowdeploy.settings import settings
from flowdeploy.store import runs as store

# Runs failed per invocation at most: the next scheduled sweep takes the rest.
MAX_PER_SWEEP = 500


def sweep(now: float | None = None) -> dict[str, list[str]]:
    """Fail overdue runs; the ids failed, by the status they were stuck in."""
    moment = time.time() if now is None else now
    abandoned = [
        run_id
        for run_id in islice(store.overdue(store.RUNNING, moment), MAX_PER_SWEEP)
        if store.fail_abandoned(run_id, moment) is not None
    ]
    queued_before = moment - settings().flow_run_queued_timeout_seconds
    unqueued = [
        run_id
        for run_id in islice(store.overdue(store.QUEUED, queued_before), MAX_PER_SWEEP)
        if store.fail_unqueued(run_id, queued_before) is not None
    ]
    return {store.RUNNING: abandoned, store.QUEUED: unqueued}
