"""A run's output as upstream's clients read it: `GET /flow/output/{run}` waits until the
run is final, then answers its outputs as one IValue map.

The wait is bounded below API Gateway's 30 s integration limit; a run still going after
it is a 504 the clients can retry. It polls the run item with a backoff (0.1 s doubling to
1 s), so a long wait costs about one read per second, not one per few milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flowdeploy.errors import GatewayTimeout, NotFound, Unprocessable
from flowdeploy.store import runs as store
from flowdeploy.store.models import FlowRunItem

FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 1.0

# Seams for tests that count reads without waiting.
_clock = time.monotonic
_sleep = time.sleep


def wait_until(
    run: FlowRunItem,
    budget: float,
    done: Callable[[FlowRunItem], bool],
    max_pause: float = MAX_POLL_SECONDS,
) -> FlowRunItem | None:
    """The run once `done(run)` or it is final; None if neither within `budget` seconds.
    Reads the run after pauses of 0.1 s doubling to `max_pause`."""
    current = run
    deadline = _clock() + budget
    pause = FIRST_POLL_SECONDS
    while not (done(current) or current.status in store.FINAL):
        remaining = deadline - _clock()
        if remaining <= 0:
            return None
        _sleep(min(pause, remaining))
        pause = min(pause * 2, max_pause)
        found = store.get(run.id)
        if found is None:
            raise NotFound(f"flow run not found: {run.id}")
        current = found
    return current


def wait_until_final(run: FlowRunItem, budget: float) -> FlowRunItem:
    """The run once it is final (succeeded, failed, stopped); 504 if it is not within
    `budget` seconds."""
    final = wait_until(run, budget, lambda _: False)
    if final is None:
        raise GatewayTimeout(
            f"flow run {run.id} is still running after {budget:g} s; request its output again"
        )
    return final


def output_value(run: FlowRunItem) -> dict[str, Any]:
    """A final run's outputs as one IValue `{"M": {...}}`; with `output_instructions`, the
    transaction for the wallet is the output `transaction` (base64), as upstream hands it
    back. A failed or stopped run is a 422 whose message is the run's error."""
    outputs = dict(run.outputs or {})
    if run.transaction is not None:  # the engine put it in the outputs as `transaction`
        return {"M": outputs}
    if run.status == store.SUCCEEDED:
        return {"M": outputs}
    what = "failed" if run.status == store.FAILED else "was stopped"
    raise Unprocessable(f"flow run {run.id} {what}: {run.error or 'no reason was recorded'}")
