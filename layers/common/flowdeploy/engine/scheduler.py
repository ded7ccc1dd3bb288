"""Runs a deployment's flow graph on one asyncio loop.

A node starts as soon as every connected input has a value; independent nodes run
concurrently. A node that gets no value on a connected input (a branch not taken) is
skipped, and so is everything downstream of it. The first node error fails the run:
nothing else starts, nodes still running are cancelled, and what was produced and recorded
so far is kept. Past its deadline, or when stopped, a run ends the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from flowdeploy.engine.command import NodeError, ReturnTransaction
from flowdeploy.engine.convert import ConversionError
from flowdeploy.engine.graph import FlowGraph, GraphNode
from flowdeploy.ids import timestamp
from flowdeploy.values import STRING, IValue

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
MAX_INTERFLOW_DEPTH = 16
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


@dataclass(slots=True)
class LogLine:
    seq: int
    time: str
    level: str
    node_id: str | None
    content: str


class Recorder(Protocol):
    """Where node runs and log lines go as they happen (batched to storage by the caller)."""

    def node(self, run: NodeRun) -> None: ...

    def log(self, line: LogLine) -> None: ...


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


class ExecutionFailed(Exception):
    """A flow execution ended early: a node failed, the deadline passed, or a stop."""


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
    ) -> None:
        self.graphs = graphs
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
            if self.transaction is not None:
                # Upstream's clients read it from the outputs (getFlowOutput): put it there too.
                outputs = {"transaction": IValue(STRING, self.transaction), **top.outputs}
                return RunResult(STOPPED, outputs, None, self.transaction, self.simulation)
            status = STOPPED if self.stop_reason is not None else FAILED
            return RunResult(status, top.outputs, str(error), timed_out=self.expired)
        finally:
            timer.cancel()
        return RunResult(SUCCEEDED, outputs, None)

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

    def log(self, level: str, content: str, node_id: str | None) -> None:
        seq = next(self._log_seq)
        if seq > MAX_LOG_LINES:
            return
        if seq == MAX_LOG_LINES:
            level, content = "warn", f"log truncated: a run keeps at most {MAX_LOG_LINES} lines"
        else:
            content = clip(content, MAX_LOG_CHARS)
        self.recorder.log(LogLine(seq, timestamp(), level, node_id, content))

    def next_node_seq(self) -> int:
        return next(self._node_seq)


class _Execution:
    """One flow's graph running with one set of inputs (the run, or an interflow call)."""

    def __init__(
        self,
        run: Run,
        graph: FlowGraph,
        inputs: Mapping[str, IValue],
        *,
        prefix: str,
        depth: int,
    ) -> None:
        self.run_ = run
        self.graph = graph
        self.inputs = inputs
        self.prefix = prefix
        self.depth = depth
        self.outputs: dict[str, IValue] = {}
        self.failure: str | None = None
        self._values: dict[str, dict[str, IValue]] = {}
        self._waiting = {node_id: len(node.incoming) for node_id, node in graph.nodes.items()}
        self._skipped: set[str] = set()
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._done = asyncio.Event()

    async def run(self) -> dict[str, IValue]:
        for node_id, waiting in self._waiting.items():
            if waiting == 0:
                self._spawn(self.graph.nodes[node_id])
        try:
            if self._tasks:
                await self._done.wait()
        finally:
            await self._cancel_running()
        if self.failure is not None:
            raise ExecutionFailed(self.failure)
        return self.outputs

    def end(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        if self.run_.end_reason is None:
            self.run_.end_reason = reason  # the first failure anywhere is the run's cause
        self._done.set()

    def running_nodes(self) -> list[str]:
        return [self.prefix + node_id for node_id in self._tasks.values()]

    async def _cancel_running(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, node: GraphNode) -> None:
        task = asyncio.create_task(self._run_node(node))
        self._tasks[task] = node.id
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not self._tasks:
            self._done.set()

    async def _run_node(self, node: GraphNode) -> None:
        inputs = self._values.pop(node.id, None) or {}
        if node.preset:
            inputs = {**node.preset, **inputs}
        started = timestamp()
        outputs: dict[str, IValue] | None = None
        error: str | None = None
        try:
            outputs = await node.command.run(_Context(self, node), inputs)
            error = _missing_outputs(node, outputs)
        except asyncio.CancelledError:
            self._record(
                node,
                NODE_CANCELED,
                inputs,
                None,
                f"canceled: {self.run_.end_reason or 'the run ended'}",
                started,
            )
            raise
        except ReturnTransaction as returned:
            self._record(node, NODE_STOPPED, inputs, None, str(returned), started)
            self.run_.return_transaction(returned.transaction, node.label, returned.simulation)
            return
        except (NodeError, ConversionError) as failure:
            error = str(failure)
        except Exception as failure:  # a bug in a command must fail its node, not the worker
            logger.exception("node %s raised", node.id)
            error = f"internal error in {node.command.name}: {type(failure).__name__}: {failure}"
        if error is not None:
            error = clip(error, MAX_NODE_ERROR_CHARS)
            self._record(node, NODE_FAILED, inputs, None, error, started)
            self.run_.log("error", f"{node.label}: {error}", self.prefix + node.id)
            self.end(f"{node.label} failed: {error}")
            return
        assert outputs is not None
        self._record(node, NODE_SUCCEEDED, inputs, outputs, None, started)
        if self.failure is None:
            self._deliver(node, outputs)

    def _deliver(self, node: GraphNode, outputs: dict[str, IValue]) -> None:
        for port, target_id, target_port in node.outgoing:
            if target_id in self._skipped:
                continue
            value = outputs.get(port)
            if value is not None:
                self._values.setdefault(target_id, {})[target_port] = value
            elif target_port not in self.graph.nodes[target_id].optional:
                self._skip(target_id, f"no value on {node.id}.{port}")
                continue
            self._waiting[target_id] -= 1
            if self._waiting[target_id] == 0:
                self._spawn(self.graph.nodes[target_id])

    def _skip(self, node_id: str, reason: str) -> None:
        pending = [(node_id, reason)]
        while pending:
            current, why = pending.pop()
            if current in self._skipped:
                continue
            self._skipped.add(current)
            node = self.graph.nodes[current]
            self._values.pop(current, None)
            self._record(node, NODE_SKIPPED, None, None, why, None)
            for _, target, port in node.outgoing:
                if port in self.graph.nodes[target].optional:
                    self._deliver_nothing(target)
                else:
                    pending.append((target, f"{current} was skipped"))

    def _deliver_nothing(self, node_id: str) -> None:
        """An optional input whose source will never produce: the node may start without it."""
        if node_id in self._skipped or self.failure is not None:
            return
        self._waiting[node_id] -= 1
        if self._waiting[node_id] == 0:
            self._spawn(self.graph.nodes[node_id])

    def _record(
        self,
        node: GraphNode,
        status: str,
        inputs: Mapping[str, IValue] | None,
        outputs: Mapping[str, IValue] | None,
        error: str | None,
        started: str | None,
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
            )
        )

    async def call(
        self, node: GraphNode, flow_id: int, inputs: dict[str, IValue]
    ) -> dict[str, IValue]:
        if self.depth + 1 > MAX_INTERFLOW_DEPTH:
            raise NodeError(f"interflow nesting is deeper than {MAX_INTERFLOW_DEPTH}")
        graph = self.run_.graphs.get(flow_id)
        if graph is None:
            raise NodeError(f"flow {flow_id} is not in this deployment")
        child = _Execution(
            self.run_, graph, inputs, prefix=f"{self.prefix}{node.id}/", depth=self.depth + 1
        )
        try:
            return await child.run()
        except ExecutionFailed as error:
            raise NodeError(f"flow {flow_id}: {error}") from None


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

    __slots__ = ("_execution", "_node", "node_id")

    def __init__(self, execution: _Execution, node: GraphNode) -> None:
        self._execution = execution
        self._node = node
        self.node_id = execution.prefix + node.id

    @property
    def flow_inputs(self) -> Mapping[str, IValue]:
        return self._execution.inputs

    def emit_flow_output(self, label: str, value: IValue) -> None:
        self._execution.outputs[label] = value

    def log(self, level: str, content: str) -> None:
        self._execution.run_.log(level, content, self.node_id)

    @property
    def remaining_seconds(self) -> float:
        return self._execution.run_.remaining_seconds

    @property
    def http_allow_private(self) -> bool:
        return self._execution.run_.http_allow_private

    async def run_flow(self, flow_id: int, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return await self._execution.call(self._node, flow_id, inputs)

    @property
    def solana(self) -> SolanaSession | None:
        return self._execution.run_.solana
