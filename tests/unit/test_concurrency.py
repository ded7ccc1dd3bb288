"""Concurrency in-process over moto: 200 simultaneous starts, and a tag moved onto a
deployment at the worst moment of its delete.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import flowdeploy.settings
from flowdeploy.deployments import deploy
from flowdeploy.ids import new_id
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store import runs as run_store
from tests.conftest import new_user
from tests.unit.api import Api, drain, sqs_event
from tests.unit.engine.flows import edge, node

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/FlowRunQueue"


def test_two_hundred_concurrent_starts_make_two_hundred_runs_messages_and_completions(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Powertools' Metrics buffer is one per process, right for Lambda (one request per
    # environment) but shared by these threads; the local stack runs with metrics off too.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    roomy = dataclasses.replace(flowdeploy.settings.settings(), max_live_runs_per_user=200)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: roomy)
    owner = new_user()
    flow = {
        "nodes": [node("in", "flow_input", label="n"), node("out", "flow_output", label="n")],
        "edges": [edge("in", "out", "output")],
    }
    deployment_id = api.deploy(owner, api.create_flow(owner, **flow))

    def start(n: int) -> str:
        reply = api.call(
            "POST",
            f"/deployment/start?id={deployment_id}",
            user=owner,
            json_body={"inputs": {"n": {"U": str(n)}}},
        )
        assert reply.status == 200, reply.body
        return str(reply.body["flow_run_id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        run_ids = list(pool.map(start, range(200)))
    assert len(set(run_ids)) == 200

    messages = drain(QUEUE)
    assert sorted(m["Body"] for m in messages) == sorted(
        f'{{"flow_run_id": "{run_id}"}}' for run_id in run_ids
    )
    bodies = [m["Body"] for m in messages]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda i: api.functions.invoke("RunFunction", sqs_event(*bodies[i : i + 10])),
                range(0, 200, 10),
            )
        )
    assert results == [{"batchItemFailures": []}] * 20
    for n, run_id in enumerate(run_ids):
        run = run_store.get(run_id)
        assert run is not None
        assert (run.status, run.inputs, run.outputs) == (
            "succeeded",
            {"n": {"U": str(n)}},
            {"n": {"U": str(n)}},
        ), run_id


def test_a_tag_moved_onto_a_deployment_while_it_is_being_deleted_goes_with_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    doomed, other = api.deploy(owner, flow_id), api.deploy(owner, flow_id)
    assert (
        api.call(
            "PUT", f"/flow/{flow_id}/tags/v1", user=owner, json_body={"deployment_id": other}
        ).status
        == 200
    )
    real = deployment_store._transactions
    raced: list[int] = []

    def move_first() -> Any:
        # Another request moves v1 onto the deployment after the delete read its tags,
        # just before the delete's transaction.
        if not raced:
            raced.append(0)
            raced[0] = api.call(
                "PUT", f"/flow/{flow_id}/tags/v1", user=owner, json_body={"deployment_id": doomed}
            ).status
        return real()

    monkeypatch.setattr(deployment_store, "_transactions", move_first)
    assert api.call("DELETE", f"/deployment/{doomed}", user=owner).status == 204
    assert raced == [200]
    tags = api.call("GET", f"/flow/{flow_id}/tags", user=owner).body["tags"]
    assert [(t["tag"], t["deployment_id"]) for t in tags] == [("latest", other)]


# -- The 50-tag limit and `latest` falling back, under the interleavings that broke them ----


def put_tag(api: Api, owner: str, flow_id: int, tag: str, deployment_id: str) -> Any:
    body = {"deployment_id": deployment_id}
    return api.call("PUT", f"/flow/{flow_id}/tags/{tag}", user=owner, json_body=body)


def custom_tags(flow_id: int) -> set[str]:
    return {t.tag for t in deployment_store.tags_of_flow(flow_id)} - {"latest"}


@pytest.fixture
def five_tags(monkeypatch: pytest.MonkeyPatch) -> int:
    """MAX_TAGS_PER_FLOW=5: the same rule as 50, for less set-up (50 is tested in
    test_manage_deployments)."""
    limited = dataclasses.replace(flowdeploy.settings.settings(), max_tags_per_flow=5)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: limited)
    return 5


def test_a_tag_put_that_counted_from_a_stale_index_cannot_pass_the_limit(
    api: Api, monkeypatch: pytest.MonkeyPatch, five_tags: int
) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    for n in range(five_tags):
        assert put_tag(api, owner, flow_id, f"t{n}", deployment_id).status == 200
    # The index a count would read lags (or another PUT is between its count and its write).
    real = deployment_store.tags_of_flow
    monkeypatch.setattr(
        deployment_store,
        "tags_of_flow",
        lambda f, *a, **kw: (t for t in real(f, *a, **kw) if t.tag != "t0"),
    )
    reply = put_tag(api, owner, flow_id, "one-more", deployment_id)
    assert (reply.status, reply.body) == (
        400,
        {"error": "a flow can have at most 5 tags besides latest (MAX_TAGS_PER_FLOW)"},
    )
    assert {t.tag for t in real(flow_id)} - {"latest"} == {f"t{n}" for n in range(five_tags)}
    assert put_tag(api, owner, flow_id, "t2", deployment_id).status == 200, "moving one is fine"


def test_concurrent_tag_puts_never_exceed_the_limit(
    api: Api, monkeypatch: pytest.MonkeyPatch, five_tags: int
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    assert put_tag(api, owner, flow_id, "t0", deployment_id).status == 200
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(
            pool.map(
                lambda n: put_tag(api, owner, flow_id, f"new{n}", deployment_id).status, range(12)
            )
        )
    assert sorted(statuses) == [200] * 4 + [400] * 8
    assert len(custom_tags(flow_id)) == five_tags
    # Deleting a tag frees its place; deleting the deployment frees all of them.
    assert api.call("DELETE", f"/flow/{flow_id}/tags/t0", user=owner).status == 204
    assert put_tag(api, owner, flow_id, "again", deployment_id).status == 200
    assert put_tag(api, owner, flow_id, "over", deployment_id).status == 400
    assert api.call("DELETE", f"/deployment/{deployment_id}", user=owner).status == 204
    other = api.deploy(owner, flow_id)
    for n in range(five_tags):
        assert put_tag(api, owner, flow_id, f"fresh{n}", other).status == 200


def test_latest_falls_back_to_a_newer_deployment_the_index_does_not_show_yet(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    oldest = api.deploy(owner, flow_id)
    # `between` got its id before `newest` did but committed after it (it does not move
    # `latest`), and the entrypoint index has not caught up with it yet.
    between, newest = new_id(), new_id()
    deploy(owner, flow_id, lambda: newest)
    deploy(owner, flow_id, lambda: between)
    real = deployment_store.of_flow
    monkeypatch.setattr(
        deployment_store, "of_flow", lambda f, **kw: (d for d in real(f, **kw) if d.id != between)
    )
    assert api.call("DELETE", f"/deployment/{newest}", user=owner).status == 204
    tags = api.call("GET", f"/flow/{flow_id}/tags", user=owner).body["tags"]
    assert [(t["tag"], t["deployment_id"]) for t in tags] == [("latest", between)], oldest


def test_a_deploy_committing_while_a_delete_picks_the_fallback_is_not_passed_over(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    api.deploy(owner, flow_id)
    between, newest = new_id(), new_id()
    deploy(owner, flow_id, lambda: newest)
    real = deployment_store._transactions
    inside = threading.local()
    raced: list[str] = []

    def deploy_first() -> Any:
        # The delete has read its candidates; `between` commits before its transaction.
        if not raced and not getattr(inside, "deploying", False):
            inside.deploying = True
            raced.append(deploy(owner, flow_id, lambda: between))
            inside.deploying = False
        return real()

    monkeypatch.setattr(deployment_store, "_transactions", deploy_first)
    assert api.call("DELETE", f"/deployment/{newest}", user=owner).status == 204
    assert raced == [between]
    tags = api.call("GET", f"/flow/{flow_id}/tags", user=owner).body["tags"]
    assert [(t["tag"], t["deployment_id"]) for t in tags] == [("latest", between)]
