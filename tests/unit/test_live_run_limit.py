"""One user cannot starve everyone: at most MAX_LIVE_RUNS_PER_USER runs of a user's
deployments are queued or running at once; past it a start is a 429 with Retry-After,
however the starts interleave.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import flowdeploy.settings
from flowdeploy.ids import new_id
from flowdeploy.store import live_runs
from tests.conftest import new_user
from tests.unit.api import Api, count_items, drain, sqs_event

LIMIT = 3
WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"


@pytest.fixture
def api(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Api:
    limited = dataclasses.replace(flowdeploy.settings.settings(), max_live_runs_per_user=LIMIT)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: limited)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return Api()


def start(api: Api, deployment_id: str, **caller: Any) -> Any:
    return api.call("POST", f"/deployment/start?id={deployment_id}", **caller)


def run_queued(api: Api, aws: dict[str, Any]) -> None:
    bodies = [m["Body"] for m in drain(aws["FlowRunQueue"])]
    for i in range(0, len(bodies), 10):
        assert api.functions.invoke("RunFunction", sqs_event(*bodies[i : i + 10])) == {
            "batchItemFailures": []
        }


def test_starts_past_the_limit_are_a_429_with_retry_after_and_start_nothing(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    assert [start(api, deployment_id, user=owner).status for _ in range(LIMIT)] == [200] * LIMIT
    refused = start(api, deployment_id, user=owner)
    assert refused.status == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.body == {
        "error": f"the deployment's owner already has {LIMIT} runs queued or running, the most "
        f"MAX_LIVE_RUNS_PER_USER allows; start again when one has finished"
    }
    assert count_items("FlowRunsTable") == LIMIT


def test_concurrent_starts_never_pass_the_limit(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, _, deployment_id = deployed
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: start(api, deployment_id, user=owner).status, range(12)))
    assert sorted(statuses) == [200] * LIMIT + [429] * (12 - LIMIT)
    assert count_items("FlowRunsTable") == LIMIT


def test_runs_that_finished_free_their_places(
    api: Api, aws: dict[str, Any], deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    for _ in range(LIMIT):
        assert start(api, deployment_id, user=owner).status == 200
    assert start(api, deployment_id, user=owner).status == 429
    run_queued(api, aws)
    assert [start(api, deployment_id, user=owner).status for _ in range(LIMIT)] == [200] * LIMIT


def test_a_busy_user_does_not_hold_back_anyone_else(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    for _ in range(LIMIT):
        start(api, deployment_id, user=owner)
    other = new_user()
    other_deployment = api.deploy(other, api.create_flow(other))
    assert start(api, other_deployment, user=other).status == 200


def test_starts_by_other_callers_count_for_the_deployments_owner(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    """The runs are the owner's (their deployment, their wallets): a public deployment's
    callers share its owner's places, so fresh public keys cannot multiply them."""
    owner, _, deployment_id = deployed
    for _ in range(LIMIT):
        assert (
            start(api, deployment_id, headers={"authorization": f"Bearer {WALLET}"}).status == 200
        )
    assert start(api, deployment_id, user=new_user()).status == 429
    assert start(api, deployment_id, user=owner).status == 429


def test_a_blink_post_past_the_limit_is_a_429_in_the_actions_shape(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    """A wallet's POST /action takes one of the owner's places too; past the limit it is
    refused with the Solana Actions error body, and queues nothing."""
    owner, _, deployment_id = deployed
    for _ in range(LIMIT):
        assert start(api, deployment_id, user=owner).status == 200
    reply = api.call("POST", f"/action/{deployment_id}", json_body={"account": WALLET})
    assert reply.status == 429, reply.body
    assert int(reply.headers["retry-after"]) > 0
    assert "MAX_LIVE_RUNS_PER_USER" in reply.body["message"], reply.body
    assert count_items("FlowRunsTable") == LIMIT


def test_a_start_that_died_between_its_two_writes_frees_its_place_after_a_grace_period(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    # Places taken by starts that never wrote their run: one long ago, one just now.
    stale = "00000000-0000-7000-8000-000000000000"
    in_flight = new_id()
    for run_id in (stale, in_flight):
        assert live_runs.admit(owner, run_id, LIMIT)
    assert start(api, deployment_id, user=owner).status == 200
    # The stale place is taken back; the one still in flight is not.
    assert start(api, deployment_id, user=owner).status == 200
    assert start(api, deployment_id, user=owner).status == 429
    assert in_flight in live_runs.listed(owner)
    assert stale not in live_runs.listed(owner)


def test_a_trigger_start_past_the_limit_is_retried_later(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    """An event start is not dropped like a bad event: Lambda retries it (asynchronous
    invocations, SQS messages) once places are free."""
    from flowdeploy.local.environments import LambdaError
    from flowdeploy.local.samples import eventbridge_event

    owner, flow_id, deployment_id = deployed
    for _ in range(LIMIT):
        start(api, deployment_id, user=owner)
    event = eventbridge_event("flowdeploy", "Start deployment", {"flow": flow_id, "inputs": {}})
    # The invocation fails as Lambda reports it (errorType, errorMessage): Lambda retries it.
    with pytest.raises(LambdaError, match=r"^TooManyRequests: .*MAX_LIVE_RUNS_PER_USER") as failed:
        api.functions.invoke("TriggerFunction", event)
    assert failed.value.payload["errorType"] == "TooManyRequests"
