"""Load: 1,000 starts of a small deployment at concurrency 16 against `make dev` over HTTP.

The local stack runs as a subprocess (`python -m flowdeploy.local --port 0 --solana-port 0`,
so a busy 8899 does not matter), as the integration tests start it. Every start must answer
2xx and every run reach `succeeded`.
The same load on `GET /openapi.json` (a static document) measures the local stack's own
ceiling on this machine; the starts' throughput is reported as a ratio of it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from bench.report import ROOT, Row, percentile, print_rows

STARTS = int(os.environ.get("BENCH_STARTS", "1000"))
CONCURRENCY = 16
RUNS_TIMEOUT = 600.0

SUM_FLOW = {
    "name": "sum",
    "nodes": [
        {"id": "a", "data": {"node_id": "flow_input", "config": {"label": "a"}}},
        {"id": "b", "data": {"node_id": "flow_input", "config": {"label": "b"}}},
        {"id": "add", "data": {"node_id": "add"}},
        {"id": "sum", "data": {"node_id": "flow_output", "config": {"label": "sum"}}},
    ],
    "edges": [
        {"source": "a", "sourceHandle": "output", "target": "add", "targetHandle": "a"},
        {"source": "b", "sourceHandle": "output", "target": "add", "targetHandle": "b"},
        {"source": "add", "sourceHandle": "result", "target": "sum", "targetHandle": "input"},
    ],
}


# The bench measures the local stack's own ceiling: API Gateway's throttling (100 requests a
# second per route by default) would hide it.
UNTHROTTLED = ("ApiThrottlingRateLimit=1000000", "ApiThrottlingBurstLimit=1000000")


@contextmanager
def local_stack(
    parameters: Sequence[str] = UNTHROTTLED,
    module: str = "flowdeploy.local",
    args: Sequence[str] = (),
) -> Iterator[tuple[str, int]]:
    """`make dev` (or `module`, which runs it differently) on free ports (the API's and the
    local Solana RPC's); its base URL and pid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOW", "JWT_"))}
    env.pop("RUN_TOKEN_SECRET", None)
    # One user starts every run: let all of them be live at once (MaxLiveRunsPerUser).
    room = f"MaxLiveRunsPerUser={STARTS + CONCURRENCY}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            *args,
            "--port",
            "0",
            "--solana-port",
            "0",
            *(arg for p in (*parameters, room) for arg in ("--parameter", p)),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(os.environ.get("BENCH_STACK_LOG", os.devnull), "w"),  # noqa: SIM115
        text=True,
    )
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.match(r"FLOWDEPLOY_URL=(\S+)", line)
            url = found.group(1) if found else None
        if url is None:
            raise RuntimeError("the local stack did not start")
        # Handlers log to stdout: keep reading it, or a full pipe blocks the stack.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


_connections = threading.local()


def request(
    url: str, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any, float]:
    """(status, JSON body, seconds) of one request on this thread's keep-alive connection."""
    connection: http.client.HTTPConnection | None = getattr(_connections, url, None)
    if connection is None:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        setattr(_connections, url, connection)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    started = time.perf_counter()
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        payload = response.read()
    except Exception:
        connection.close()
        raise
    elapsed = time.perf_counter() - started
    return response.status, (json.loads(payload) if payload else None), elapsed


def hammer(count: int, call: Callable[[int], tuple[int, Any, float]]) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(call, range(count)))
    wall = time.perf_counter() - started
    latencies = [r[2] for r in results]
    return {
        "per_second": count / wall,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "failed": sum(1 for r in results if not 200 <= r[0] < 300),
        "bodies": [r[1] for r in results],
    }


def measure() -> list[Row]:
    from flowdeploy.auth import issue_access_token
    from flowdeploy.local import DEV_JWT_SECRET

    owner = str(uuid.uuid4())
    token = issue_access_token(owner, DEV_JWT_SECRET.encode(), 3600)
    with local_stack() as (url, _):
        status, created, _ = request(url, "POST", "/flow", token, SUM_FLOW)
        assert status == 201, created
        status, deployed, _ = request(url, "POST", f"/flow/deploy/{created['flow_id']}", token)
        assert status == 200, deployed
        deployment_id = deployed["deployment_id"]
        start_path = f"/deployment/start?id={deployment_id}"
        body = {"inputs": {"a": {"D": "1.5"}, "b": {"D": "2"}}}
        # One request per connection first: the stack's functions start their environments
        # (cold starts), as they would under any load; not counted.
        hammer(CONCURRENCY, lambda _: request(url, "GET", "/openapi.json", token))
        hammer(CONCURRENCY, lambda _: request(url, "POST", start_path, token, body))
        static = hammer(STARTS, lambda _: request(url, "GET", "/openapi.json", token))
        starts = hammer(STARTS, lambda _: request(url, "POST", start_path, token, body))
        started = {b["flow_run_id"] for b in starts["bodies"] if b and "flow_run_id" in b}
        waited = time.perf_counter()
        statuses: dict[str, int] = {}
        while time.perf_counter() - waited < RUNS_TIMEOUT:
            statuses = {}
            page = f"/deployment/{deployment_id}/flow_runs"
            while page:
                _, runs, _ = request(url, "GET", page, token)
                for run in runs["flow_runs"]:
                    if run["id"] in started:
                        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
                following = runs["next"]
                page = (
                    f"/deployment/{deployment_id}/flow_runs?after={following}" if following else ""
                )
            if statuses.get("succeeded", 0) == len(started) or not (
                statuses.get("queued") or statuses.get("running")
            ):
                break
            time.sleep(1)
        drained = time.perf_counter() - waited
    succeeded = statuses.get("succeeded", 0)
    ratio = starts["per_second"] / static["per_second"]
    return [
        Row(
            "load",
            f"{STARTS:,} starts at concurrency {CONCURRENCY}: non-2xx",
            str(starts["failed"]),
            "0",
            starts["failed"] == 0,
        ),
        Row(
            "load",
            "runs that reached succeeded",
            f"{succeeded:,}/{STARTS:,}",
            f"{STARTS:,}",
            succeeded == STARTS,
            f"all final {drained:.0f} s after the last start; {statuses}",
        ),
        Row(
            "load",
            "start throughput vs GET /openapi.json",
            f"{ratio:.2f}×",
            note=f"{starts['per_second']:.0f}/s vs {static['per_second']:.0f}/s",
        ),
        Row(
            "load",
            "start latency p50 / p99",
            f"{starts['p50']:.0f} / {starts['p99']:.0f} ms",
            note=f"static route: {static['p50']:.0f} / {static['p99']:.0f} ms",
        ),
    ]


if __name__ == "__main__":
    sys.exit(print_rows(measure()))
