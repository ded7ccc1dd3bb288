"""Runs a deployment's flow graph on one asyncio loop.

A node starts as soon as every connected input has a value; independent nodes run
concurrently; inside a `foreach` loop a node runs once per element (`times` counts them).
A node that gets no value on a required input (a branch not taken) never runs and is
recorded as skipped, and so is everything downstream of it. The first node error fails the
run: nothing else starts, nodes still running are cancelled, and what was produced and
recorded so far is kept. Past its deadline, or when stopped, a run ends the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flowdeploy.engine.bounds import chain_text
from flowdeploy.engine.command import Collected, NodeError, ReturnTransaction
from flowdeploy.engine.convert import ConversionError
from flowdeploy.engine.graph import FlowGraph, GraphNode
from flowdeploy.engine.services import InstructionCollector, RunServices, ServiceFailure
from flowdeploy.ids import timestamp
from flowdeploy.values import ARRAY, STRING, IValue

if TYPE_CHECKING:
    from flowdeploy.solana.session import SolanaSession

logger = logging.getLogger(__name__)

SUCCEEDED, FAILED, STOPPED = "succeeded", "failed", "stopped"
NODE_SUCCEEDED, NODE_FAILED, NODE_SKIPPED, NODE_CANCELED = (
    "succeeded",
    "failed",
    "skipped",
    "canceled",
)
NODE_STOPPED = "stopped"  # returned the run's transaction (output_instructions)
NODE_COLLECTED = "collected"  # handed its instructions to an interflow_instructions caller
# How deep nested flows may go (a flow calling itself counts each level): upstream's Collatz
# recurses once per step, and Collatz(54), its test input, needs 113 levels.
MAX_INTERFLOW_DEPTH = 256
# How many nodes one run may start in all, nested flows and loops included (each node run is
# a stored record): depth alone does not bound a loop or a flow that calls itself twice.
MAX_NODE_RUNS = 10_000
MAX_LOG_LINES = 10_000
MAX_LOG_CHARS = 8_192
MAX_NODE_ERROR_CHARS = 2_000


def clip(text: str, limit: int) -> str:
    """`text`, cut at `limit` characters with a note of its full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


@dataclass(slots=True)
class NodeRun:
    """What one node did in a run. `node_id` is prefixed `<interflow node>/` when nested."""

    seq: int
    node_id: str
    command: str
    flow_id: int | None
    status: str
    inputs: Mapping[str, IValue] | None
    outputs: Mapping[str, IValue] | None
    error: str | None
    started_at: str | None
    finished_at: str
    # 0 for a node's first run; its run number inside a foreach loop
    times: int = 0


@dataclass(slots=True)
class LogLine:
    seq: int
    time: str
    level: str
    node_id: str | None
    content: str
    times: int = 0  # which run of the node wrote it (inside a foreach loop)


class Recorder(Protocol):
    """Where node runs and log lines go as they happen (batched to storage by the caller)."""

    def node_started(self, node_id: str, times: int, inputs: Mapping[str, IValue]) -> None:
        """A node is about to run (its `times`-th run) with `inputs`; its NodeRun follows."""
        ...

    def node(self, run: NodeRun) -> None: ...

    def log(self, line: LogLine) -> None: ...

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        """A live event a command published (`NodeContext.publish_event`)."""
        ...

    async def room(self) -> None:
        """Return once the recorder may take more records: a node waits here to start while
        the records held for storage are at their bound."""


@dataclass(slots=True)
class RunResult:
    status: str
    outputs: dict[str, IValue]
    error: str | None
    # output_instructions: the transaction (base64) the run stopped at, for the caller to sign,
    # and what its simulation said
    transaction: str | None = None
    simulation: dict[str, object] | None = None
    # The run ended because it passed its deadline.
    timed_out: bool = False
    # Nodes of the entry flow that never ran (skipped, or not reached before the end).
    not_run: list[str] = field(default_factory=list)


class ExecutionFailed(Exception):
    """A flow execution ended early: a node failed, the deadline passed, or a stop."""


