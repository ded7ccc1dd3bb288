"""Runs executed by RunFunction, read back through the API: outputs, node runs, logs, stop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from flowdeploy import runner
from flowdeploy.runner import execute_queued_run
from flowdeploy.store import queue, run_records
from flowdeploy.store import runs as run_store
from tests.conftest import new_user
from tests.unit.api import Api, Reply, count_items, sqs_event
from tests.unit.engine.flows import edge, node

SUM_FLOW = {
    "nodes": [
        node("a", "flow_input", label="a"),
        node("b", "flow_input", label="b"),
        node("add", "add"),
        node("sum", "flow_output", label="sum"),
    ],
    "edges": [
        edge("a", "add", into="a"),
        edge("b", "add", into="b"),
        edge("add", "sum", "result"),
    ],
}
SUM_INPUTS = {"inputs": {"a": {"D": "1.5"}, "b": {"D": "2"}}}


def deployed(api: Api, flow: dict[str, Any]) -> tuple[str, int, str]:
    owner = new_user()
    flow_id = api.create_flow(owner, **flow)
    return owner, flow_id, api.deploy(owner, flow_id)


def start(api: Api, owner: str, deployment_id: str, body: Any = None) -> dict[str, str]:
    reply = api.call(
        "POST", f"/deployment/start?id={deployment_id}", user=owner, json_body=body or {}
    )
    assert reply.status == 200, reply.body
    return dict(reply.body)


def execute(api: Api, run_id: str) -> dict[str, Any]:
    result = api.functions.invoke("RunFunction", sqs_event(queue.message_body(run_id)))
    assert result == {"batchItemFailures": []}
    return dict(result)


def token(started: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {started['token']}"}


def read(api: Api, started: dict[str, str], suffix: str = "") -> Reply:
    return api.call("GET", f"/flow_run/{started['flow_run_id']}{suffix}", headers=token(started))


def test_the_sum_example_runs_and_returns_its_output(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id, SUM_INPUTS)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert (run["status"], run["outputs"], run["error"]) == (
        "succeeded",
        {"sum": {"D": "3.5"}},
        None,
    )
    assert run["created_at"] <= run["started_at"] <= run["finished_at"]


def test_node_runs_are_recorded_with_inputs_and_outputs(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id, SUM_INPUTS)
    execute(api, started["flow_run_id"])
    page = read(api, started, "/nodes").body
    assert page["next"] is None
    by_node = {record["node_id"]: record for record in page["nodes"]}
    assert list(by_node)[-2:] == ["add", "sum"], "records come in the order nodes finished"
    add = by_node["add"]
    assert (add["command"], add["status"], add["error"]) == ("add", "succeeded", None)
    assert add["inputs"] == {"a": {"D": "1.5"}, "b": {"D": "2"}}
    assert add["outputs"] == {"result": {"D": "3.5"}}
    assert add["started_at"] <= add["finished_at"]


def test_a_failing_node_fails_the_run_and_is_in_the_logs(api: Api) -> None:
    flow = {
        "nodes": [node("zero", "div", a=1, b=0), node("note", "log", message="hi")],
        "edges": [],
    }
    owner, _, deployment_id = deployed(api, flow)
    started = start(api, owner, deployment_id)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert run["error"] == "node 'zero' (div) failed: cannot compute 1 / 0: division by zero"
    logs = read(api, started, "/logs").body["logs"]
    assert {(line["level"], line["node_id"]) for line in logs} >= {("error", "zero")}
    error_line = next(line for line in logs if line["level"] == "error")
    assert error_line["content"] == "node 'zero' (div): cannot compute 1 / 0: division by zero"


def test_a_run_executes_the_deployed_snapshot_not_the_edited_flow(api: Api) -> None:
    owner, flow_id, deployment_id = deployed(api, SUM_FLOW)
    edited = {
        **SUM_FLOW,
        "nodes": [*SUM_FLOW["nodes"][:2], node("add", "mul"), SUM_FLOW["nodes"][3]],
    }
    reply = api.call("PUT", f"/flow/{flow_id}", user=owner, json_body={"name": "x", **edited})
    assert reply.status == 200, reply.body
    started = start(api, owner, deployment_id, SUM_INPUTS)
    execute(api, started["flow_run_id"])
    assert read(api, started).body["outputs"] == {"sum": {"D": "3.5"}}


def test_logs_and_nodes_come_in_pages(api: Api) -> None:
    flow = {"nodes": [node(f"l{i}", "log", message=f"line {i}") for i in range(5)], "edges": []}
    owner, _, deployment_id = deployed(api, flow)
    started = start(api, owner, deployment_id)
    execute(api, started["flow_run_id"])
    seen, after = [], None
    while True:
        query = "?limit=2" + (f"&after={after}" if after is not None else "")
        page = read(api, started, f"/logs{query}").body
        seen += [line["content"] for line in page["logs"]]
        after = page["next"]
        if after is None:
            break
    assert sorted(seen) == [f"line {i}" for i in range(5)]
    nodes = read(api, started, "/nodes?limit=3").body
    assert (len(nodes["nodes"]), nodes["next"]) == (3, 2)


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=x", "?after=-1"])
def test_bad_paging_is_a_400(api: Api, query: str) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id)
    reply = read(api, started, f"/nodes{query}")
    assert reply.status == 400
    assert "must be" in reply.body["error"]


@pytest.mark.parametrize("suffix", ["/nodes", "/logs"])
def test_node_runs_and_logs_have_the_runs_access_rule(api: Api, suffix: str) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id)
    path = f"/flow_run/{started['flow_run_id']}{suffix}"
    assert api.call("GET", path, user=owner).status == 200
    assert api.call("GET", path, headers=token(started)).status == 200
    assert api.call("GET", path, user=new_user()).status == 404
    assert api.call("GET", path).status == 401
    wallet = {"Authorization": "Bearer 5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"}
    assert api.call("GET", path, headers=wallet).status == 404


def test_a_queued_run_stops_at_once_and_never_executes(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id, SUM_INPUTS)
    reply = api.call("POST", f"/flow_run/{started['flow_run_id']}/stop", headers=token(started))
    assert reply.status == 200
    assert (reply.body["status"], reply.body["error"]) == (
        "stopped",
        "stopped by the run token's holder",
    )
    execute(api, started["flow_run_id"])
    assert read(api, started).body["status"] == "stopped"
    assert count_items("RunRecordsTable") == 0


def test_a_finished_run_cannot_be_stopped(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id, SUM_INPUTS)
    execute(api, started["flow_run_id"])
    reply = api.call("POST", f"/flow_run/{started['flow_run_id']}/stop", user=owner)
    assert (reply.status, reply.body) == (
        409,
        {"error": f"flow run {started['flow_run_id']} has already finished: succeeded"},
    )


def test_only_the_owner_or_the_token_holder_can_stop_a_run(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id)
    path = f"/flow_run/{started['flow_run_id']}/stop"
    assert api.call("POST", path, user=new_user()).status == 404
    assert api.call("POST", path).status == 401
    assert run_store.get(started["flow_run_id"]).status == "queued"  # type: ignore[union-attr]


def test_a_running_run_stops_when_asked(api: Api) -> None:
    owner, _, deployment_id = deployed(api, {"nodes": [node("w", "wait", seconds=30)], "edges": []})
    started = start(api, owner, deployment_id)
    worker = threading.Thread(target=execute, args=(api, started["flow_run_id"]))
    began = time.monotonic()
    worker.start()
    while read(api, started).body["status"] != "running":
        time.sleep(0.05)
    reply = api.call("POST", f"/flow_run/{started['flow_run_id']}/stop", user=owner)
    assert (reply.status, reply.body["status"]) == (200, "running")
    assert reply.body["stop_requested"] == "stopped by its owner"
    worker.join(timeout=10)
    assert time.monotonic() - began < 10
    run = read(api, started).body
    assert (run["status"], run["error"]) == ("stopped", "stopped by its owner")
    [record] = read(api, started, "/nodes").body["nodes"]
    assert record["status"] == "canceled"


def test_a_run_past_its_deadline_fails_with_a_clear_error(api: Api) -> None:
    owner, _, deployment_id = deployed(api, {"nodes": [node("w", "wait", seconds=30)], "edges": []})
    started = start(api, owner, deployment_id)
    # 16 s left in the Lambda, 15 s kept back to record the result: a 1 s deadline.
    status = asyncio.run(execute_queued_run(started["flow_run_id"], time_left=16))
    assert status == "failed"
    run = read(api, started).body
    assert run["error"] == "the run passed its deadline of 1 s; still running: w"


def test_outputs_too_large_to_keep_fail_the_run(api: Api) -> None:
    flow = {
        "nodes": [node("big", "const", value="x" * 130_000), node("out", "flow_output", label="o")],
        "edges": [edge("big", "out")],
    }
    owner, _, deployment_id = deployed(api, flow)
    started = start(api, owner, deployment_id)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert (run["status"], run["outputs"]) == ("failed", {})
    assert "a run keeps at most 128000" in run["error"]


def test_node_values_are_kept_whole_up_to_128_000_bytes_then_as_a_note(api: Api) -> None:
    flow = {
        "nodes": [
            node("big", "const", value="x" * 40_000),
            node("huge", "const", value="y" * 130_000),
        ],
        "edges": [],
    }
    owner, _, deployment_id = deployed(api, flow)
    started = start(api, owner, deployment_id)
    execute(api, started["flow_run_id"])
    records = {r["node_id"]: r for r in read(api, started, "/nodes").body["nodes"]}
    assert records["big"]["outputs"] == {"output": {"S": "x" * 40_000}}
    assert records["huge"]["outputs"]["truncated"]["S"].startswith("outputs are 130")


# -- Validation when saving and deploying ---------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_flow_that_cannot_run_is_not_saved(api: Api, method: str) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    body = {"name": "bad", "nodes": [node("s", "add", a=1)]}
    path = "/flow" if method == "POST" else f"/flow/{flow_id}"
    reply = api.call(method, path, user=owner, json_body=body)
    assert (reply.status, reply.body) == (
        400,
        {"error": "node 's' (add): input 'b' needs an edge or a config value"},
    )
    assert api.call("GET", f"/flow/{flow_id}", user=owner).body["nodes"] == []


def test_interflow_ports_are_checked_at_deploy(api: Api) -> None:
    owner = new_user()
    child = api.create_flow(owner)
    parent = api.create_flow(
        owner,
        nodes=[node("c", "const", value=1), node("call", "interflow", flow_id=child)],
        edges=[edge("c", "call", into="x")],
    )
    reply = api.call("POST", f"/flow/deploy/{parent}", user=owner)
    assert reply.status == 400
    assert reply.body["error"] == (
        f"flow {parent}: node 'call' (interflow): input 'x' is not a flow_input of "
        f"flow {child} (it has: none)"
    )


# -- Faults around the run's own record ------------------------------------------------


def test_a_run_abandoned_by_a_dead_worker_is_failed_on_redelivery(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id)
    # A worker claimed it and died: its lease has run out.
    assert run_store.claim(started["flow_run_id"], lease_until=time.time() - 1) is not None
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert (run["status"], run["error"]) == ("failed", runner.ABANDONED)


def test_a_run_claimed_by_a_live_worker_is_left_to_it(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id)
    assert run_store.claim(started["flow_run_id"], lease_until=time.time() + 600) is not None
    execute(api, started["flow_run_id"])
    assert read(api, started).body["status"] == "running"


def test_an_error_repeating_a_huge_input_is_clipped(api: Api) -> None:
    flow = {
        "nodes": [node("u", "flow_input", label="url"), node("get", "http_request")],
        "edges": [edge("u", "get", into="url")],
    }
    owner, _, deployment_id = deployed(api, flow)
    huge = "http://" + "x" * 200_000  # a host no resolver takes: the error repeats the URL
    started = start(api, owner, deployment_id, {"inputs": {"url": {"S": huge}}})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert len(run["error"]) < 5_000
    assert run["error"].endswith("characters)")


def test_when_the_result_cannot_be_written_a_failure_is_recorded(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id, SUM_INPUTS)
    real_finish = run_store.finish
    attempts: list[str] = []

    def flaky(run_id: str, status: str, **kw: Any) -> Any:
        attempts.append(status)
        if len(attempts) == 1:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real_finish(run_id, status, **kw)

    monkeypatch.setattr(run_store, "finish", flaky)
    monkeypatch.setattr(runner, "RETRY_PAUSE_SECONDS", 0)
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert attempts == ["succeeded", "failed"]
    assert run["status"] == "failed"
    assert run["error"] == (
        "the run ended (succeeded) but its result could not be recorded: "
        "ProvisionedThroughputExceededException"
    )


def test_a_stop_requested_during_a_failed_delivery_is_honoured(api: Api) -> None:
    owner, _, deployment_id = deployed(api, SUM_FLOW)
    started = start(api, owner, deployment_id)
    run_id = started["flow_run_id"]
    run_store.claim(run_id, lease_until=time.time() + 600)
    api.call("POST", f"/flow_run/{run_id}/stop", user=owner)
    run_store.release(run_id)
    execute(api, run_id)
    run = read(api, started).body
    assert (run["status"], run["error"]) == ("stopped", "stopped by its owner")
    # no node ran: the run's only record is its events, which say how it ended
    assert count_items("RunRecordsTable") == 1
    assert [event.kind for event in run_records.events(run_id)] == ["FlowError", "FlowFinish"]
