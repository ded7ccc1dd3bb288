"""RunRecords table access: node runs and log lines of each flow run, written in batches."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from flowdeploy.live.events import Event
from flowdeploy.store.models import NodeRunItem, RunEventsItem, RunLogItem, pack, unpack
from flowdeploy.values import IValue, encode_map

if TYPE_CHECKING:  # reading records back (ApiFunction, StartFunction) needs no engine
    from pynamodb.expressions.condition import Condition

    from flowdeploy.engine.scheduler import LogLine, NodeRun

NODE, LOG, EVENTS = "NODE#", "LOG#", "EVENTS#"
SEQ_DIGITS = 8
LAST_SEQ = 10**SEQ_DIGITS - 1
# A node record keeps its inputs and its outputs whole up to this size each (a run keeps its
# outputs up to the same size), so one item stays below DynamoDB's 400 KB; a WebSocket event
# clips a value long before (32 KB), and points here for the whole of it.
MAX_VALUES_BYTES = 128_000
# One events item holds at most this much packed; more are split across items.
MAX_EVENTS_ITEM_BYTES = 300_000
BATCH = 25  # BatchWriteItem's limit


def _sk(prefix: str, seq: int) -> str:
    return f"{prefix}{seq:0{SEQ_DIGITS}d}"


def seq_of(sk: str) -> int:
    return int(sk.rpartition("#")[2])


# What a record weighs besides its values and texts: keys, names and timestamps.
RECORD_OVERHEAD_BYTES = 200


def _values(values: Mapping[str, IValue] | None, what: str) -> tuple[dict[str, Any] | None, int]:
    """The values as a record keeps them, and their size in bytes of JSON."""
    if values is None:
        return None, 0
    document = encode_map(dict(values))
    size = len(json.dumps(document, separators=(",", ":")))
    if size <= MAX_VALUES_BYTES:
        return document, size
    note = f"{what} are {size} bytes of JSON; node records keep up to {MAX_VALUES_BYTES}"
    return {"truncated": {"S": note}}, len(note) + 20


@dataclass(slots=True)
class StoredNode:
    """A node run as its record keeps it (values encoded, one too large replaced by a note),
    holding nothing else of the run, and about how many bytes the record weighs."""

    run: NodeRun  # its inputs and outputs left out
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    size: int


def stored_node(node: NodeRun) -> StoredNode:
    inputs, inputs_size = _values(node.inputs, "inputs")
    outputs, outputs_size = _values(node.outputs, "outputs")
    size = RECORD_OVERHEAD_BYTES + inputs_size + outputs_size + len(node.node_id)
    size += len(node.error or "")
    return StoredNode(replace(node, inputs=None, outputs=None), inputs, outputs, size)


def log_size(line: LogLine) -> int:
    return RECORD_OVERHEAD_BYTES + len(line.content) + len(line.node_id or "")


def node_item(run_id: str, stored: StoredNode) -> NodeRunItem:
    node = stored.run
    return NodeRunItem(
        run_id,
        _sk(NODE, node.seq),
        node_id=node.node_id,
        command=node.command,
        flow_id=node.flow_id,
        status=node.status,
        inputs=stored.inputs,
        outputs=stored.outputs,
        error=node.error,
        started_at=node.started_at,
        finished_at=node.finished_at,
        times=node.times,
    )


def log_item(run_id: str, line: LogLine) -> RunLogItem:
    return RunLogItem(
        run_id,
        _sk(LOG, line.seq),
        time=line.time,
        level=line.level,
        node_id=line.node_id,
        content=line.content,
    )


def events_items(run_id: str, events: Sequence[Event]) -> list[RunEventsItem]:
    """Consecutive events as items of at most MAX_EVENTS_ITEM_BYTES packed, each keyed by
    its first event's seq."""
    if not events:
        return []
    packed = pack([event.body for event in events])
    if len(packed) > MAX_EVENTS_ITEM_BYTES and len(events) > 1:
        half = len(events) // 2
        return events_items(run_id, events[:half]) + events_items(run_id, events[half:])
    return [RunEventsItem(run_id, _sk(EVENTS, events[0].seq), size=len(events), events=packed)]


def add_events(run_id: str, events: Sequence[Event]) -> bool:
    """Write events that no one else may write: False (nothing written) if the first one's
    item exists already."""
    from flowdeploy.store import applied

    for position, item in enumerate(events_items(run_id, events)):
        condition = RunEventsItem.sk.does_not_exist()
        if not applied(partial(item.save, condition=condition)) and position == 0:
            return False
    return True


def write(
    run_id: str,
    nodes: Iterable[StoredNode],
    logs: Iterable[LogLine],
    events: Sequence[Event] = (),
) -> None:
    """Write node runs, events and log lines with BatchWriteItem, 25 per call, retrying
    leftovers."""
    with NodeRunItem.batch_write() as batch:
        for node in nodes:
            batch.save(node_item(run_id, node))
        for item in events_items(run_id, events):
            batch.save(item)
    with RunLogItem.batch_write() as log_batch:
        for line in logs:
            log_batch.save(log_item(run_id, line))


_Record = TypeVar("_Record", NodeRunItem, RunLogItem)


def records(model: type[_Record], run_id: str, after: int | None, limit: int) -> Iterator[_Record]:
    """Records of one kind in seq order after seq `after`, at most `limit`."""
    prefix = NODE if model is NodeRunItem else LOG
    start = 0 if after is None else after + 1
    return model.query(
        run_id,
        model.sk.between(_sk(prefix, start), _sk(prefix, LAST_SEQ)),
        limit=limit,
        consistent_read=True,
    )


def events(run_id: str) -> list[Event]:
    """Every event of the run written so far, in order: the contiguous run from seq 0."""
    return list(iter_events(run_id))


def iter_events(run_id: str, start: int = 0) -> Iterator[Event]:
    """The events of the run written so far from seq `start` on, in order, read a page at a
    time (a replay holds one page of items, not the run): the contiguous run from the item
    that holds `start` (from seq 0 when `start` is 0)."""
    condition: Condition = RunEventsItem.sk.startswith(EVENTS)
    expected = 0
    if start:
        # The item holding `start`: the last one keyed at or before it ("EVENTS#" sorts
        # before the run's other records).
        holding = next(
            RunEventsItem.query(
                run_id,
                RunEventsItem.sk <= _sk(EVENTS, start),
                consistent_read=True,
                scan_index_forward=False,
                limit=1,
            ),
            None,
        )
        if holding is None or not holding.sk.startswith(EVENTS):
            return
        expected = seq_of(holding.sk)
        condition = RunEventsItem.sk.between(holding.sk, _sk(EVENTS, LAST_SEQ))
    for item in RunEventsItem.query(run_id, condition, consistent_read=True):
        first = seq_of(item.sk)
        if first != expected:  # a gap: what follows is not replayable in order
            return
        bodies = unpack(item.events)
        expected = first + len(bodies)
        if expected <= start:
            continue
        for i, body in enumerate(bodies):
            if first + i >= start:
                yield Event(first + i, body)