class LimitReached(NodeError):
    """The run reached its node-run limit: the run's error is this message, as it is."""


class Run:
    """One run of a deployment: its flows, deadline, recorder and stop switch."""

    def __init__(
        self,
        graphs: Mapping[int, FlowGraph],
        recorder: Recorder,
        *,
        deadline_seconds: float,
        http_allow_private: bool = False,
        solana: Callable[[], SolanaSession] | None = None,
        services: RunServices | None = None,
        max_depth: int = MAX_INTERFLOW_DEPTH,
        max_node_runs: int = MAX_NODE_RUNS,
    ) -> None:
        self.graphs = graphs
        self.services = services or RunServices()
        self.max_depth = max_depth
        self.max_node_runs = max_node_runs
        self.node_runs = 0
        # A limit's error, raised once where it was reached and passed up unchanged.
        self.too_deep: str | None = None
        self.limit_reached: str | None = None
        self.recorder = recorder
        self.deadline_seconds = deadline_seconds
        self.http_allow_private = http_allow_private
        self._node_seq = itertools.count()
        self._log_seq = itertools.count()
        self._deadline = 0.0
        self._top: _Execution | None = None
        self.stop_reason: str | None = None
        self.end_reason: str | None = None
        self.transaction: str | None = None
        self.simulation: dict[str, object] | None = None
        self.expired = False
        self._solana_factory = solana
        self._solana: SolanaSession | None = None

    async def execute(self, entry: int, inputs: Mapping[str, IValue]) -> RunResult:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.deadline_seconds
        top = self._top = _Execution(self, self.graphs[entry], inputs, prefix="", depth=0)
        timer = loop.call_at(self._deadline, self._expire)
        try:
            outputs = await top.run()
        except ExecutionFailed as error:
            not_run = top.not_run()
            if self.transaction is not None:
                # Upstream's clients read it from the outputs (getFlowOutput): put it there too.
                outputs = {"transaction": IValue(STRING, self.transaction), **top.outputs}
                return RunResult(
                    STOPPED, outputs, None, self.transaction, self.simulation, not_run=not_run
                )
            status = STOPPED if self.stop_reason is not None else FAILED
            return RunResult(
                status, top.outputs, str(error), timed_out=self.expired, not_run=not_run
            )
        finally:
            timer.cancel()
        return RunResult(SUCCEEDED, outputs, None, not_run=top.not_run())

    def stop(self, reason: str) -> None:
        """End the run now: running nodes are cancelled, nothing else starts."""
        if self._top is not None and self.stop_reason is None and self._top.failure is None:
            self.stop_reason = reason
            self._top.end(reason)

    def return_transaction(
        self, transaction: str, node_label: str, simulation: dict[str, object] | None = None
    ) -> None:
        """output_instructions: the run ends here, `stopped`, holding `transaction`."""
        if self._top is not None and self.stop_reason is None and self._top.failure is None:
            self.transaction = transaction
            self.simulation = simulation
            self.stop_reason = f"{node_label} returned its transaction for signing"
            self._top.end(self.stop_reason)

    @property
    def solana(self) -> SolanaSession | None:
        if self._solana is None and self._solana_factory is not None:
            self._solana = self._solana_factory()
        return self._solana

    def _expire(self) -> None:
        if self._top is not None:
            self.expired = self._top.failure is None and self.stop_reason is None
            running = self._top.running_nodes()
            shown = f"; still running: {', '.join(running[:5])}" if running else ""
            self._top.end(f"the run passed its deadline of {self.deadline_seconds:g} s{shown}")

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def log(self, level: str, content: str, node_id: str | None, times: int = 0) -> None:
        seq = next(self._log_seq)
        if seq > MAX_LOG_LINES:
            return
        if seq == MAX_LOG_LINES:
            level, content = "warn", f"log truncated: a run keeps at most {MAX_LOG_LINES} lines"
        else:
            content = clip(content, MAX_LOG_CHARS)
        self.recorder.log(LogLine(seq, timestamp(), level, node_id, content, times))

    def next_node_seq(self) -> int:
        return next(self._node_seq)

    def may_start(self, label: str) -> bool:
        """Count one more node run; False, having said why, past the node-run limit."""
        if self.node_runs < self.max_node_runs:
            self.node_runs += 1
            return True
        if self.limit_reached is None:
            self.limit_reached = (
                f"the run reached the limit of {self.max_node_runs:,} node runs per run "
                f"(FLOW_MAX_NODE_RUNS; loops and nested flows count each run); not started: "
                f"{label}"
            )
            self.log("error", self.limit_reached, None)
        return False


