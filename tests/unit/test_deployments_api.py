"""Deploy and read deployments through the handlers, against moto in-process."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

import flowdeploy.settings
from flowdeploy.store import deployments as store
from flowdeploy.store.models import DeploymentItem
from tests.conftest import new_user
from tests.unit.api import Api, count_items

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DOCS_ROW_KEYS = [
    "id",
    "created_at",
    "user_id",
    "entrypoint",
    "start_permission",
    "output_instructions",
    "action_identity",
    "fees",
    "solana_network",
]
# Columns after the docs' row (issue 14: compute-unit price, the Solana Action's metadata).
EXTRA_ROW_KEYS = [
    "compute_unit_price",
    "action_title",
    "action_icon",
    "action_description",
    "action_label",
]


def interflow(node_id: str, flow_id: int) -> dict[str, Any]:
    return {"id": node_id, "data": {"node_id": "interflow", "config": {"flow_id": flow_id}}}


def test_deploy_answers_a_uuidv7_deployment_id(api: Api) -> None:
    user = new_user()
    reply = api.call("POST", f"/flow/deploy/{api.create_flow(user)}", user=user)
    assert reply.status == 200
    assert list(reply.body) == ["deployment_id"]
    assert UUID7.match(reply.body["deployment_id"])


def test_the_deployment_row_has_exactly_the_docs_shape_and_defaults(api: Api) -> None:
    user = new_user()
    flow_id = api.create_flow(user)
    deployment_id = api.deploy(user, flow_id)
    row = api.call("GET", f"/deployment/{deployment_id}", user=user).body
    assert list(row) == DOCS_ROW_KEYS + EXTRA_ROW_KEYS
    assert all(row[key] is None for key in EXTRA_ROW_KEYS)
    assert row["id"] == deployment_id
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$", row["created_at"])
    assert row["user_id"] == user
    assert row["entrypoint"] == flow_id
    assert row["start_permission"] == "Owner"
    assert row["output_instructions"] is False
    assert row["action_identity"] is None
    assert row["fees"] == []
    assert row["solana_network"] == {"url": "https://api.devnet.solana.com", "cluster": "devnet"}


def test_the_deployment_takes_the_flows_network_and_inferred_permission(api: Api) -> None:
    user = new_user()
    network = {"url": "https://api.mainnet-beta.solana.com", "cluster": "mainnet-beta"}
    flow_id = api.create_flow(
        user, is_public=True, start_shared=True, start_unverified=True, current_network=network
    )
    row = api.call("GET", f"/deployment/{api.deploy(user, flow_id)}", user=user).body
    assert row["start_permission"] == "Anonymous"
    assert row["solana_network"] == network


def test_deploy_creates_the_latest_tag_in_the_docs_shape(api: Api) -> None:
    user = new_user()
    flow_id = api.create_flow(user)
    deployment_id = api.deploy(user, flow_id)
    tags = api.call("GET", f"/flow/{flow_id}/tags", user=user).body["tags"]
    assert tags == [
        {
            "user_id": user,
            "entrypoint": flow_id,
            "tag": "latest",
            "deployment_id": deployment_id,
            "description": None,
        }
    ]


def test_a_new_deploy_moves_latest_and_lists_newest_first(api: Api) -> None:
    user = new_user()
    flow_id = api.create_flow(user)
    first, second = api.deploy(user, flow_id), api.deploy(user, flow_id)
    assert first < second
    tags = api.call("GET", f"/flow/{flow_id}/tags", user=user).body["tags"]
    assert [t["deployment_id"] for t in tags] == [second]
    listed = api.call("GET", f"/flow/{flow_id}/deployments", user=user).body["deployments"]
    assert [d["id"] for d in listed] == [second, first]


def test_only_the_owner_can_deploy_and_others_see_404(api: Api) -> None:
    owner, stranger = new_user(), new_user()
    flow_id = api.create_flow(owner)
    reply = api.call("POST", f"/flow/deploy/{flow_id}", user=stranger)
    assert reply.status == 404
    assert reply.body == {"error": f"flow not found: {flow_id}"}
    assert api.call("POST", "/flow/deploy/999", user=owner).status == 404
    assert count_items("DeploymentsTable") == 0


def test_deploy_needs_a_user(api: Api) -> None:
    flow_id = api.create_flow(new_user())
    assert api.call("POST", f"/flow/deploy/{flow_id}").status == 401


def test_deployments_and_tags_are_hidden_from_other_users(api: Api) -> None:
    owner, stranger = new_user(), new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    for path in (
        f"/deployment/{deployment_id}",
        f"/flow/{flow_id}/deployments",
        f"/flow/{flow_id}/tags",
        f"/deployment/{deployment_id}/flow_runs",
        "/deployment/not-a-uuid",
    ):
        assert api.call("GET", path, user=stranger).status == 404, path


def test_the_snapshot_holds_nested_flows_and_survives_edits_and_deletes(api: Api) -> None:
    user = new_user()
    leaf = api.create_flow(user, name="leaf")
    middle = api.create_flow(user, name="middle", nodes=[interflow("call-leaf", leaf)])
    entry = api.create_flow(
        user, nodes=[interflow("call-middle", middle), interflow("again", leaf)]
    )
    deployment_id = api.deploy(user, entry)
    api.call("PUT", f"/flow/{leaf}", user=user, json_body={"name": "leaf edited"})
    api.call("DELETE", f"/flow/{middle}", user=user)

    deployment = store.get(deployment_id)
    assert isinstance(deployment, DeploymentItem)
    snapshot = store.load_snapshot(deployment)
    assert sorted(snapshot) == sorted([entry, middle, leaf])
    assert snapshot[leaf]["name"] == "leaf"
    assert snapshot[middle]["nodes"] == [interflow("call-leaf", leaf)]


def test_deploying_a_flow_that_calls_another_users_flow_is_a_400(api: Api) -> None:
    user = new_user()
    foreign = api.create_flow(new_user())
    entry = api.create_flow(user, nodes=[interflow("borrow", foreign)])
    reply = api.call("POST", f"/flow/deploy/{entry}", user=user)
    assert reply.status == 400
    assert "interflow node 'borrow'" in reply.body["error"]
    assert count_items("DeploymentsTable") == 0


def test_a_flow_that_calls_itself_deploys_as_upstreams_collatz_does(api: Api) -> None:
    # Recursion is bounded when a run goes deeper than the nesting limit (engine tests).
    user = new_user()
    flow_id = api.create_flow(user)
    api.call(
        "PUT",
        f"/flow/{flow_id}",
        user=user,
        json_body={"name": "loop", "nodes": [interflow("me", flow_id)]},
    )
    reply = api.call("POST", f"/flow/deploy/{flow_id}", user=user)
    assert reply.status == 200, reply.body
    [deployment] = api.call("GET", f"/flow/{flow_id}/deployments", user=user).body["deployments"]
    assert deployment["id"] == reply.body["deployment_id"]


def test_recursion_through_another_flow_deploys_both_flows(api: Api) -> None:
    user = new_user()
    first = api.create_flow(user)
    second = api.create_flow(user, nodes=[interflow("back", first)])
    api.call(
        "PUT",
        f"/flow/{first}",
        user=user,
        json_body={"name": "a", "nodes": [interflow("on", second)]},
    )
    reply = api.call("POST", f"/flow/deploy/{first}", user=user)
    assert reply.status == 200, reply.body
    deployment = store.get(reply.body["deployment_id"])
    assert deployment is not None and sorted(deployment.flow_ids) == sorted([first, second])


def test_a_deployment_too_large_for_one_transaction_writes_its_snapshot_first(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowdeploy.local.calls import counting

    # Three frozen flows where one transaction may hold only one snapshot part (in AWS: a
    # snapshot past 90 parts or 3.5 MB), deployed through DeployFunction.
    monkeypatch.setattr(store, "TRANSACTION_PARTS", 1)
    user = new_user()
    leaves = [api.create_flow(user), api.create_flow(user)]
    entry = api.create_flow(user, nodes=[interflow(f"n{i}", f) for i, f in enumerate(leaves)])
    with counting() as calls:
        deployment_id = api.deploy(user, entry)
    assert calls["dynamodb:BatchWriteItem"] == 1
    reply = api.call("GET", f"/deployment/{deployment_id}", user=user)
    assert (reply.status, reply.body["entrypoint"]) == (200, entry)
    deployment = store.get(deployment_id)
    assert deployment is not None
    assert set(store.load_snapshot(deployment)) == {entry, *leaves}


# -- The work of one run, bounded at deploy (issue 16) --------------------------------


def test_deploying_a_set_that_runs_21110_nodes_is_a_400_naming_the_limit_and_flows(
    api: Api,
) -> None:
    # Five small flows: 10 interflow nodes per level, 4 levels, one node at the bottom.
    user = new_user()
    called = api.create_flow(
        user, nodes=[{"id": "c", "data": {"node_id": "const", "config": {"value": 1}}}]
    )
    ids = [called]
    for _ in range(4):
        called = api.create_flow(user, nodes=[interflow(f"call{i}", called) for i in range(10)])
        ids.insert(0, called)
    reply = api.call("POST", f"/flow/deploy/{ids[0]}", user=user)
    assert reply.status == 400
    assert reply.body["error"].startswith(
        f"flow {ids[0]} runs 21,110 nodes, more than the limit of 10,000 node runs per run "
        f"(FLOW_MAX_NODE_RUNS; a nested flow counts each time it is called): flow {ids[0]} = "
        f"10 nodes + 10 calls of flow {ids[1]} (2,110 each); flow {ids[1]} = "
    )
    assert count_items("DeploymentsTable") == 0


def test_deploying_a_chain_deeper_than_the_nesting_limit_is_a_400_naming_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    shallow = dataclasses.replace(flowdeploy.settings.settings(), flow_max_nesting=3)
    monkeypatch.setattr(flowdeploy.settings, "settings", lambda: shallow)
    user = new_user()
    ids = [api.create_flow(user)]
    for _ in range(4):
        ids.insert(0, api.create_flow(user, nodes=[interflow("down", ids[0])]))
    reply = api.call("POST", f"/flow/deploy/{ids[0]}", user=user)
    assert (reply.status, reply.body) == (
        400,
        {
            "error": "nested flows go 4 levels deep, deeper than the nesting limit of 3 levels "
            f"(FLOW_MAX_NESTING): {' -> '.join(f'flow {i}' for i in ids)}"
        },
    )
    assert api.call("POST", f"/flow/deploy/{ids[1]}", user=user).status == 200
