"""Owners change deployments and tags through the API: validated, owner only, `latest` kept."""

from __future__ import annotations

from typing import Any

import pytest

from flowdeploy.store import deployments as store
from flowdeploy.store import runs as run_store
from tests.conftest import new_user
from tests.unit.api import Api, count_items

FEE_A = "2cruTfCER3HaFwXnR99uM3jM1nPAPR5eWmVF2PiM7viR"
FEE_B = "9tmSkymh34zo33DJYcKxhHBHMhdLyWNMPtvgA1cz1occ"
WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
MAINNET = {"url": "https://api.mainnet-beta.solana.com", "cluster": "mainnet-beta"}


@pytest.fixture
def deployed(api: Api) -> tuple[str, int, str]:
    """(owner, flow id, deployment id) of a private flow."""
    owner = new_user()
    flow_id = api.create_flow(owner)
    return owner, flow_id, api.deploy(owner, flow_id)


def row(api: Api, owner: str, deployment_id: str) -> dict[str, Any]:
    reply = api.call("GET", f"/deployment/{deployment_id}", user=owner)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def identity_wallet(api: Api, owner: str) -> str:
    """A server wallet of `owner`: an action_identity must be one."""
    reply = api.call("POST", "/wallet", user=owner, json_body={"name": "identity"})
    assert reply.status == 201, reply.body
    return str(reply.body["pubkey"])


def tags(api: Api, owner: str, flow_id: int) -> dict[str, str]:
    listed = api.call("GET", f"/flow/{flow_id}/tags", user=owner).body["tags"]
    return {t["tag"]: t["deployment_id"] for t in listed}


# -- PATCH /deployment/{id} ----------------------------------------------------


def test_patch_changes_every_customizable_column_and_answers_the_docs_row(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    before = row(api, owner, deployment_id)
    changes = {
        "start_permission": "Anonymous",
        "output_instructions": True,
        "action_identity": identity_wallet(api, owner),
        "fees": [[FEE_A, 10000], [FEE_B, 10000]],
        "solana_network": MAINNET,
    }
    reply = api.call("PATCH", f"/deployment/{deployment_id}", user=owner, json_body=changes)
    assert reply.status == 200, reply.body
    assert reply.body == {**before, **changes}
    assert list(reply.body) == list(before)
    assert row(api, owner, deployment_id) == reply.body


def test_patch_changes_only_the_columns_sent(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, _, deployment_id = deployed
    before = row(api, owner, deployment_id)
    reply = api.call(
        "PATCH", f"/deployment/{deployment_id}", user=owner, json_body={"fees": [[FEE_A, 5]]}
    )
    assert reply.body == {**before, "fees": [[FEE_A, 5]]}


def test_patch_with_null_clears_the_action_identity(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    path = f"/deployment/{deployment_id}"
    identity = {"action_identity": identity_wallet(api, owner)}
    assert api.call("PATCH", path, user=owner, json_body=identity).status == 200
    reply = api.call("PATCH", path, user=owner, json_body={"action_identity": None})
    assert reply.body["action_identity"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"id": "0194e5ac-9103-7c52-971e-f71f83c5de2e"},
            "read-only column(s) cannot be changed: id",
        ),
        (
            {"user_id": "x", "entrypoint": 1, "start_permission": "Owner"},
            "read-only column(s) cannot be changed: user_id, entrypoint",
        ),
        ({"created_at": "2025-02-08 13:07:59"}, "created_at"),
        ({"start_permission": "Everyone"}, "start_permission: Input should be"),
        ({"start_permission": None}, "cannot be null: start_permission"),
        ({"output_instructions": "true"}, "output_instructions: Input should be a valid boolean"),
        ({"action_identity": "not-a-key"}, "action_identity: must be a base58 public key"),
        ({"action_identity": WALLET[:-3]}, "action_identity: must be a base58 public key"),
        ({"fees": [[FEE_A, 0]]}, "fees.0.1: Input should be greater than 0"),
        ({"fees": [[FEE_A, -5]]}, "fees.0.1"),
        ({"fees": [[FEE_A, 1.5]]}, "fees.0.1: Input should be a valid integer"),
        ({"fees": [[FEE_A, "100"]]}, "fees.0.1: Input should be a valid integer"),
        ({"fees": [[FEE_A, 2**64]]}, "fees.0.1: Input should be less than or equal to"),
        ({"fees": [["nope", 100]]}, "fees.0.0: must be a base58 public key"),
        ({"fees": [[FEE_A, 1], [FEE_A, 2]]}, f"fees: fee address {FEE_A} appears twice"),
        ({"fees": [[FEE_A]]}, "fees.0"),
        ({"fees": {"a": 1}}, "fees: Input should be a valid list"),
        ({"fees": None}, "cannot be null: fees"),
        ({"solana_network": {"url": "ftp://x", "cluster": "devnet"}}, "solana_network.url"),
        ({"solana_network": {"url": "https://x", "cluster": "moon"}}, "solana_network.cluster"),
        ({"solana_network": {"url": "https://x"}}, "solana_network.cluster: Field required"),
        ({"is_public": True}, "unknown field: is_public"),
    ],
)
def test_a_bad_patch_is_a_400_and_changes_nothing(
    api: Api, deployed: tuple[str, int, str], body: dict[str, Any], message: str
) -> None:
    owner, _, deployment_id = deployed
    before = row(api, owner, deployment_id)
    reply = api.call("PATCH", f"/deployment/{deployment_id}", user=owner, json_body=body)
    assert reply.status == 400, reply.body
    assert message in reply.body["error"]
    assert row(api, owner, deployment_id) == before


