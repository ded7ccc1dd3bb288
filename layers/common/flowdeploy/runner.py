"""RunFunction's work: claim a queued run, execute its deployment's snapshot, record it all.

A run executes at most once: the claim is a conditional queued → running transition, and
once the flow has started no failure hands the claim back. Node runs and log lines are
buffered and written in batches while the run goes on, then the run takes its final status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowdeploy.engine import FlowGraph, FlowInvalid, LogLine, NodeRun, Run, build_flow_set
from flowdeploy.engine.scheduler import FAILED, STOPPED, RunResult, clip
from flowdeploy.engine.services import RunInfo, RunServices
from flowdeploy.live.run_stream import RunStream
from flowdeploy.settings import settings
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import run_records
from flowdeploy.store import runs as store
from flowdeploy.store.models import DeploymentItem, FlowRunItem
from flowdeploy.values import IValue, IValueError, decode_map, encode_map

if TYPE_CHECKING:
    from flowdeploy.solana.session import SolanaSession

logger = logging.getLogger(__name__)

# A run item holds its outputs; DynamoDB items stop at 400 KB, inputs take up to 256 KB.
MAX_OUTPUTS_BYTES = 128_000
# Records held for storage (`StoredRecorder`): a flush starts every FLUSH_SECONDS, or at once
# past FLUSH_RECORDS or FLUSH_BYTES (BatchWriteItem takes 25 records a call); nodes wait to
# start while MAX_HELD_RECORDS or MAX_HELD_BYTES are held.
FLUSH_SECONDS = 2.0
FLUSH_RECORDS = 250
FLUSH_BYTES = 2_000_000
MAX_HELD_RECORDS = 1_000
MAX_HELD_BYTES = 8_000_000  # a RunFunction batch runs 10 runs at once
FINAL_FLUSH_ATTEMPTS = 3  # how often buffered node runs and log lines are written
STOP_POLL_SECONDS = 1.0  # how often a running run checks for a stop request
# Time kept back from the Lambda's remaining time to record the result after the deadline.
FINISH_MARGIN_SECONDS = 15.0
LEASE_SLACK_SECONDS = 30.0
RETRY_PAUSE_SECONDS = 0.5
MAX_ERROR_CHARS = 4_000
ABANDONED = store.ABANDONED
# At most this long, after the final status, for the run's subscribers to get the last events.
DRAIN_SECONDS = 10.0


def clip_error(text: str | None) -> str | None:
    """Errors repeat inputs; keep them short enough for the run item."""
    return None if text is None else clip(text, MAX_ERROR_CHARS)


class Unrunnable(Exception):
    """The run can never execute (its deployment is gone or unreadable); it fails at once."""


async def execute_queued_run(
    run_id: str, *, last_attempt: bool = False, time_left: float | None = None
) -> str | None:
    """Claim a queued run and take it to a final status; None if it was already claimed.

    If the run cannot even be loaded (e.g. DynamoDB is failing), the claim is released so
    the message's redelivery can try again; on the last delivery the run fails instead.
    """
    deadline = _deadline(time_left)
    ends_at = time.monotonic() + (time_left if time_left is not None else deadline)
    lease_until = time.time() + deadline + FINISH_MARGIN_SECONDS + LEASE_SLACK_SECONDS
    run = await asyncio.to_thread(store.claim, run_id, lease_until)
    if run is None:
        # Already claimed: normally by a worker still at it or done. If that worker's lease
        # ran out, it died without recording a result; the run must not stay `running`.
        abandoned = await asyncio.to_thread(store.fail_abandoned, run_id, time.time(), ABANDONED)
        if abandoned is not None:
            logger.warning("run %s was abandoned by its worker; marked failed", run_id)
            return FAILED
        logger.info("run %s was already claimed or is not queued; skipping", run_id)
        await _end_stream_of_unclaimed(run_id)
        return None
    stream = RunStream(run.id, run.user_id)
    if run.stop_requested:  # asked to stop while a failed delivery held it
        return await _end_unexecuted(stream, RunResult(STOPPED, {}, run.stop_requested), ends_at)
    try:
        graphs, entry, deployment = await asyncio.to_thread(_load, run)
    except Unrunnable as problem:
        return await _end_unexecuted(stream, RunResult(FAILED, {}, str(problem)), ends_at)
    except Exception as error:  # anything: the run must not stay `running`
        if not last_attempt:
            await asyncio.to_thread(store.release, run_id)
            raise
        logger.exception("run %s could not be loaded on its last delivery", run_id)
        failure = RunResult(FAILED, {}, f"the run could not be loaded: {error}")
        return await _end_unexecuted(stream, failure, ends_at)
    # From here on the flow has started: never release it, so it cannot run twice.
    await stream.watchers(run.watchers)  # subscribed while it was queued
    result = await _execute(run, deployment, graphs, entry, deadline, stream)
    final = await _record_result(run_id, result)
    await _deliver_rest(stream, final, ends_at)
    return result.status


async def execute_claimed(
    run: FlowRunItem,
    deployment: DeploymentItem,
    graphs: Mapping[int, FlowGraph],
    entry: int,
    deadline: float,
) -> RunResult:
    """Execute a run its caller already claimed and loaded (a read), and record it.

    A read's run has no live events: its caller waits for the answer instead."""
    stream = RunStream(run.id, run.user_id, enabled=False)
    result = await _execute(run, deployment, graphs, entry, deadline, stream)
    await _record_result(run.id, result)
    return result


