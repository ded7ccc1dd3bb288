"""FlowRuns table access: run rows and their status transitions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist

from flowdeploy.ids import timestamp
from flowdeploy.store import applied
from flowdeploy.store.models import FlowRunItem

QUEUED, RUNNING, SUCCEEDED, FAILED, STOPPED = "queued", "running", "succeeded", "failed", "stopped"
FINAL = frozenset({SUCCEEDED, FAILED, STOPPED})
# The origin of a run made by /deployment/read: it never signs or sends a transaction.
READ_ORIGIN = "read"
ABANDONED = "the worker running this flow stopped before recording its result"
NEVER_PICKED_UP = "the run was never picked up from the queue (its message was lost)"
# Every transition to a final status takes the run out of SweepIndex.
_UNWATCH = (FlowRunItem.sweep_status.remove(), FlowRunItem.sweep_at.remove())


def insert(run: FlowRunItem) -> None:
    """Write a new queued run; SweepIndex watches it until it is final."""
    run.sweep_status = QUEUED
    run.sweep_at = int(time.time())
    run.save(condition=FlowRunItem.id.does_not_exist())


def insert_running(run: FlowRunItem, lease_until: float) -> None:
    """Write a new run already claimed by the caller, which runs it now (a read)."""
    run.status = RUNNING
    run.started_at = timestamp()
    run.lease_until = int(lease_until)
    run.sweep_status = RUNNING
    run.sweep_at = int(lease_until)
    run.save(condition=FlowRunItem.id.does_not_exist())


def get(run_id: str) -> FlowRunItem | None:
    try:
        return FlowRunItem.get(run_id, consistent_read=True)
    except DoesNotExist:
        return None


def of_deployment(
    deployment_id: str, after: str | None = None, limit: int | None = None
) -> Iterator[FlowRunItem]:
    """Runs of a deployment, newest first (run ids are UUIDv7); those older than run `after`."""
    older = FlowRunItem.id < after if after is not None else None
    return FlowRunItem.by_deployment.query(
        deployment_id, older, scan_index_forward=False, limit=limit
    )


def _transition(
    run_id: str, expected: str, actions: list[Any], condition: Any = None
) -> FlowRunItem | None:
    """Apply `actions` only if the run is in status `expected`; None if it is not."""
    run = FlowRunItem(id=run_id)
    required = FlowRunItem.status == expected
    changed = applied(
        lambda: run.update(
            actions=[*actions, FlowRunItem.updated_at.set(timestamp())],
            condition=required if condition is None else required & condition,
        )
    )
    return run if changed else None


def claim(run_id: str, lease_until: float) -> FlowRunItem | None:
    """queued → running, at most once however often the message is delivered; the worker
    promises to finish the run by `lease_until` (epoch seconds)."""
    return _transition(
        run_id,
        QUEUED,
        [
            FlowRunItem.status.set(RUNNING),
            FlowRunItem.started_at.set(timestamp()),
            FlowRunItem.lease_until.set(int(lease_until)),
            FlowRunItem.sweep_status.set(RUNNING),
            FlowRunItem.sweep_at.set(int(lease_until)),
        ],
    )


def release(run_id: str) -> FlowRunItem | None:
    """running → queued, so a redelivery of the message can claim the run again."""
    return _transition(
        run_id,
        RUNNING,
        [
            FlowRunItem.status.set(QUEUED),
            FlowRunItem.started_at.remove(),
            FlowRunItem.lease_until.remove(),
            FlowRunItem.sweep_status.set(QUEUED),
            FlowRunItem.sweep_at.set(int(time.time())),
        ],
    )


def fail_abandoned(run_id: str, now: float, error: str = ABANDONED) -> FlowRunItem | None:
    """running → failed if its worker's lease ran out (the worker died); None otherwise."""
    return _transition(
        run_id,
        RUNNING,
        [
            FlowRunItem.status.set(FAILED),
            FlowRunItem.finished_at.set(timestamp()),
            FlowRunItem.error.set(error),
            *_UNWATCH,
        ],
        FlowRunItem.lease_until < int(now),
    )


def fail_unqueued(run_id: str, queued_before: float) -> FlowRunItem | None:
    """queued → failed if it has been queued since before `queued_before`; None otherwise."""
    return _transition(
        run_id,
        QUEUED,
        [
            FlowRunItem.status.set(FAILED),
            FlowRunItem.finished_at.set(timestamp()),
            FlowRunItem.error.set(NEVER_PICKED_UP),
            *_UNWATCH,
        ],
        FlowRunItem.sweep_at < int(queued_before),
    )