class _Execution:
    """One flow's graph running with one set of inputs (the run, or a nested flow's call).

    Values travel on edges as queues of (value, tracker) items; the tracker says which
    foreach elements a value came from (empty outside loops). A node is ready when each
    connected input has an item, or is optional and its source is finished; a node that
    ran already runs again only for an item from a loop, taking one item off each looped
    input and reusing the others: the shorter loop decides when loops are uneven. `collect`
    runs once, when everything upstream is finished, with its items in element order. A
    node is finished when it is not running, cannot start, and its sources are finished.
    """

    def __init__(
        self,
        run: Run,
        graph: FlowGraph,
        inputs: Mapping[str, IValue],
        *,
        prefix: str,
        depth: int,
        chain: tuple[int | None, ...] = (),
        collector: InstructionCollector | None = None,
    ) -> None:
        self.run_ = run
        self.graph = graph
        self.inputs = inputs
        self.prefix = prefix
        self.depth = depth
        self.chain = (*chain, graph.flow_id)
        self.collector = collector
        self.failure: str | None = None
        self._produced: dict[str, list[tuple[int, IValue]]] = {}
        # Values on inputs from outside loops (None: the source did not produce one), and
        # queues on inputs fed from inside a loop.
        self._values: dict[str, dict[str, IValue | None]] = {}
        self._queues: dict[str, dict[str, deque[Item]]] = {}
        self._ran: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._finished: set[str] = set()
        self._unfinished_sources: dict[str, int] = {}  # per node, when not all of them
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._done = asyncio.Event()

    @property
    def outputs(self) -> dict[str, IValue]:
        """The flow's outputs: a flow_output that ran once gives its value, one in a loop
        the array of its values in element order."""
        outputs: dict[str, IValue] = {}
        for label, produced in self._produced.items():
            if len(produced) == 1:
                outputs[label] = produced[0][1]
            else:
                outputs[label] = IValue(ARRAY, [value for _, value in sorted(produced)])
        return outputs

    def emit(self, label: str, times: int, value: IValue) -> None:
        self._produced.setdefault(label, []).append((times, value))

    async def run(self) -> dict[str, IValue]:
        # Only nodes without inputs can start (or finish) before anything ran.
        self._after_change([n.id for n in self.graph.nodes.values() if not n.incoming])
        try:
            if self._tasks:
                await self._done.wait()
        finally:
            await self._cancel_running()
        if self.failure is not None:
            raise ExecutionFailed(self.failure)
        self._record_not_run()
        return self.outputs

    def end(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        if self.run_.end_reason is None:
            self.run_.end_reason = reason  # the first failure anywhere is the run's cause
        self._done.set()

    def not_run(self) -> list[str]:
        """This flow's nodes that never ran, in the flow's order."""
        return [node_id for node_id in self.graph.nodes if not self._ran.get(node_id)]

    def running_nodes(self) -> list[str]:
        return [self.prefix + node_id for node_id in self._tasks.values()]

    async def _cancel_running(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- readiness --------------------------------------------------------------------

    def _after_change(self, node_ids: list[str]) -> None:
        """Start what became ready among `node_ids`; mark what is finished, then look again
        at what those feed (a finished source can make an optional input or a collect
        ready, or leave a node waiting for ever)."""
        nodes = self.graph.nodes
        finished = self._finished
        unfinished = self._unfinished_sources
        pending = node_ids
        while pending and self.failure is None:
            node_id = pending.pop()
            if node_id in finished:
                continue
            node = nodes[node_id]
            self._try_start(node)
            if self._running.get(node_id) or unfinished.get(node_id, len(node.sources)):
                continue
            finished.add(node_id)
            if self._ran.get(node_id):  # kept for not-run nodes, to say why
                self._values.pop(node_id, None)
                self._queues.pop(node_id, None)
            for target in node.targets:
                unfinished[target] = unfinished.get(target, len(nodes[target].sources)) - 1
            pending.extend(node.targets)

    def _ready(self, node: GraphNode) -> bool:
        ran = self._ran.get(node.id, 0)
        if ran and not node.in_loop:
            return False  # outside loops a node runs once
        if node.command.gathers:
            return not ran and not self._unfinished_sources.get(node.id, len(node.sources))
        values = self._values.get(node.id)
        queues = self._queues.get(node.id) if node.looped_ports else None
        looped = False
        for port, (source, _) in node.incoming.items():
            queue = queues.get(port) if queues else None
            if queue:
                found: IValue | None = queue[0][0]
                looped = True
            elif values and port in values:
                found = values[port]
            elif port in node.optional and source in self._finished:
                continue  # it will never get one: the node goes without
            else:
                return False  # not yet
            if found is None and port not in node.optional:
                return False  # its source produced nothing there: never
        return not ran or looped

    def _try_start(self, node: GraphNode) -> None:
        while self.failure is None and self._ready(node):
            if node.command.gathers:
                inputs, tracker = self._gather(node)
            else:
                inputs, tracker = self._take(node)
            if node.preset:
                inputs = {**node.preset, **inputs}
            times = self._ran.get(node.id, 0)
            self._ran[node.id] = times + 1
            self._running[node.id] = self._running.get(node.id, 0) + 1
            task = asyncio.create_task(self._run_node(node, inputs, times, tracker))
            self._tasks[task] = node.id
            task.add_done_callback(self._task_done)
            if not tracker:
                return  # outside a loop a node runs once; only a new delivery can change that

    def _take(self, node: GraphNode) -> tuple[dict[str, IValue], Tracker]:
        """Each input's value: a value from outside a loop stays for the next run, a looped
        one is used up (the front of its queue)."""
        values = self._values.get(node.id)
        inputs = {k: v for k, v in values.items() if v is not None} if values else {}
        tracker: Tracker = NO_LOOP
        queues = self._queues.get(node.id) if node.looped_ports else None
        if queues:
            for port, queue in queues.items():
                if queue:
                    value, item_tracker = queue.popleft()
                    tracker = _zip(tracker, item_tracker)
                    if value is not None:
                        inputs[port] = value
        return inputs, tracker

    def _gather(self, node: GraphNode) -> tuple[dict[str, IValue], Tracker]:
        inputs: dict[str, IValue] = {}
        for port, queue in (self._queues.get(node.id) or {}).items():
            items = sorted(queue, key=lambda item: tuple(index for _, index in item[1]))
            queue.clear()
            inputs[port] = IValue(ARRAY, [value for value, _ in items if value is not None])
        for port, value in (self._values.get(node.id) or {}).items():
            inputs[port] = IValue(ARRAY, [value] if value is not None else [])
        return inputs, NO_LOOP

    def _deliver(self, node: GraphNode, outputs: dict[str, IValue], tracker: Tracker) -> None:
        nodes = self.graph.nodes
        for port, target, target_port in node.outgoing:
            value = outputs.get(port)  # None: an optional output it did not produce
            if target_port not in nodes[target].looped_ports:
                values = self._values.get(target)
                if values is None:
                    values = self._values[target] = {}
                values[target_port] = value
                continue
            queues = self._queues.get(target)
            if queues is None:
                queues = self._queues[target] = {}
            queue = queues.get(target_port)
            if queue is None:
                queue = queues[target_port] = deque()
            if value is not None and node.command.splits_arrays and isinstance(value.value, list):
                key = self.prefix + node.id
                queue.extend(
                    (element, (*tracker, (key, index))) for index, element in enumerate(value.value)
                )
            else:
                queue.append((value, tracker))

    # -- running a node ---------------------------------------------------------------

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not self._tasks:
            self._done.set()

    async def _run_node(
        self, node: GraphNode, inputs: dict[str, IValue], times: int, tracker: Tracker
    ) -> None:
        run = self.run_
        await run.recorder.room()
        if run.end_reason is not None:  # the run ended while it waited: it never starts
            self.end(run.end_reason)
            return
        if not run.may_start(f"node {self.prefix + node.id!r} ({node.command.name})"):
            assert run.limit_reached is not None
            self.end(run.limit_reached)
            return
        run.recorder.node_started(self.prefix + node.id, times, inputs)
        started = timestamp()
        outputs: dict[str, IValue] | None = None
        error: str | None = None
        try:
            outputs = await node.command.run(_Context(self, node, times), inputs)
            error = _missing_outputs(node, outputs)
        except asyncio.CancelledError:
            self._record(
                node,
                NODE_CANCELED,
                inputs,
                None,
                f"canceled: {self.run_.end_reason or 'the run ended'}",
                started,
                times,
            )
            raise
        except ReturnTransaction as returned:
            self._record(node, NODE_STOPPED, inputs, None, str(returned), started, times)
            self.run_.return_transaction(returned.transaction, node.label, returned.simulation)
            return
        except Collected as collected:
            self._running[node.id] -= 1
            self._record(node, NODE_COLLECTED, inputs, None, str(collected), started, times)
            self._after_run(node)
            return
        except LimitReached as reached:  # in a nested flow: said once, where it was reached
            self._running[node.id] -= 1
            self._record(node, NODE_FAILED, inputs, None, str(reached), started, times)
            self.end(str(reached))
            return
        except (NodeError, ConversionError, ServiceFailure) as failure:
            error = str(failure)
        except Exception as failure:  # a bug in a command must fail its node, not the worker
            logger.exception("node %s raised", node.id)
            error = f"internal error in {node.command.name}: {type(failure).__name__}: {failure}"
        self._running[node.id] -= 1
        if error is not None:
            error = clip(error, MAX_NODE_ERROR_CHARS)
            self._record(node, NODE_FAILED, inputs, None, error, started, times)
            self.run_.log("error", f"{node.label}: {error}", self.prefix + node.id, times)
            self.end(f"{node.label} failed: {error}")
            return
        assert outputs is not None
        if node.passthrough:
            outputs = {**outputs, **{p: inputs[p] for p in node.passthrough if p in inputs}}
        self._record(node, NODE_SUCCEEDED, inputs, outputs, None, started, times)
        if self.failure is None:
            self._deliver(node, outputs, tracker)
            self._after_run(node)

    def _after_run(self, node: GraphNode) -> None:
        self._after_change([node.id])  # when it is finished, this looks at its targets too
        if node.id not in self._finished:
            self._after_change(list(node.targets))

    def _record_not_run(self) -> None:
        for node in self.graph.nodes.values():
            if not self._ran.get(node.id):
                self._record(node, NODE_SKIPPED, None, None, self._why_not_run(node), None, 0)

    def _why_not_run(self, node: GraphNode) -> str:
        values = self._values.get(node.id) or {}
        queues = self._queues.get(node.id) or {}
        for port, (source, out_port) in node.incoming.items():
            if port in node.optional:
                continue
            queue = queues.get(port)
            if values.get(port) is not None or (queue and queue[0][0] is not None):
                continue
            if port not in values and not queue and not self._ran.get(source):
                return f"{source} was skipped"
            return f"no value on {source}.{out_port}"
        return "it got no values"

    def _record(
        self,
        node: GraphNode,
        status: str,
        inputs: Mapping[str, IValue] | None,
        outputs: Mapping[str, IValue] | None,
        error: str | None,
        started: str | None,
        times: int,
    ) -> None:
        self.run_.recorder.node(
            NodeRun(
                seq=self.run_.next_node_seq(),
                node_id=self.prefix + node.id,
                command=node.command.name,
                flow_id=self.graph.flow_id,
                status=status,
                inputs=inputs,
                outputs=outputs,
                error=error,
                started_at=started,
                finished_at=timestamp(),
                times=times,
            )
        )

    async def call(
        self,
        node: GraphNode,
        times: int,
        flow_id: int,
        inputs: dict[str, IValue],
        collector: InstructionCollector | None,
    ) -> dict[str, IValue]:
        limit = self.run_.max_depth
        if self.depth + 1 > limit:
            self.run_.too_deep = (
                f"nested flows go deeper than the nesting limit of {limit} levels "
                f"(FLOW_MAX_NESTING): {chain_text((*self.chain, flow_id))}"
            )
            raise NodeError(self.run_.too_deep)
        graph = self.run_.graphs.get(flow_id)
        if graph is None:
            raise NodeError(f"flow {flow_id} is not in this deployment")
        step = node.id if not times else f"{node.id}#{times}"
        child = _Execution(
            self.run_,
            graph,
            inputs,
            prefix=f"{self.prefix}{step}/",
            depth=self.depth + 1,
            chain=self.chain,
            collector=collector if collector is not None else self.collector,
        )
        try:
            return await child.run()
        except ExecutionFailed as error:
            if self.run_.limit_reached is not None:  # said once, not once per level
                raise LimitReached(self.run_.limit_reached) from None
            if self.run_.too_deep is not None:
                raise NodeError(self.run_.too_deep) from None
            raise NodeError(f"flow {flow_id}: {error}") from None


Tracker = tuple[tuple[str, int], ...]
Item = tuple[IValue | None, Tracker]
NO_LOOP: Tracker = ()


def _zip(tracker: Tracker, other: Tracker) -> Tracker:
    """The loops a value computed from two looped values comes from."""
    if not tracker or tracker == other:
        return other
    return (*tracker, *(step for step in other if step not in tracker))


def _missing_outputs(node: GraphNode, outputs: dict[str, IValue]) -> str | None:
    command = node.command
    if command.dynamic_ports:
        return None
    for port in command.outputs:
        if port.required and port.name not in outputs:
            return f"finished without its {port.name!r} output"
    return None


class _Context:
    """The NodeContext a command's `run` receives."""

    __slots__ = ("_execution", "_node", "node_id", "times")

    def __init__(self, execution: _Execution, node: GraphNode, times: int) -> None:
        self._execution = execution
        self._node = node
        self.node_id = execution.prefix + node.id
        self.times = times

    @property
    def flow_inputs(self) -> Mapping[str, IValue]:
        return self._execution.inputs

    def emit_flow_output(self, label: str, value: IValue) -> None:
        self._execution.emit(label, self.times, value)

    def log(self, level: str, content: str) -> None:
        self._execution.run_.log(level, content, self.node_id, self.times)

    def publish_event(self, kind: str, data: Mapping[str, Any]) -> None:
        self._execution.run_.recorder.event(kind, data)

    @property
    def remaining_seconds(self) -> float:
        return self._execution.run_.remaining_seconds

    @property
    def http_allow_private(self) -> bool:
        return self._execution.run_.http_allow_private

    async def run_flow(self, flow_id: int, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return await self._execution.call(self._node, self.times, flow_id, inputs, None)

    async def collect_flow(self, flow_id: int, inputs: dict[str, IValue]) -> InstructionCollector:
        collector = InstructionCollector()
        await self._execution.call(self._node, self.times, flow_id, inputs, collector)
        return collector

    @property
    def solana(self) -> SolanaSession | None:
        return self._execution.run_.solana

    @property
    def services(self) -> RunServices:
        return self._execution.run_.services

    @property
    def collector(self) -> InstructionCollector | None:
        """Set inside a flow run by `interflow_instructions`: instructions go there."""
        return self._execution.collector