async def _end_unexecuted(stream: RunStream, result: RunResult, ends_at: float) -> str:
    """A claimed run that ends without executing: its last events, then its final status."""
    result = _fitted(result)
    stream.flow_finished(result)
    await StoredRecorder(stream).flush()
    final = await _record_result(stream.run_id, result)
    await _deliver_rest(stream, final, ends_at)
    return result.status


async def _deliver_rest(stream: RunStream, final: FlowRunItem | None, ends_at: float) -> None:
    """After the final status no subscription can be added: send every subscriber the rest."""
    if final is None:
        return
    try:
        await stream.watchers(final.watchers, final=True)
    except Exception:  # the run is recorded; only its live listeners miss the end
        logger.exception("could not look up the subscribers of run %s", stream.run_id)
    await stream.drain(min(DRAIN_SECONDS, ends_at - time.monotonic() - 3.0))


async def _end_stream_of_unclaimed(run_id: str) -> None:
    """A run's message came after the run ended without this worker (stopped while queued):
    if anyone subscribed, end its stream with the run's outcome, unless the run wrote it."""
    try:
        run = await asyncio.to_thread(store.get, run_id)
        if run is None or run.status not in store.FINAL or not run.watchers:
            return
        written, finished = await asyncio.to_thread(_written_events, run_id)
        if finished:
            return
        stream = RunStream(run_id, run.user_id)
        stream.continue_after(written)
        stream.finish(run.status, run.error, run.outputs or {}, [])
        if not await asyncio.to_thread(run_records.add_events, run_id, stream.unsaved()):
            return  # another delivery of the message wrote (and sends) them
        stream.saved(len(stream.unsaved()))
        await stream.watchers(run.watchers, final=True)
        await stream.drain(DRAIN_SECONDS)
    except Exception:
        logger.exception("could not end the event stream of run %s", run_id)


def _written_events(run_id: str) -> tuple[int, bool]:
    """How many events the run wrote, and whether the last is its FlowFinish."""
    count, last = 0, ""
    for event in run_records.iter_events(run_id):
        count, last = event.seq + 1, event.kind
    return count, last == "FlowFinish"


def _fitted(result: RunResult) -> RunResult:
    """The result as the run item can hold it: outputs within MAX_OUTPUTS_BYTES (else a
    failure saying so), the error clipped."""
    error = clip_error(result.error)
    size = len(json.dumps(encode_map(result.outputs), separators=(",", ":")))
    if size > MAX_OUTPUTS_BYTES:
        kept = f" (and it failed: {error})" if error else ""
        error = clip_error(
            f"the run's outputs are {size} bytes of JSON; a run keeps at most "
            f"{MAX_OUTPUTS_BYTES}{kept}"
        )
        return RunResult(FAILED, {}, error, not_run=result.not_run)
    result.error = error
    return result


