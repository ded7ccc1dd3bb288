"""`make dev`'s memory under transactional writes: it must stay bounded.

The local stack runs as a subprocess, as `make dev` runs it; its DynamoDB (moto) lives in
that process. 30 large deployments (each a flow of about 300 KB stored, and its frozen
copy) fill the Deployments table, then 1,000 PATCHes of their `output_instructions` make 1,000
TransactWriteItems on it, 8 at a time over HTTP. The process's resident memory is read from
/proc before and after. moto as published copied the whole table for every item of every
transaction and kept every copy for good: this is what flowdeploy.local.moto_dynamodb fixes.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.load import local_stack, request
from bench.report import Row, print_rows

DEPLOYMENTS = 30
WRITES = int(os.environ.get("BENCH_TRANSACTIONS", "1000"))
CONCURRENCY = 8
FLOW_BYTES = 560_000  # hex of random bytes: about 300 KB stored, near a flow's limit
GROWTH_BUDGET_MB = 64
GIVE_UP_MB = 4096  # the machine is shared: stop before moto takes it all


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def large_flow(n: int) -> dict[str, Any]:
    blob = os.urandom(FLOW_BYTES // 2).hex()
    return {
        "name": f"large {n}",
        "nodes": [{"id": "in", "data": {"node_id": "flow_input", "config": {"label": blob}}}],
        "edges": [],
    }


def measure() -> list[Row]:
    from flowdeploy.auth import issue_access_token
    from flowdeploy.local import DEV_JWT_SECRET

    owner = str(uuid.uuid4())
    token = issue_access_token(owner, DEV_JWT_SECRET.encode(), 3600)
    with local_stack() as (url, pid):
        deployments = []
        for n in range(DEPLOYMENTS):
            status, created, _ = request(url, "POST", "/flow", token, large_flow(n))
            assert status == 201, created
            status, deployed, _ = request(url, "POST", f"/flow/deploy/{created['flow_id']}", token)
            assert status == 200, deployed
            deployments.append(deployed["deployment_id"])
        before = rss_mb(pid)
        written = 0

        def patch(i: int) -> int:
            if rss_mb(pid) > GIVE_UP_MB:
                return 0
            body = {"output_instructions": i % 2 == 0}
            deployment = deployments[i % DEPLOYMENTS]
            status, reply, _ = request(url, "PATCH", f"/deployment/{deployment}", token, body)
            assert status == 200, reply
            return 1

        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            written = sum(pool.map(patch, range(WRITES)))
        seconds = time.perf_counter() - started
        after, peak = rss_mb(pid), rss_mb(pid, "VmHWM")
    growth = after - before
    return [
        Row(
            "local memory",
            f"make dev RSS, {DEPLOYMENTS} large deployments: before → after {WRITES:,} "
            "transactional writes",
            f"{before:.0f} → {after:.0f} MB",
            f"growth < {GROWTH_BUDGET_MB} MB",
            written == WRITES and growth < GROWTH_BUDGET_MB,
            f"peak {peak:.0f} MB; {written:,} writes in {seconds:.0f} s "
            f"({seconds / max(written, 1) * 1000:.0f} ms each, {CONCURRENCY} at a time)",
        )
    ]


if __name__ == "__main__":
    sys.exit(print_rows(measure()))
