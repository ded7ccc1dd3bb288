"""Concurrency over real HTTP against the local stack: deploys racing on `latest`, tag
moves racing a delete.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Stack, new_user
from tests.integration.test_http import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def test_twenty_concurrent_deploys_of_one_flow_leave_latest_on_the_newest(
    client: Client,
) -> None:
    owner = new_user()
    flow_id = client.flow(owner)
    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(lambda _: client.deploy(owner, flow_id), range(20)))
    assert len(set(ids)) == 20
    tags = client.request("GET", f"/flow/{flow_id}/tags", user=owner).json()
    assert [(t["tag"], t["deployment_id"]) for t in tags] == [("latest", max(ids))]
    listed = client.request("GET", f"/flow/{flow_id}/deployments", user=owner).json()
    assert [d["id"] for d in listed] == sorted(ids, reverse=True)


@pytest.mark.parametrize("round_", range(3))
def test_tag_moves_racing_a_delete_never_leave_a_tag_on_a_missing_deployment(
    client: Client, round_: int
) -> None:
    owner = new_user()
    flow_id = client.flow(owner)
    a, b, c = (client.deploy(owner, flow_id) for _ in range(3))
    names = ["v1", "v2", "v3"]
    rng = random.Random(round_)
    moves = [(rng.choice(names), rng.choice([a, a, b, c])) for _ in range(24)]

    def move(step: tuple[str, str]) -> int:
        tag, target = step
        reply = client.request(
            "PUT", f"/flow/{flow_id}/tags/{tag}", user=owner, json={"deployment_id": target}
        )
        return reply.status_code

    def delete_a() -> int:
        return client.request("DELETE", f"/deployment/{a}", user=owner).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        moved = [pool.submit(move, step) for step in moves[:12]]
        deleted = pool.submit(delete_a)
        moved += [pool.submit(move, step) for step in moves[12:]]
        statuses = [f.result() for f in moved]
    assert deleted.result() == 204
    # A move onto `a` after it was deleted is a 404; every other move succeeds.
    assert set(statuses) <= {200, 404}
    assert statuses.count(200) >= sum(target != a for _, target in moves)
    tags = client.request("GET", f"/flow/{flow_id}/tags", user=owner).json()
    assert {t["tag"] for t in tags} >= {"latest"}
    for tag in tags:
        found = client.request("GET", f"/deployment/{tag['deployment_id']}", user=owner)
        assert found.status_code == 200, (tag, found.text)
        assert tag["deployment_id"] != a
