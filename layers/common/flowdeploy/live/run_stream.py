"""A run's events inside RunFunction: numbered as they happen, kept, written with the run's
records, and delivered to the run's subscribers while it runs.

Nobody listening costs nothing beyond building the events: they are written in the batches
the run writes its node records in, and the worker learns of subscribers from the run item
it reads anyway (its stop polls, its final write): `watchers` counts the subscriptions made
while the run was not final, and only when it grows are they looked up (one Query).

No gap, no duplicate, in order: a subscription is counted on the run item on condition that
the run is not final, and only then written; the worker, which reads the count at the latest
in the reply to its final write, sends every subscription it counted every event from the
first on, one at a time. A subscription refused because the run is final was never written:
it replays what the run wrote before that status (`flowdeploy.live.sessions`). A connection
that is gone (410) is forgotten at once; one that cannot be sent to is closed, so its client
never silently misses an event.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from flowdeploy.live import events
from flowdeploy.live.events import Event
from flowdeploy.values import IValue, encode_map

if TYPE_CHECKING:
    from flowdeploy.engine.scheduler import LogLine, NodeRun, RunResult
    from flowdeploy.store.models import SignatureRequestItem

logger = logging.getLogger(__name__)

# After the final status, how long to wait for a counted subscription's item to appear: two
# writes of the subscriber's function (milliseconds on AWS; the local stack under load has
# taken over 0.7 s). Only a run with such a subscriber waits.
SETTLE_SECONDS = 3.0
SETTLE_LOOKUPS = 5  # after waits of 1, 2, 4 and 8 fifteenths of SETTLE_SECONDS
# Reads of the run item after which a counted subscription never found is given up.
MAX_LOOKUPS_MISSING = 5
# A subscriber behind what the run still holds reads the rest back this much at a time.
REPLAY_BYTES = 1_000_000
# Posts run in threads (boto3 is blocking); shared by the runs of one environment.
_posts = ThreadPoolExecutor(max_workers=32, thread_name_prefix="post")
_NODE_STATUSES_WITH_OUTPUT = frozenset({"succeeded"})
_NODE_STATUSES_WITH_ERROR = frozenset({"failed", "canceled"})


class RunStream:
    """The events of one run and the subscribers it sends them to."""

    def __init__(self, run_id: str, owner: str, *, enabled: bool = True) -> None:
        self.run_id = run_id
        self.owner = owner
        self.enabled = enabled
        # The events from seq `_first` on: those written (`_saved`) that every subscriber
        # found so far has been sent are let go, so a run holds what is not written yet and
        # what its slowest subscriber has still to get; earlier ones are read back from the
        # run's records for a subscriber found later.
        self._kept: list[Event] = []
        self._first = 0
        self._saved = 0
        self._counted = 0
        self._missing_lookups = 0
        self._subscribers: dict[str, _Subscriber] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lookup = asyncio.Lock()
        self._nodes = f"GET /flow_run/{run_id}/nodes has the whole value"

    # -- what happens (called on the run's event loop) ---------------------------------

    def publish(self, kind: str, data: Mapping[str, Any], where: str = "") -> Event | None:
        """Add an event of `kind` (one of `events.KINDS`) with its kind's `data`."""
        if not self.enabled:
            return None
        event = Event(self.count, events.encode(kind, data, self.run_id, where=where))
        self._kept.append(event)
        for subscriber in self._subscribers.values():
            subscriber.wake.set()
        return event

    def flow_started(self) -> None:
        self.publish(*events.flow_start())

    def node_started(self, node_id: str, times: int, inputs: Mapping[str, IValue]) -> None:
        if self.enabled:
            node_inputs = encode_map(dict(inputs))
            self.publish(*events.node_start(node_id, times, node_inputs), where=self._nodes)

    def node_finished(self, run: NodeRun) -> None:
        """A node's end: NodeOutput or NodeError, then NodeFinish; a skipped node never
        started (it is in FlowFinish's `not_run`)."""
        if not self.enabled or run.started_at is None:
            return
        node, times = run.node_id, run.times
        if run.status in _NODE_STATUSES_WITH_OUTPUT and run.outputs is not None:
            outputs = encode_map(dict(run.outputs))
            self.publish(*events.node_output(node, times, outputs), where=self._nodes)
        elif run.status in _NODE_STATUSES_WITH_ERROR:
            self.publish(*events.node_error(node, times, run.error or run.status))
        self.publish(*events.node_finish(node, times))

    def log(self, line: LogLine) -> None:
        self.publish(*events.log(line.level, line.content, line.node_id, line.times))

    def flow_finished(self, result: RunResult) -> None:
        """FlowError when the run failed or was stopped (not when it returned its
        transaction), then FlowFinish with the outputs: always the last event."""
        self.finish(result.status, result.error, encode_map(result.outputs), result.not_run)

    def finish(
        self,
        status: str,
        error: str | None,
        outputs: Mapping[str, Any],
        not_run: list[str],
    ) -> None:
        if status != "succeeded" and error is not None:
            self.publish(*events.flow_error(error))
        where = f"GET /flow_run/{self.run_id} has the whole output"
        self.publish(*events.flow_finish(outputs, not_run), where=where)

    def signature_request(self, item: SignatureRequestItem) -> None:
        """The run asked for a signature: an event of the run, and a message to every
        stream subscribed to the signature requests of the run's owner."""
        from flowdeploy.signature_requests import request_json

        event = self.publish(events.SIGNATURE_REQUEST, request_json(item))
        if event is not None:
            self._spawn(self._notify_signers(event))

    # -- what the run writes ------------------------------------------------------------

    @property
    def count(self) -> int:
        """How many events the run has had."""
        return self._first + len(self._kept)

    @property
    def kept(self) -> list[Event]:
        """The events still held, from seq `first_kept` on."""
        return self._kept

    @property
    def first_kept(self) -> int:
        return self._first

    def continue_after(self, written: int) -> None:
        """The run already wrote events 0 to `written` - 1 (read back from its records)."""
        assert not self._kept and self._first == self._saved == 0
        self._first = self._saved = written

    def unsaved(self) -> list[Event]:
        return self._kept[self._saved - self._first :]

    def saved(self, count: int) -> None:
        self._saved += count
        self._let_go()

    def _let_go(self) -> None:
        """Drop the events written that no subscriber found so far still has to be sent."""
        needed = min(
            (s.next for s in self._subscribers.values() if not s.finished), default=self._saved
        )
        upto = min(self._saved, needed)
        if upto > self._first:
            del self._kept[: upto - self._first]
            self._first = upto

    # -- subscribers -------------------------------------------------------------------

    async def watchers(self, count: Any, *, final: bool = False) -> None:
        """The run item's `watchers` (subscriptions counted so far), just read: start sending
        to the subscriptions not known yet. A subscription is counted a moment before its item
        is written: one not found yet is looked for again on the next read, and after the
        final status for up to `SETTLE_SECONDS`; one whose connection went away before it was
        ever found is given up after `MAX_LOOKUPS_MISSING` reads."""
        if not self.enabled or count is None:
            return
        from flowdeploy.store import connections

        self._counted = max(self._counted, int(count))
        async with self._lookup:
            pause = SETTLE_SECONDS / (2 ** (SETTLE_LOOKUPS - 1) - 1)
            for attempt in range(SETTLE_LOOKUPS if final else 1):
                if len(self._subscribers) >= self._counted:
                    return
                if attempt:
                    await asyncio.sleep(pause * 2 ** (attempt - 1))
                found = await asyncio.to_thread(connections.run_subscribers, self.run_id)
                known = len(self._subscribers)
                for item in found:
                    if item.sk not in self._subscribers:
                        subscriber = _Subscriber(self, item.connection_id, int(item.stream_id))
                        self._subscribers[item.sk] = subscriber
                        self._spawn(subscriber.send())
                self._missing_lookups = (
                    0 if len(self._subscribers) > known else (self._missing_lookups + 1)
                )
                if self._missing_lookups >= MAX_LOOKUPS_MISSING:
                    self._counted = len(self._subscribers)  # forgotten before it was found
                    self._missing_lookups = 0
            if final and len(self._subscribers) < self._counted:
                logger.warning(
                    "run %s: %d counted subscription(s) not written after %.1f s; given up",
                    self.run_id,
                    self._counted - len(self._subscribers),
                    SETTLE_SECONDS,
                )

    async def drain(self, timeout: float) -> None:
        """Wait until every subscriber got every event (or was let go), at most `timeout`
        seconds; subscribers still behind then are closed."""
        pending = {task for task in self._tasks if not task.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=max(0.0, timeout))
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        for subscriber in self._subscribers.values():
            if not subscriber.finished:
                logger.warning(
                    "connection %s was too slow for run %s; closing it",
                    subscriber.connection_id,
                    self.run_id,
                )
                await _close(subscriber.connection_id)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify_signers(self, event: Event) -> None:
        from flowdeploy.store import connections

        try:
            found = await asyncio.to_thread(connections.signature_subscribers, self.owner)
        except Exception:
            logger.exception("could not look up signature subscribers of %s", self.owner)
            return
        body = event.body[1:]  # a signature request stream spans runs: no `seq`
        await asyncio.gather(
            *(
                _deliver(item.connection_id, f'{{"stream_id":{int(item.stream_id)},{body}')
                for item in found
            )
        )


