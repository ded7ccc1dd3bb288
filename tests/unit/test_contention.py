"""Writes that race on the same items retry with jitter for a bounded time, well inside API
Gateway's 29 s, instead of giving up after a fixed count."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest

import flowdeploy.settings
from flowdeploy.store import deployments as deployment_store
from flowdeploy.store.retry import RetryBudget
from tests.conftest import new_user
from tests.unit.api import Api


def _contended(
    api: Api, monkeypatch: pytest.MonkeyPatch, rounds: int
) -> tuple[str, int, str, list[int]]:
    """A flow with a deployment that another writer changes just before each of the next
    `rounds` transactions, so each of them loses the race on the deployment's revision."""
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    real = deployment_store._transactions
    interfered: list[int] = []
    inside = threading.local()

    def interfere() -> Any:
        if len(interfered) < rounds and not getattr(inside, "writing", False):
            interfered.append(1)
            inside.writing = True
            try:
                current = deployment_store.get(deployment_id)
                assert current is not None
                changes = {"output_instructions": len(interfered) % 2 == 1}
                assert deployment_store.update(current, owner, changes) is not None
            finally:
                inside.writing = False
        return real()

    monkeypatch.setattr(deployment_store, "_transactions", interfere)
    return owner, flow_id, deployment_id, interfered


def test_a_tag_move_that_keeps_losing_races_retries_past_a_fixed_count(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, flow_id, deployment_id, interfered = _contended(api, monkeypatch, rounds=8)
    body = {"deployment_id": deployment_id}
    reply = api.call("PUT", f"/flow/{flow_id}/tags/v1", user=owner, json_body=body)
    assert reply.status == 200, reply.body
    assert len(interfered) == 8


def test_contention_that_never_ends_is_a_409_with_retry_after_once_the_budget_is_spent(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = dataclasses.replace(flowdeploy.settings.settings(), conflict_retry_seconds=1.0)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: budget)
    owner, _, deployment_id, _ = _contended(api, monkeypatch, rounds=10**6)
    began = time.monotonic()
    reply = api.call(
        "PATCH",
        f"/deployment/{deployment_id}",
        user=owner,
        json_body={"start_permission": "Anonymous"},
    )
    assert reply.status == 409
    assert reply.headers["retry-after"] == "1"
    assert time.monotonic() - began < 1.0 + 1.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_retry_budget_never_sleeps_past_its_deadline() -> None:
    clock = FakeClock()
    budget = RetryBudget(3.0, clock=clock, sleep=clock.sleep)
    retries = 0
    while budget.wait():
        retries += 1
        clock.now += 0.05  # the attempt itself
    assert retries > 5
    assert clock.now - 100.0 <= 3.0 + 0.05
    assert not budget.wait(), "an exhausted budget stays exhausted"


def test_retry_delays_are_jittered_and_capped() -> None:
    clock = FakeClock()
    budget = RetryBudget(60.0, clock=clock, sleep=clock.sleep)
    for _ in range(40):
        assert budget.wait()
    assert len(set(clock.slept)) == 40, "full jitter: no two waits alike"
    assert max(clock.slept) <= RetryBudget.MAX_DELAY
    assert clock.slept[0] <= RetryBudget.BASE_DELAY