async def _record_result(run_id: str, result: RunResult) -> FlowRunItem | None:
    """The final status, outputs and error (the result `_fitted`); on a failed write, once
    more without outputs. The run item as written; None if it was not running any more."""
    try:
        return await asyncio.to_thread(
            store.finish,
            run_id,
            result.status,
            outputs=encode_map(result.outputs),
            error=result.error,
            transaction=result.transaction,
            simulation=result.simulation,
        )
    except Exception as failure:
        logger.exception("could not record the result of run %s; recording a failure", run_id)
        await asyncio.sleep(RETRY_PAUSE_SECONDS)
        return await asyncio.to_thread(
            store.finish,
            run_id,
            FAILED,
            outputs={},
            error=clip_error(
                f"the run ended ({result.status}) but its result could not be recorded: {failure}"
            ),
        )


def _deadline(time_left: float | None) -> float:
    configured = settings().flow_run_deadline_seconds
    if time_left is None:
        return configured
    return max(1.0, min(configured, time_left - FINISH_MARGIN_SECONDS))


def _load(run: FlowRunItem) -> tuple[Mapping[int, FlowGraph], int, DeploymentItem]:
    deployment = deployment_store.get(run.deployment_id) if run.deployment_id else None
    if deployment is None:
        raise Unrunnable(f"deployment {run.deployment_id} no longer exists")
    snapshot = deployment_store.load_snapshot(deployment)
    entry = int(deployment.entrypoint)
    if entry not in snapshot:
        raise Unrunnable(f"deployment {deployment.id} has no snapshot of its entry flow")
    try:
        return build_flow_set(snapshot, entry), entry, deployment
    except FlowInvalid as error:
        raise Unrunnable(f"the deployed flow cannot run: {error.message}") from None


async def _execute(
    run: FlowRunItem,
    deployment: DeploymentItem,
    graphs: Mapping[int, FlowGraph],
    entry: int,
    deadline: float,
    stream: RunStream,
) -> RunResult:
    """Run the flow; its last events (FlowError, FlowFinish) are written with its records."""
    recorder = StoredRecorder(stream)

    def solana() -> SolanaSession:
        from flowdeploy.run_solana import session_for  # solders loads only for Solana nodes

        return session_for(run, deployment, stream)

    engine = Run(
        graphs,
        recorder,
        deadline_seconds=deadline,
        http_allow_private=settings().http_allow_private,
        solana=solana,
        services=_services(run, deployment, stream),
        max_depth=settings().flow_max_nesting,
        max_node_runs=settings().flow_max_node_runs,
    )
    try:
        inputs = decode_map(run.inputs or {}, "inputs")
    except IValueError as error:  # validated at start; only a corrupted item gets here
        failure = RunResult(FAILED, {}, f"the run's inputs are invalid: {error}")
        stream.flow_finished(failure)
        await recorder.flush()
        return failure
    helpers = [
        asyncio.create_task(recorder.keep_flushing()),
        asyncio.create_task(_watch_for_stop(run.id, engine, stream)),
    ]
    stream.flow_started()
    try:
        result = _fitted(await engine.execute(entry, inputs))
        stream.flow_finished(result)
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        for attempt in range(FINAL_FLUSH_ATTEMPTS):
            if await recorder.flush():
                break
            await asyncio.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
    return result


def _services(run: FlowRunItem, deployment: DeploymentItem, stream: RunStream) -> RunServices:
    """The run's facts and its owner's stores, for flow_run_info, kv_* and api_input."""
    from flowdeploy.api_inputs import StoredApiInputs
    from flowdeploy.kvstore import OwnerStores

    caller = run.caller or {}
    started_by = caller.get("user_id") or caller.get("pubkey") or run.user_id
    network = dict(deployment.solana_network or {})
    read = run.origin == store.READ_ORIGIN  # a read waits for no one and changes nothing
    return RunServices(
        info=RunInfo(run.id, run.user_id, str(started_by), str(network.get("cluster") or "")),
        kvstore=OwnerStores(run.user_id, read_only=read),
        api_inputs=None if read else StoredApiInputs(run.id, stream),
    )