class _Subscriber:
    """One subscription: sends the run's events in order, from the first, one at a time."""

    def __init__(self, stream: RunStream, connection_id: str, stream_id: int) -> None:
        self.stream = stream
        self.connection_id = connection_id
        self.stream_id = stream_id
        self.next = 0
        self.finished = False
        self.wake = asyncio.Event()

    async def send(self) -> None:
        stream = self.stream
        while True:
            self.wake.clear()
            while self.next < stream.count:
                if self.next < stream.first_kept:  # written and let go: read them back
                    try:
                        written = await asyncio.to_thread(
                            self._written, self.next, stream.first_kept
                        )
                    except Exception:
                        logger.exception("could not read back events of run %s", stream.run_id)
                        self.finished = True  # it would miss events: closed instead
                        await _close(self.connection_id)
                        return
                    for event in written:
                        if not await self._send(event):
                            return
                    continue
                if not await self._send(stream.kept[self.next - stream.first_kept]):
                    return
            await self.wake.wait()

    def _written(self, start: int, until: int) -> list[Event]:
        """Events `start` to `until` - 1 at most, from the run's records (each was written
        before it was let go), up to REPLAY_BYTES of them at a time."""
        from flowdeploy.store import run_records

        found: list[Event] = []
        size = 0
        for event in run_records.iter_events(self.stream.run_id, start):
            if event.seq >= until or (found and size + len(event.body) > REPLAY_BYTES):
                break
            found.append(event)
            size += len(event.body)
        if not found or found[0].seq != start:
            raise LookupError(f"event {start} of run {self.stream.run_id} is not in its records")
        return found

    async def _send(self, event: Event) -> bool:
        """Deliver `event`; False once nothing more is to be sent (gone, closed, finished)."""
        if not await _deliver(self.connection_id, event.frame(self.stream_id)):
            self.finished = True  # gone or closed: nothing more to send
            return False
        self.next += 1
        if event.kind == events.FLOW_FINISH:
            self.finished = True
            return False
        return True


def _in_pool(function: Any, *args: Any) -> asyncio.Future[Any]:
    """`function(*args)` on the post threads, in this task's context (as `to_thread` does)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(_posts, context.run, function, *args)


async def _deliver(connection_id: str, text: str) -> bool:
    """Post `text`; False if the connection is gone (then forgotten) or could not be sent to
    (then closed and forgotten)."""
    from flowdeploy.live.outbox import outbox

    try:
        if await _in_pool(outbox().post, connection_id, text):
            return True
    except Exception:
        logger.exception("could not post to connection %s; closing it", connection_id)
        await _close(connection_id)
        return False
    await _forget(connection_id)
    return False


async def _close(connection_id: str) -> None:
    from flowdeploy.live.outbox import outbox

    try:
        await _in_pool(outbox().close, connection_id)
    except Exception:
        logger.exception("could not close connection %s", connection_id)
    await _forget(connection_id)


async def _forget(connection_id: str) -> None:
    from flowdeploy.store import connections

    try:
        await asyncio.to_thread(connections.forget, connection_id)
    except Exception:  # its items expire with it anyway (TTL)
        logger.warning("could not forget connection %s", connection_id, exc_info=True)
