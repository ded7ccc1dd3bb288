"""Deployed flows running for real on the local stack, driven over HTTP."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from flowdeploy.store import queue
from tests.conftest import Stack, new_user
from tests.integration.test_http import Client
from tests.unit.engine.flows import edge, node


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def deploy(client: Client, owner: str, flow_id: int) -> str:
    return client.deploy(owner, flow_id)


def create(client: Client, owner: str, nodes: list[Any], edges: list[Any]) -> int:
    return client.flow(owner, nodes=nodes, edges=edges)


def start(client: Client, owner: str, deployment_id: str, inputs: Any = None) -> dict[str, Any]:
    reply = client.request(
        "POST",
        f"/deployment/start?id={deployment_id}",
        user=owner,
        json={"inputs": inputs or {}},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def finished(client: Client, started: dict[str, Any], within: float = 20) -> dict[str, Any]:
    bearer = {"Authorization": f"Bearer {started['token']}"}
    deadline = time.monotonic() + within
    while True:
        run = client.request("GET", f"/flow_run/{started['flow_run_id']}", headers=bearer).json()
        if run["status"] not in {"queued", "running"} or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.1)


SUM_NODES = [
    node("a", "flow_input", label="a"),
    node("b", "flow_input", label="b"),
    node("add", "add"),
    node("sum", "flow_output", label="sum"),
]
SUM_EDGES = [edge("a", "add", into="a"), edge("b", "add", into="b"), edge("add", "sum", "result")]


def test_the_sum_flow_runs_end_to_end(client: Client) -> None:
    owner = new_user()
    deployment_id = deploy(client, owner, create(client, owner, SUM_NODES, SUM_EDGES))
    started = start(client, owner, deployment_id, {"a": {"D": "1.5"}, "b": {"D": "2"}})
    run = finished(client, started)
    assert (run["status"], run["outputs"], run["error"]) == (
        "succeeded",
        {"sum": {"D": "3.5"}},
        None,
    )


def test_a_nested_flow_edited_after_deployment_runs_as_deployed(client: Client) -> None:
    owner = new_user()
    child_nodes = [
        node("x", "flow_input", label="x"),
        node("op", "mul", b=2),
        node("y", "flow_output", label="y"),
    ]
    child_edges = [edge("x", "op", into="a"), edge("op", "y", "result")]
    child = create(client, owner, child_nodes, child_edges)
    parent = create(
        client,
        owner,
        [
            node("in", "flow_input", label="v"),
            node("call", "interflow", flow_id=child),
            node("out", "flow_output", label="result"),
        ],
        [edge("in", "call", into="x"), edge("call", "out", "y")],
    )
    deployment_id = deploy(client, owner, parent)
    child_nodes[1] = node("op", "add", b=1000)
    edit = client.request(
        "PUT",
        f"/flow/{child}",
        user=owner,
        json={"name": "edited", "nodes": child_nodes, "edges": child_edges},
    )
    assert edit.status_code == 200, edit.text

    run = finished(client, start(client, owner, deployment_id, {"v": {"D": "21"}}))
    assert (run["status"], run["outputs"]) == ("succeeded", {"result": {"D": "42"}})


def test_a_failing_node_fails_the_run_naming_it(client: Client) -> None:
    owner = new_user()
    flow_id = create(
        client,
        owner,
        [node("in", "flow_input", label="d"), node("divide", "div", a=1)],
        [edge("in", "divide", into="b")],
    )
    started = start(client, owner, deploy(client, owner, flow_id), {"d": {"D": "0"}})
    run = finished(client, started)
    assert run["status"] == "failed"
    assert run["error"] == "node 'divide' (div) failed: cannot compute 1 / 0: division by zero"
    bearer = {"Authorization": f"Bearer {started['token']}"}
    nodes = client.request("GET", f"/flow_run/{started['flow_run_id']}/nodes", headers=bearer)
    assert {n["node_id"]: n["status"] for n in nodes.json()["nodes"]} == {
        "in": "succeeded",
        "divide": "failed",
    }


def test_twenty_parallel_waits_run_concurrently(client: Client) -> None:
    owner = new_user()
    waits = [node(f"w{i}", "wait", seconds={"D": "0.5"}) for i in range(20)]
    started = start(client, owner, deploy(client, owner, create(client, owner, waits, [])))
    run = finished(client, started)
    assert run["status"] == "succeeded"
    # 20 waits of 0.5 s one after another would be 10 s; timings themselves belong to the benchmark.
    assert elapsed(run["started_at"], run["finished_at"]) < 5


def elapsed(start: str, end: str) -> float:
    from datetime import datetime

    fmt = "%Y-%m-%d %H:%M:%S.%f"
    return (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds()


def test_a_message_delivered_twice_executes_once(client: Client, stack: Stack) -> None:
    owner = new_user()
    flow_id = create(client, owner, [node("note", "log", message="once")], [])
    started = start(client, owner, deploy(client, owner, flow_id))
    first = finished(client, started)
    assert first["status"] == "succeeded"

    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint, region_name="us-east-1")
    [queue_url] = [url for url in sqs.list_queues()["QueueUrls"] if url.endswith("/FlowRunQueue")]
    sqs.send_message(QueueUrl=queue_url, MessageBody=queue.message_body(started["flow_run_id"]))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if all(value == "0" for value in attributes.values()):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the duplicate message was never consumed")

    again = finished(client, started)
    assert again["finished_at"] == first["finished_at"]
    bearer = {"Authorization": f"Bearer {started['token']}"}
    logs = client.request("GET", f"/flow_run/{started['flow_run_id']}/logs", headers=bearer)
    assert [line["content"] for line in logs.json()["logs"]] == ["once"]


def test_long_runs_hold_a_worker_each_and_never_keep_a_short_run_waiting(client: Client) -> None:
    owner = new_user()
    slow = deploy(client, owner, create(client, owner, [node("w", "wait", seconds={"D": "8"})], []))
    quick = deploy(client, owner, create(client, owner, SUM_NODES, SUM_EDGES))
    # Two long runs, each received in a batch of its own (each is running before the next
    # starts): they used to hold both of the local stack's pollers until they finished.
    held = []
    for _ in range(2):
        started = start(client, owner, slow)
        deadline = time.monotonic() + 10
        while status(client, started) == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
        held.append(started)
    run = finished(
        client, start(client, owner, quick, {"a": {"D": "1"}, "b": {"D": "2"}}), within=5
    )
    assert run["status"] == "succeeded"
    assert [status(client, h) for h in held] == ["running", "running"]


def status(client: Client, started: dict[str, Any]) -> str:
    bearer = {"Authorization": f"Bearer {started['token']}"}
    return str(
        client.request("GET", f"/flow_run/{started['flow_run_id']}", headers=bearer).json()[
            "status"
        ]
    )
