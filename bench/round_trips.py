"""AWS calls per request, counted with botocore event hooks (`flowdeploy.local.calls`) against
moto in-process. tests/unit/test_round_trips.py asserts the same counts.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from typing import Any

from bench.inprocess import chain, local_api
from bench.report import Row, print_rows

READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
RUN_NODES = 200


def _kinds(calls: Counter[str]) -> tuple[int, int, int]:
    reads = sum(n for name, n in calls.items() if name.partition(":")[2] in READS)
    writes = sum(n for name, n in calls.items() if name.partition(":")[2] in WRITES)
    return reads, writes, calls["sqs:SendMessage"]


def _shown(calls: Counter[str]) -> str:
    return ", ".join(f"{n} {name.partition(':')[2]}" for name, n in sorted(calls.items()))


def _interflow(node_id: str, flow_id: int) -> dict[str, Any]:
    return {"id": node_id, "data": {"node_id": "interflow", "config": {"flow_id": flow_id}}}


def measure() -> list[Row]:
    from flowdeploy.local.calls import counting
    from flowdeploy.store import queue
    from tests.conftest import new_user
    from tests.unit.api import sqs_event

    rows = []
    with local_api() as api:
        user = new_user()
        flow_id = api.create_flow(user)
        deployment_id = api.deploy(user, flow_id)
        with counting() as by_id:
            assert (
                api.call("POST", f"/deployment/start?id={deployment_id}", user=user).status == 200
            )
        with counting() as by_tag:
            path = f"/deployment/start?flow={flow_id}&tag=latest"
            assert api.call("POST", path, user=user).status == 200
        reads, writes, sends = _kinds(by_id)
        rows.append(
            Row(
                "round trips",
                "POST /deployment/start?id=",
                f"{reads} read + {writes} write + {sends} send",
                "≤ 1 + 2 + 1 (a live-run place, the run)",
                reads <= 1 and writes <= 2 and sends <= 1,
                _shown(by_id),
            )
        )
        tag_reads = _kinds(by_tag)[0]
        rows.append(
            Row(
                "round trips",
                "POST /deployment/start?flow=&tag= (reads beyond ?id=)",
                f"+{tag_reads - reads} read",
                "≤ +1 (goal +0)",
                tag_reads - reads <= 1,
                _shown(by_tag),
            )
        )

        leaves = [api.create_flow(user) for _ in range(2)]
        middle = api.create_flow(user, nodes=[_interflow(f"l{i}", f) for i, f in enumerate(leaves)])
        entry = api.create_flow(user, nodes=[_interflow("m", middle)])
        with counting() as deploy:
            api.deploy(user, entry)
        levels = 2
        ok = (
            deploy["dynamodb:BatchGetItem"] == levels and deploy["dynamodb:TransactWriteItems"] == 1
        )
        rows.append(
            Row(
                "round trips",
                f"POST /flow/deploy/{{id}}, {levels} nesting levels",
                f"{deploy['dynamodb:BatchGetItem']} BatchGetItem + "
                f"{deploy['dynamodb:TransactWriteItems']} TransactWriteItems",
                f"{levels} + 1 (+ the entry flow's GetItem)",
                ok and deploy.total() == levels + 2,
                _shown(deploy),
            )
        )

        nodes, edges = chain(RUN_NODES)
        run_deployment = api.deploy(user, api.create_flow(user, nodes=nodes, edges=edges))
        reply = api.call("POST", f"/deployment/start?id={run_deployment}", user=user)
        message = queue.message_body(reply.body["flow_run_id"])
        with counting() as run:
            assert api.functions.invoke("RunFunction", sqs_event(message)) == {
                "batchItemFailures": []
            }
        batches = run["dynamodb:BatchWriteItem"]
        writes = _kinds(run)[1]
        rows.append(
            Row(
                "round trips",
                f"a run of {RUN_NODES} nodes: writes",
                f"{writes} ({batches} BatchWriteItem)",
                # N node records and one item of the run's events per flush, 25 per batch,
                # plus the claim and the final status
                f"≤ ceil((N + 1)/25) + 2 = {math.ceil((RUN_NODES + 1) / 25) + 2}",
                writes <= math.ceil((RUN_NODES + 1) / 25) + 2,
                _shown(run),
            )
        )
        rows += _signature_and_output_rows(api, user)
    return rows


def _signature_and_output_rows(api: Any, user: str) -> list[Row]:
    """POST /signature/submit (no credentials: it must be cheap), and the reads that
    GET /flow/output spends per second of waiting (a simulated clock: exact, and fast)."""
    from solders.keypair import Keypair

    from flowdeploy import run_output, signature_requests
    from flowdeploy.local.calls import counting
    from tests.unit.test_round_trips import running_run

    signer, message = Keypair(), b"\x80 a transaction message"
    run_id = running_run(api, user)
    request_id = int(signature_requests.open_request(run_id, str(signer.pubkey()), message, 30).id)
    body = {"id": request_id, "signature": str(signer.sign_message(message))}
    with counting() as submit:
        assert api.call("POST", "/signature/submit", json_body=body).status == 200
    rows = [
        Row(
            "round trips",
            "POST /signature/submit",
            f"{_kinds(submit)[0]} read + {_kinds(submit)[1]} write",
            "≤ 1 + 1, no Query/Scan",
            submit == Counter({"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 1}),
            _shown(submit),
        )
    ]
    now = [0.0]
    clock, sleep = run_output._clock, run_output._sleep
    run_output._clock = lambda: now[0]
    run_output._sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    try:
        run_id = running_run(api, user)
        with counting() as waited:
            assert api.call("GET", f"/flow/output/{run_id}", user=user).status == 504
    finally:
        run_output._clock, run_output._sleep = clock, sleep
    seconds = now[0]
    reads = waited["dynamodb:GetItem"]
    rows.append(
        Row(
            "round trips",
            f"GET /flow/output waiting {seconds:g} s for a run: reads per second",
            f"{reads / seconds:.2f}",
            "≤ 1.2 (polls back off to 1 s)",
            reads / seconds <= 1.2,
            f"{reads} GetItem in {seconds:g} s",
        )
    )
    return rows


if __name__ == "__main__":
    sys.exit(print_rows(measure()))
