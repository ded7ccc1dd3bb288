"""The work and the memory of one run (issue 16): the node-run limit through RunFunction, and
the records held between flushes: flushed by count and by bytes, never more than a bound
(nodes wait to start while it is reached), each value held as it will be stored."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import pytest

from flowdeploy import runner
from flowdeploy.engine import NodeRun, Run, build_flow_set
from flowdeploy.live.run_stream import RunStream
from flowdeploy.store import run_records
from flowdeploy.values import STRING, IValue
from tests.unit.api import Api, count_items
from tests.unit.engine.flows import plus_one_loop
from tests.unit.test_run_execution import deployed, execute, read, start


def test_a_run_past_the_node_run_limit_fails_cleanly_with_its_records_kept(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = dataclasses.replace(runner.settings(), flow_max_node_runs=30)
    monkeypatch.setattr(runner, "settings", lambda: limited)
    owner, _, deployment_id = deployed(api, plus_one_loop(100))
    started = start(api, owner, deployment_id)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert (run["status"], run["error"]) == (
        "failed",
        "the run reached the limit of 30 node runs per run (FLOW_MAX_NODE_RUNS; loops and "
        "nested flows count each run); not started: node 'plus' (add)",
    )
    records = read(api, started, "/nodes?limit=100").body["nodes"]
    assert [r["status"] for r in records] == ["succeeded"] * 30


def node_run(seq: int, output: str = "x") -> NodeRun:
    return NodeRun(
        seq, f"n{seq}", "const", 1, "succeeded", {}, {"output": IValue(STRING, output)}, None,
        "2025-01-01 00:00:00.0", "2025-01-01 00:00:00.0",
    )  # fmt: skip


class Writes:
    """run_records.write, counted, optionally slowed; `wait()` until `count` writes ended."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pause: float = 0.0) -> None:
        self.count = 0
        self._pause = pause
        self._real = run_records.write
        self._loop = asyncio.get_running_loop()
        self._written = asyncio.Event()
        self._lock = threading.Lock()
        monkeypatch.setattr(run_records, "write", self)

    def __call__(self, *args: Any) -> None:
        time.sleep(self._pause)
        self._real(*args)
        with self._lock:
            self.count += 1
        self._loop.call_soon_threadsafe(self._written.set)

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5):
            while self.count < count:
                self._written.clear()
                await self._written.wait()


@pytest.mark.usefixtures("aws")
def test_records_are_flushed_at_once_when_enough_are_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 60.0)  # only count or bytes can flush
    monkeypatch.setattr(runner, "FLUSH_RECORDS", 10)

    async def scenario() -> None:
        writes = Writes(monkeypatch)
        recorder = runner.StoredRecorder(RunStream("run-count", "owner", enabled=False))
        flushing = asyncio.create_task(recorder.keep_flushing())
        for seq in range(10):
            recorder.node(node_run(seq))
        await writes.wait(1)  # long before FLUSH_SECONDS
        flushing.cancel()

    asyncio.run(scenario())
    assert count_items("RunRecordsTable") == 10


@pytest.mark.usefixtures("aws")
def test_records_are_flushed_by_bytes_and_hold_values_only_as_they_are_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 60.0)
    stored = run_records.MAX_VALUES_BYTES
    monkeypatch.setattr(runner, "FLUSH_BYTES", 3 * stored)

    async def scenario() -> None:
        writes = Writes(monkeypatch)
        recorder = runner.StoredRecorder(RunStream("run-bytes", "owner", enabled=False))
        flushing = asyncio.create_task(recorder.keep_flushing())
        recorder.node(node_run(0, "x" * 1_000_000))  # held as the note that replaces it
        assert recorder.held_bytes < 1_000
        for seq in range(1, 4):
            recorder.node(node_run(seq, "y" * (stored - 100)))  # kept whole
        assert recorder.held_bytes > 3 * (stored - 100)
        await writes.wait(1)
        flushing.cancel()

    asyncio.run(scenario())
    assert count_items("RunRecordsTable") == 4


@pytest.mark.usefixtures("aws")
def test_a_loop_faster_than_its_writes_waits_for_them_holding_a_bounded_number_of_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "FLUSH_RECORDS", 10)
    monkeypatch.setattr(runner, "MAX_HELD_RECORDS", 30)
    graphs = build_flow_set({1: plus_one_loop(200)}, 1)
    held: list[int] = []

    async def scenario() -> str:
        Writes(monkeypatch, pause=0.02)  # DynamoDB slower than the loop
        recorder = runner.StoredRecorder(RunStream("run-loop", "owner", enabled=False))
        record = recorder.node

        def node(run: NodeRun) -> None:
            record(run)
            held.append(recorder.held_records)

        recorder.node = node  # type: ignore[method-assign]
        flushing = asyncio.create_task(recorder.keep_flushing())
        result = await Run(graphs, recorder, deadline_seconds=30).execute(1, {})
        flushing.cancel()
        assert await recorder.flush()
        return result.status

    assert asyncio.run(scenario()) == "succeeded"
    assert len(held) == 204
    assert max(held) <= 30, max(held)
    assert count_items("RunRecordsTable") == 204