def overdue(status: str, before: float) -> Iterator[str]:
    """Ids of runs in `status` whose `sweep_at` is before `before`, oldest first."""
    for item in FlowRunItem.by_sweep.query(status, FlowRunItem.sweep_at < int(before)):
        yield item.id


def request_stop(run_id: str, reason: str) -> FlowRunItem | None:
    """queued → stopped at once, or flag a running run for its worker to stop; None if final."""
    moment = timestamp()
    stopped = _transition(
        run_id,
        QUEUED,
        [
            FlowRunItem.status.set(STOPPED),
            FlowRunItem.finished_at.set(moment),
            FlowRunItem.error.set(reason),
            FlowRunItem.stop_requested.set(reason),
            *_UNWATCH,
        ],
    )
    if stopped is None:
        stopped = _transition(run_id, RUNNING, [FlowRunItem.stop_requested.set(reason)])
    return stopped


def delete_queued(run_id: str) -> bool:
    """Remove a run that was never sent to the queue."""
    return applied(lambda: FlowRunItem(id=run_id).delete(condition=FlowRunItem.status == QUEUED))


def finish(
    run_id: str,
    status: str,
    *,
    outputs: dict[str, Any] | None = None,
    error: str | None = None,
    transaction: str | None = None,
    simulation: dict[str, Any] | None = None,
) -> FlowRunItem | None:
    """Put a running run in a final status; None if it was not running any more."""
    actions = [
        FlowRunItem.status.set(status),
        FlowRunItem.finished_at.set(timestamp()),
        *_SIGNATURE_REQUEST_REMOVED,
        *_UNWATCH,
    ]
    if outputs is not None:
        actions.append(FlowRunItem.outputs.set(outputs))
    if error is not None:
        actions.append(FlowRunItem.error.set(error))
    if transaction is not None:
        actions.append(FlowRunItem.transaction.set(transaction))
    if simulation is not None:
        actions.append(FlowRunItem.simulation.set(simulation))
    return _transition(run_id, RUNNING, actions)


# -- Signature requests: the id of a running run's open request --------------------

_SIGNATURE_REQUEST_REMOVED = (FlowRunItem.signature_request_id.remove(),)


def open_signature_request(run_id: str, request_id: int) -> FlowRunItem | None:
    """Name `request_id` as the run's open request; None if the run is not running."""
    return _transition(run_id, RUNNING, [FlowRunItem.signature_request_id.set(str(request_id))])


def close_signature_request(run_id: str, request_id: int) -> None:
    """Withdraw the request `request_id` if it is still the run's open one."""
    run = FlowRunItem(id=run_id)
    applied(
        lambda: run.update(
            actions=list(_SIGNATURE_REQUEST_REMOVED),
            condition=FlowRunItem.signature_request_id == str(request_id),
        )
    )


# -- api_input requests: one entry per waiting node, in the run item's `api_inputs` map ---

WAITING, SUBMITTED, CANCELED = "waiting", "submitted", "canceled"


def open_api_input(run_id: str, token: str, request: dict[str, object]) -> bool:
    """Publish a waiting api_input request on a running run; False if it is not running."""
    run = FlowRunItem(id=run_id)
    running = FlowRunItem.status == RUNNING
    if not applied(
        lambda: run.update(
            actions=[FlowRunItem.api_inputs.set(FlowRunItem.api_inputs | {})], condition=running
        )
    ):
        return False
    entry = FlowRunItem.api_inputs[token]
    return applied(
        lambda: run.update(
            actions=[entry.set({**request, "state": WAITING})],
            condition=running & entry.does_not_exist(),
        )
    )


def answer_api_input(run_id: str, token: str, state: str, value: str | None = None) -> bool:
    """Submit (or cancel) the waiting request `token`, once; False if none is waiting."""
    entry = FlowRunItem.api_inputs[token]
    actions = [entry["state"].set(state)]
    if value is not None:
        actions.append(entry["value"].set(value))
    run = FlowRunItem(id=run_id)
    return applied(
        lambda: run.update(
            actions=actions,
            condition=(FlowRunItem.status == RUNNING) & (entry["state"] == WAITING),
        )
    )


def close_api_input(run_id: str, token: str) -> None:
    run = FlowRunItem(id=run_id)
    entry = FlowRunItem.api_inputs[token]
    applied(lambda: run.update(actions=[entry.remove()], condition=entry.exists()))


def api_inputs_of(run: FlowRunItem) -> dict[str, dict[str, Any]]:
    return dict(run.api_inputs.as_dict()) if run.api_inputs is not None else {}  # type: ignore[no-untyped-call]
