"""Live run events: what they cost a run, and how soon a subscriber sees one.

Both delivery designs are measured (docs/architecture.md, "Live run events"):
- run: RunFunction posts to the run's subscribers (the design in the product);
- stream: a DynamoDB stream on RunRecordsTable feeds a fan-out polled 4 times a second, as
  Lambda polls a stream (`bench/live_stack.py`), with the run's records written every 2 s
  (as now) or every 50 ms (what a stream needs to be prompt).

Calls: in-process against moto, counted with botocore's hook as the round-trip tests count
them. Latency: `make dev` (or its stream variant) as a subprocess, subscribers on real
WebSocket connections in this process; for each NodeFinish, the time it was received minus
the event's own `time` (same clock), over every subscriber.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from bench.report import Row, median, percentile, print_rows

SECTION = "live events"
CHAIN = 100  # nodes in the run whose calls are counted
WAITS = 20  # wait nodes of the run whose latency is measured
WAIT_SECONDS = "0.25"
PROMPT_FLUSH = 0.05
CPU_CHAIN = 10_000


def _per_node(calls: Counter[str], nodes: int) -> str:
    return ", ".join(f"{n / nodes:.2f} {name.split(':')[1]}" for name, n in sorted(calls.items()))


def _events_off() -> Any:
    from flowdeploy import runner
    from flowdeploy.live.run_stream import RunStream

    original = runner.RunStream
    runner.RunStream = lambda run_id, owner: RunStream(run_id, owner, enabled=False)  # type: ignore[assignment,misc]
    return original


def _calls() -> list[Row]:
    from bench.inprocess import local_api
    from flowdeploy import runner
    from tests.unit.test_live_events import run_with_subscribers

    with local_api():
        original = _events_off()
        try:
            before, _ = run_with_subscribers(0, CHAIN)
        finally:
            runner.RunStream = original  # type: ignore[misc]
        quiet, _ = run_with_subscribers(0, CHAIN)
        watched, received = run_with_subscribers(10, CHAIN)
    assert all(len(frames) == len(received[0]) for frames in received)
    extra_quiet = quiet - before
    extra_watched = watched - before
    posts = watched["apigatewaymanagementapi:PostToConnection"]
    return [
        Row(
            SECTION,
            f"run design, {CHAIN}-node run, 0 subscribers: extra AWS calls per node",
            f"{sum(extra_quiet.values()) / CHAIN:.2f}",
            "0 per node (events ride the record batches)",
            sum(extra_quiet.values()) <= 1,
            f"run without events: {dict(before)}; with: {dict(quiet)}",
        ),
        Row(
            SECTION,
            f"run design, {CHAIN}-node run, 10 subscribers: extra AWS calls per node",
            _per_node(extra_watched, CHAIN),
            "10 posts per event, 0 DynamoDB per node",
            extra_watched["dynamodb:Query"] == 1 and posts == 10 * len(received[0]),
            f"{len(received[0])} events × 10 = {posts} PostToConnection; 1 Query of subscribers",
        ),
        *_prompt_stream_calls(),
    ]


def _prompt_stream_calls() -> list[Row]:
    """What a stream design must write to be prompt: records every 50 ms instead of 2 s."""
    from bench.inprocess import local_api
    from flowdeploy import runner
    from flowdeploy.local.calls import counting
    from flowdeploy.store import queue
    from tests.unit.api import sqs_event
    from tests.unit.engine.flows import edge, node
    from tests.unit.test_live_events import started_run

    nodes = [node("w0", "wait", seconds={"D": WAIT_SECONDS})]
    nodes += [node(f"w{i}", "wait", seconds={"D": WAIT_SECONDS}) for i in range(1, 20)]
    edges = [edge(f"w{i - 1}", f"w{i}", "value", "value") for i in range(1, 20)]
    rows = []
    for flush in (runner.FLUSH_SECONDS, PROMPT_FLUSH):
        with local_api() as api:
            saved, runner.FLUSH_SECONDS = runner.FLUSH_SECONDS, flush
            try:
                run = started_run(api, str(uuid.uuid4()), nodes, edges)
                with counting() as calls:
                    event = sqs_event(queue.message_body(run["flow_run_id"]))
                    api.functions.invoke("RunFunction", event)
            finally:
                runner.FLUSH_SECONDS = saved
        writes = calls["dynamodb:BatchWriteItem"]
        rows.append(
            Row(
                SECTION,
                f"stream design, records written every {flush:g} s: writes per node",
                f"{writes / len(nodes):.2f}",
                note=f"{writes} BatchWriteItem for {len(nodes)} nodes of {WAIT_SECONDS} s; "
                "each write is a stream record: ≥ 1 fan-out invocation and 1 Query of "
                "subscribers per 250 ms poll that finds one, with or without subscribers",
            )
        )
    return rows


async def _watch(ws_url: str, base: str, subscribers: int) -> tuple[list[float], list[float]]:
    """Start a run of WAITS wait nodes with `subscribers` connections watching it: the delay
    of every NodeFinish that happened once its subscriber was receiving (ms), and each
    subscriber's wait from its subscription's reply to its first event (the run learns of a
    subscriber that joins while it runs on its next read of the run item, within 1 s)."""
    import websockets

    from bench.load import request
    from flowdeploy.auth import issue_access_token
    from flowdeploy.local import DEV_JWT_SECRET
    from tests.unit.engine.flows import edge, node

    owner = str(uuid.uuid4())
    token = issue_access_token(owner, DEV_JWT_SECRET.encode(), 3600)
    nodes = [node(f"w{i}", "wait", seconds={"D": WAIT_SECONDS}) for i in range(WAITS)]
    edges = [edge(f"w{i - 1}", f"w{i}", "value", "value") for i in range(1, WAITS)]
    flow = {"name": "w", "nodes": nodes, "edges": edges}
    status, created, _ = request(base, "POST", "/flow", token, flow)
    assert status == 201, created
    _, deployed, _ = request(base, "POST", f"/flow/deploy/{created['flow_id']}", token)
    start = f"/deployment/start?id={deployed['deployment_id']}"
    _, started, _ = request(base, "POST", start, token, {})
    delays: list[float] = []
    joins: list[float] = []

    async def one() -> None:
        async with websockets.connect(ws_url, compression=None) as ws:
            auth = {"token": token}
            await ws.send(json.dumps({"id": 1, "method": "Authenticate", "params": auth}))
            await ws.recv()
            params = {"flow_run_id": started["flow_run_id"]}
            await ws.send(
                json.dumps({"id": 2, "method": "SubscribeFlowRunEvents", "params": params})
            )
            await ws.recv()
            subscribed = attached = time.time()
            first = True
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                received = time.time()
                if first:
                    joins.append((received - subscribed) * 1000)
                    attached, first = received, False
                happened = datetime.fromisoformat(message["data"]["time"]).timestamp()
                if message["event"] == "NodeFinish" and happened >= attached:
                    delays.append((received - happened) * 1000)
                if message["event"] == "FlowFinish":
                    return

    await asyncio.gather(*(one() for _ in range(subscribers)))
    return delays, joins


def _latency() -> list[Row]:
    from bench.load import local_stack

    rows = []
    for design, flush in (("run", 2.0), ("stream", 2.0), ("stream", PROMPT_FLUSH)):
        args = ("--design", design, "--flush", str(flush))
        label = "run design" if design == "run" else f"stream design, {flush:g} s writes"
        with local_stack(module="bench.live_stack", args=args) as (base, _):
            ws_url = "ws" + base.removeprefix("http") + "/ws"
            asyncio.run(_watch(ws_url, base, 1))  # warm: the functions' first environments
            for subscribers in (1, 10):
                delays, joins = asyncio.run(_watch(ws_url, base, subscribers))
                assert len(joins) == subscribers and delays, (joins, delays)
                rows.append(
                    Row(
                        SECTION,
                        f"{label}, {subscribers} subscriber(s): node finish → frame, p50 / p99",
                        f"{percentile(delays, 0.5):.0f} / {percentile(delays, 0.99):.0f} ms",
                        "p50 ≤ 50 ms" if design == "run" else "",
                        percentile(delays, 0.5) <= 50 if design == "run" else None,
                        f"{len(delays)} NodeFinish events on make dev; subscription → first "
                        f"event {percentile(joins, 0.5):.0f} ms (max {max(joins):.0f})",
                    )
                )
    return rows


def _cpu() -> list[Row]:
    """What building the events costs the engine when nobody listens (CPU, per node)."""
    from bench.inprocess import chain
    from flowdeploy.engine import Run, build_flow_set
    from tests.unit.engine.flows import Memory, Publishing

    nodes, edges = chain(CPU_CHAIN)
    graphs = build_flow_set({1: {"nodes": nodes, "edges": edges}}, 1)

    def seconds(recorder: Any) -> float:
        started = time.perf_counter()
        result = asyncio.run(Run(graphs, recorder, deadline_seconds=600).execute(1, {}))
        assert result.status == "succeeded"
        return time.perf_counter() - started

    without = median([seconds(Memory()) for _ in range(3)])
    publishing = [Publishing() for _ in range(3)]
    with_events = median([seconds(recorder) for recorder in publishing])
    per_node = (with_events - without) / CPU_CHAIN * 1e6
    return [
        Row(
            SECTION,
            f"{CPU_CHAIN:,}-node chain: building its events, per node",
            f"{per_node:.0f} µs",
            "≤ 50 µs",
            per_node <= 50,
            f"{len(publishing[0].stream.kept):,} events; run {with_events * 1000:.0f} ms vs "
            f"{without * 1000:.0f} ms without events",
        )
    ]


def measure() -> list[Row]:
    import tests.conftest  # noqa: F401 - the unit tests' environment for the in-process part

    return _calls() + _cpu() + _latency()


if __name__ == "__main__":
    sys.exit(print_rows(measure()))