def test_a_patch_by_anyone_but_the_owner_is_a_404_and_changes_nothing(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    before = row(api, owner, deployment_id)
    body = {"start_permission": "Anonymous"}
    path = f"/deployment/{deployment_id}"
    reply = api.call("PATCH", path, user=new_user(), json_body=body)
    assert (reply.status, reply.body) == (404, {"error": f"deployment not found: {deployment_id}"})
    wallet = {"authorization": f"Bearer {WALLET}"}
    assert api.call("PATCH", path, headers=wallet, json_body=body).status == 401
    assert api.call("PATCH", path, json_body=body).status == 401
    assert row(api, owner, deployment_id) == before


def test_a_patch_of_an_unknown_deployment_is_a_404(api: Api) -> None:
    for deployment_id in ("0194e5ac-9103-7c52-971e-f71f83c5de2e", "not-a-uuid"):
        reply = api.call(
            "PATCH", f"/deployment/{deployment_id}", user=new_user(), json_body={"fees": []}
        )
        assert reply.status == 404


def test_a_changed_start_permission_applies_to_the_next_start(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    wallet = {"authorization": f"Bearer {WALLET}"}
    start = f"/deployment/start?id={deployment_id}"
    assert api.call("POST", start, headers=wallet).status == 404
    patch = {"start_permission": "Anonymous", "output_instructions": True}
    api.call("PATCH", f"/deployment/{deployment_id}", user=owner, json_body=patch)
    started = api.call("POST", start, headers=wallet)
    assert started.status == 200
    run = run_store.get(started.body["flow_run_id"])
    assert run is not None
    assert run.output_instructions is True
    api.call(
        "PATCH", f"/deployment/{deployment_id}", user=owner, json_body={"start_permission": "Owner"}
    )
    assert api.call("POST", start, headers=wallet).status == 404


# -- DELETE /deployment/{id} ---------------------------------------------------


def test_delete_removes_the_deployment_its_snapshot_and_its_tags(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    older, newer = api.deploy(owner, flow_id), api.deploy(owner, flow_id)
    body = {"deployment_id": older}
    assert api.call("PUT", f"/flow/{flow_id}/tags/v1", user=owner, json_body=body).status == 200
    items_before = count_items("DeploymentsTable")

    assert api.call("DELETE", f"/deployment/{older}", user=owner).status == 204
    assert api.call("GET", f"/deployment/{older}", user=owner).status == 404
    assert tags(api, owner, flow_id) == {"latest": newer}
    # The deployment, its one snapshot part, its entry in the flow's listing and the tag v1.
    assert count_items("DeploymentsTable") == items_before - 4
    started = api.call("POST", f"/deployment/start?flow={flow_id}&tag=v1", user=owner)
    assert started.status == 404


def test_deleting_the_latest_deployment_moves_latest_back_to_the_newest_remaining(
    api: Api,
) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    first, second, third = (api.deploy(owner, flow_id) for _ in range(3))
    assert tags(api, owner, flow_id) == {"latest": third}

    api.call("DELETE", f"/deployment/{third}", user=owner)
    assert tags(api, owner, flow_id) == {"latest": second}
    api.call("DELETE", f"/deployment/{first}", user=owner)
    assert tags(api, owner, flow_id) == {"latest": second}
    started = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner)
    run = run_store.get(started.body["flow_run_id"])
    assert run is not None
    assert run.deployment_id == second


def test_deleting_the_only_deployment_removes_latest(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    assert api.call("DELETE", f"/deployment/{deployment_id}", user=owner).status == 204
    assert tags(api, owner, flow_id) == {}
    assert store.get_tag(flow_id, "latest") is None
    assert count_items("DeploymentsTable") == 0
    assert api.call("POST", f"/deployment/start?flow={flow_id}", user=owner).status == 404
    assert tags(api, owner, flow_id) == {}
    assert api.deploy(owner, flow_id) in tags(api, owner, flow_id).values()


def test_runs_keep_their_records_after_their_deployment_is_deleted(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, _, deployment_id = deployed
    run_id = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body[
        "flow_run_id"
    ]
    api.call("DELETE", f"/deployment/{deployment_id}", user=owner)
    run = api.call("GET", f"/flow_run/{run_id}", user=owner)
    assert run.status == 200
    assert run.body["deployment_id"] == deployment_id


def test_delete_by_anyone_but_the_owner_is_a_404_and_deletes_nothing(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, deployment_id = deployed
    items = count_items("DeploymentsTable")
    reply = api.call("DELETE", f"/deployment/{deployment_id}", user=new_user())
    assert (reply.status, reply.body) == (404, {"error": f"deployment not found: {deployment_id}"})
    assert api.call("DELETE", f"/deployment/{deployment_id}").status == 401
    assert count_items("DeploymentsTable") == items
    assert tags(api, owner, flow_id) == {"latest": deployment_id}


def test_deleting_twice_is_a_404(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, _, deployment_id = deployed
    assert api.call("DELETE", f"/deployment/{deployment_id}", user=owner).status == 204
    assert api.call("DELETE", f"/deployment/{deployment_id}", user=owner).status == 404


# -- Tags --------------------------------------------------------------------


def test_put_creates_a_tag_in_the_docs_shape_and_start_finds_it(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, deployment_id = deployed
    reply = api.call(
        "PUT",
        f"/flow/{flow_id}/tags/v1.0_rc-1",
        user=owner,
        json_body={"deployment_id": deployment_id, "description": "first release"},
    )
    assert reply.status == 200, reply.body
    assert reply.body == {
        "user_id": owner,
        "entrypoint": flow_id,
        "tag": "v1.0_rc-1",
        "deployment_id": deployment_id,
        "description": "first release",
    }
    listed = api.call("GET", f"/flow/{flow_id}/tags", user=owner).body["tags"]
    assert [t["tag"] for t in listed] == ["latest", "v1.0_rc-1"]
    assert listed[1] == reply.body
    started = api.call("POST", f"/deployment/start?flow={flow_id}&tag=v1.0_rc-1", user=owner)
    assert started.status == 200


def test_put_moves_an_existing_tag_and_latest_stays_put(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    older, newer = api.deploy(owner, flow_id), api.deploy(owner, flow_id)
    path = f"/flow/{flow_id}/tags/stable"
    api.call("PUT", path, user=owner, json_body={"deployment_id": newer})
    moved = api.call("PUT", path, user=owner, json_body={"deployment_id": older})
    assert (moved.body["deployment_id"], moved.body["description"]) == (older, None)
    assert tags(api, owner, flow_id) == {"latest": newer, "stable": older}


def test_delete_removes_a_tag(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, flow_id, deployment_id = deployed
    path = f"/flow/{flow_id}/tags/beta"
    api.call("PUT", path, user=owner, json_body={"deployment_id": deployment_id})
    assert api.call("DELETE", path, user=owner).status == 204
    assert tags(api, owner, flow_id) == {"latest": deployment_id}
    reply = api.call("DELETE", path, user=owner)
    assert (reply.status, reply.body) == (404, {"error": f"tag not found: {flow_id}:beta"})


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_latest_cannot_be_set_or_deleted_by_hand(
    api: Api, deployed: tuple[str, int, str], method: str
) -> None:
    owner, flow_id, deployment_id = deployed
    reply = api.call(
        method,
        f"/flow/{flow_id}/tags/latest",
        user=owner,
        json_body={"deployment_id": deployment_id} if method == "PUT" else None,
    )
    assert reply.status == 400
    assert "latest tag is managed by the system" in reply.body["error"]
    assert tags(api, owner, flow_id) == {"latest": deployment_id}


@pytest.mark.parametrize("tag", ["x" * 65, "a%20b", "t%C3%A9", "a:b", "a%2Fb"])
def test_a_tag_name_outside_the_alphabet_is_a_400(
    api: Api, deployed: tuple[str, int, str], tag: str
) -> None:
    owner, flow_id, deployment_id = deployed
    reply = api.call(
        "PUT", f"/flow/{flow_id}/tags/{tag}", user=owner, json_body={"deployment_id": deployment_id}
    )
    assert reply.status == 400, reply.body
    assert "tag must be 1-64 letters" in reply.body["error"]
    assert tags(api, owner, flow_id) == {"latest": deployment_id}


def test_a_64_character_tag_is_accepted(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, flow_id, deployment_id = deployed
    tag = "A" * 64
    body = {"deployment_id": deployment_id}
    assert api.call("PUT", f"/flow/{flow_id}/tags/{tag}", user=owner, json_body=body).status == 200


def test_a_tag_must_name_a_deployment_of_that_flow(api: Api) -> None:
    owner = new_user()
    flow_a, flow_b = api.create_flow(owner), api.create_flow(owner)
    of_a = api.deploy(owner, flow_a)
    api.deploy(owner, flow_b)
    reply = api.call(
        "PUT", f"/flow/{flow_b}/tags/v1", user=owner, json_body={"deployment_id": of_a}
    )
    assert reply.status == 400
    assert reply.body == {
        "error": f"deployment {of_a} is a deployment of flow {flow_a}, not of flow {flow_b}"
    }
    assert "v1" not in tags(api, owner, flow_b)


def test_tags_of_another_users_flow_or_deployment_are_404(
    api: Api, deployed: tuple[str, int, str]
) -> None:
    owner, flow_id, deployment_id = deployed
    stranger = new_user()
    body = {"deployment_id": deployment_id}
    assert api.call("PUT", f"/flow/{flow_id}/tags/x", user=stranger, json_body=body).status == 404
    api.call("PUT", f"/flow/{flow_id}/tags/mine", user=owner, json_body=body)
    assert api.call("DELETE", f"/flow/{flow_id}/tags/mine", user=stranger).status == 404
    assert tags(api, owner, flow_id) == {"latest": deployment_id, "mine": deployment_id}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "deployment_id: Field required"),
        ({"deployment_id": "x", "colour": "red"}, "unknown field: colour"),
        ({"deployment_id": "nope"}, "deployment not found: nope"),
        ({"deployment_id": "0194e5ac-9103-7c52-971e-f71f83c5de2e"}, "deployment not found"),
        ({"deployment_id": 7}, "deployment_id: Input should be a valid string"),
        ({"deployment_id": "x", "description": "d" * 1001}, "description"),
    ],
)
def test_a_bad_tag_body_is_a_4xx_and_writes_nothing(
    api: Api, deployed: tuple[str, int, str], body: dict[str, Any], message: str
) -> None:
    owner, flow_id, deployment_id = deployed
    reply = api.call("PUT", f"/flow/{flow_id}/tags/v2", user=owner, json_body=body)
    assert reply.status in {400, 404}
    assert message in reply.body["error"]
    assert tags(api, owner, flow_id) == {"latest": deployment_id}


def test_a_flow_has_at_most_fifty_custom_tags(api: Api, deployed: tuple[str, int, str]) -> None:
    owner, flow_id, deployment_id = deployed
    body = {"deployment_id": deployment_id}
    for n in range(50):
        reply = api.call("PUT", f"/flow/{flow_id}/tags/t{n}", user=owner, json_body=body)
        assert reply.status == 200
    reply = api.call("PUT", f"/flow/{flow_id}/tags/one-more", user=owner, json_body=body)
    assert (reply.status, reply.body) == (
        400,
        {"error": "a flow can have at most 50 tags besides latest (MAX_TAGS_PER_FLOW)"},
    )
    assert api.call("PUT", f"/flow/{flow_id}/tags/t7", user=owner, json_body=body).status == 200
    # Deleting a deployment with all its tags is one transaction.
    assert api.call("DELETE", f"/deployment/{deployment_id}", user=owner).status == 204
    assert tags(api, owner, flow_id) == {}