async def _watch_for_stop(run_id: str, engine: Run, stream: RunStream) -> None:
    """Poll the run item: for a stop request, and for new subscribers of its events."""
    while True:
        await asyncio.sleep(STOP_POLL_SECONDS)
        try:
            current = await asyncio.to_thread(store.get, run_id)
            if current is not None:
                await stream.watchers(current.watchers)
        except Exception:  # a failed poll only delays the stop, or the first live events
            logger.warning("could not poll run %s", run_id, exc_info=True)
            continue
        if current is not None and current.stop_requested:
            engine.stop(current.stop_requested)


class StoredRecorder:
    """Holds node runs and log lines, turns them into the run's events, and writes both in
    batches, never losing a failed batch (the events not written yet ride the next one).

    A flush starts every FLUSH_SECONDS, or at once when FLUSH_RECORDS records or FLUSH_BYTES
    bytes are held. While MAX_HELD_RECORDS or MAX_HELD_BYTES are held (those being written
    included), nodes wait to start (`room`): a run faster than its writes holds a bounded
    number of records, plus one per node running at that moment. A node run is held as its
    record keeps it, so a value too large to store is never held.
    """

    def __init__(self, stream: RunStream) -> None:
        self.stream = stream
        self.run_id = stream.run_id
        self._nodes: list[run_records.StoredNode] = []
        self._logs: list[LogLine] = []
        self._bytes = 0
        self._writing_records = 0
        self._writing_bytes = 0
        self._lock = asyncio.Lock()
        self._due = asyncio.Event()  # enough is held for a flush now
        self._written = asyncio.Event()  # a flush ended: there may be room

    @property
    def held_records(self) -> int:
        return len(self._nodes) + len(self._logs) + self._writing_records

    @property
    def held_bytes(self) -> int:
        return self._bytes + self._writing_bytes

    def node_started(self, node_id: str, times: int, inputs: Mapping[str, IValue]) -> None:
        self.stream.node_started(node_id, times, inputs)

    def node(self, run: NodeRun) -> None:
        stored = run_records.stored_node(run)
        self._nodes.append(stored)
        self._held(stored.size)
        self.stream.node_finished(run)

    def log(self, line: LogLine) -> None:
        self._logs.append(line)
        self._held(run_records.log_size(line))
        self.stream.log(line)

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        self.stream.publish(kind, data)

    def _held(self, size: int) -> None:
        self._bytes += size
        if len(self._nodes) + len(self._logs) >= FLUSH_RECORDS or self._bytes >= FLUSH_BYTES:
            self._due.set()

    async def room(self) -> None:
        while self.held_records >= MAX_HELD_RECORDS or self.held_bytes >= MAX_HELD_BYTES:
            self._due.set()
            self._written.clear()
            await self._written.wait()

    async def flush(self) -> bool:
        """Write what is held; False (keeping it for the next flush) if that failed."""
        async with self._lock:
            nodes, logs, size = self._nodes, self._logs, self._bytes
            events = self.stream.unsaved()
            if not nodes and not logs and not events:
                return True
            self._nodes, self._logs, self._bytes = [], [], 0
            self._writing_records, self._writing_bytes = len(nodes) + len(logs), size
            writing = asyncio.ensure_future(
                asyncio.to_thread(run_records.write, self.run_id, nodes, logs, events)
            )
            try:
                await asyncio.wait([writing])  # cancelling the wait leaves the write going
            except asyncio.CancelledError:
                # The write goes on in its thread: it ends before anything else is written,
                # and its records are kept if it fails.
                await asyncio.wait([writing])
                self._written_or_kept(writing, nodes, logs, size, len(events))
                raise
            return self._written_or_kept(writing, nodes, logs, size, len(events))

    def _written_or_kept(
        self,
        writing: asyncio.Future[None],
        nodes: list[run_records.StoredNode],
        logs: list[LogLine],
        size: int,
        events: int,
    ) -> bool:
        self._writing_records = self._writing_bytes = 0
        self._written.set()
        failure = writing.exception()
        if failure is None:
            self.stream.saved(events)
            return True
        logger.error("could not write records of run %s; will retry", self.run_id, exc_info=failure)
        self._nodes[:0], self._logs[:0] = nodes, logs
        self._bytes += size
        return False

    async def keep_flushing(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), FLUSH_SECONDS)
            self._due.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_PAUSE_SECONDS)


def status_metric(status: str | None) -> str:
    return f"Run{status.capitalize()}" if status else "RunRedelivered"
