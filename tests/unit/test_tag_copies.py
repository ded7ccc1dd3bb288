"""Tags carry their deployment's start fields, so `?flow=&tag=` is one read; they never drift.

Every write that points a tag at a deployment or changes those fields is one transaction
conditional on the deployment's revision, so the copies always equal the originals.
"""

from __future__ import annotations

from typing import Any

from flowdeploy.store import deployments as store
from flowdeploy.store.models import DeploymentItem, DeploymentsRecord, TagItem
from tests.conftest import new_user
from tests.unit.api import Api

WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"


def assert_copies_match() -> None:
    """Every tag names an existing deployment and holds exactly its start fields."""
    tags = [item for item in DeploymentsRecord.scan() if isinstance(item, TagItem)]
    for tag in tags:
        deployment = store.get(tag.deployment_id)
        assert deployment is not None, f"tag {tag.tag} names a deleted deployment"
        assert tag.start_permission == deployment.start_permission, tag.tag
        assert tag.output_instructions == deployment.output_instructions, tag.tag
        assert tag.tag in (deployment.tags or set()), f"{tag.tag} not listed on its deployment"


def patch(api: Api, owner: str, deployment_id: str, **changes: Any) -> None:
    reply = api.call("PATCH", f"/deployment/{deployment_id}", user=owner, json_body=changes)
    assert reply.status == 200, reply.body


def put_tag(api: Api, owner: str, flow_id: int, tag: str, deployment_id: str) -> None:
    body = {"deployment_id": deployment_id}
    reply = api.call("PUT", f"/flow/{flow_id}/tags/{tag}", user=owner, json_body=body)
    assert reply.status == 200, reply.body


def start_by_tag(api: Api, flow_id: int, tag: str, user: str | None = None) -> int:
    headers = {} if user else {"authorization": f"Bearer {WALLET}"}
    path = f"/deployment/start?flow={flow_id}&tag={tag}"
    return api.call("POST", path, user=user, headers=headers).status


def test_a_patched_start_permission_applies_to_starts_by_every_tag(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    put_tag(api, owner, flow_id, "v1", deployment_id)
    assert start_by_tag(api, flow_id, "v1") == 404  # Owner: a wallet may not start it
    patch(api, owner, deployment_id, start_permission="Anonymous")
    assert start_by_tag(api, flow_id, "v1") == 200
    assert start_by_tag(api, flow_id, "latest") == 200
    patch(api, owner, deployment_id, start_permission="Owner")
    assert start_by_tag(api, flow_id, "v1") == 404
    assert start_by_tag(api, flow_id, "latest") == 404
    assert_copies_match()


def test_a_patched_output_instructions_reaches_runs_started_by_tag(api: Api) -> None:
    from flowdeploy.store import runs

    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    patch(api, owner, deployment_id, output_instructions=True)
    reply = api.call("POST", f"/deployment/start?flow={flow_id}", user=owner)
    run = runs.get(reply.body["flow_run_id"])
    assert run is not None and run.output_instructions is True


def test_a_tag_moved_away_keeps_its_new_deployments_fields_when_the_old_one_changes(
    api: Api,
) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    first = api.deploy(owner, flow_id)
    put_tag(api, owner, flow_id, "v1", first)
    second = api.deploy(owner, flow_id)  # latest moves to it
    put_tag(api, owner, flow_id, "v1", second)
    patch(api, owner, first, start_permission="Anonymous")  # first still lists both tags
    assert start_by_tag(api, flow_id, "v1") == 404
    assert start_by_tag(api, flow_id, "latest") == 404
    assert_copies_match()
    first_item = store.get(first)
    assert first_item is not None and not first_item.tags, "moved tags are dropped from its list"


def test_a_patch_that_read_before_a_tag_was_put_still_updates_that_tag(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    read_before = store.get(deployment_id)
    assert read_before is not None
    put_tag(api, owner, flow_id, "v1", deployment_id)  # lands between the read and the write
    assert store.update(read_before, owner, {"start_permission": "Anonymous"}) is not None
    assert start_by_tag(api, flow_id, "v1") == 200
    assert_copies_match()


def test_a_tag_put_that_read_before_a_patch_still_copies_the_patched_fields(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    read_before = store.get(deployment_id)
    assert read_before is not None
    patch(api, owner, deployment_id, start_permission="Anonymous")
    tag = TagItem(
        *TagItem.key(flow_id, "v1"),
        user_id=owner,
        entrypoint=flow_id,
        tag="v1",
        deployment_id=deployment_id,
    )
    assert store.put_tag(tag, read_before, 50)
    assert start_by_tag(api, flow_id, "v1") == 200
    assert_copies_match()


def test_latest_falling_back_on_delete_takes_the_fallbacks_fields(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    older = api.deploy(owner, flow_id)
    newer = api.deploy(owner, flow_id)
    patch(api, owner, older, start_permission="Anonymous")
    assert start_by_tag(api, flow_id, "latest") == 404  # newer: Owner
    assert api.call("DELETE", f"/deployment/{newer}", user=owner).status == 204
    assert start_by_tag(api, flow_id, "latest") == 200
    assert_copies_match()


def test_deleting_a_deployment_removes_a_tag_put_just_before(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    kept = api.deploy(owner, flow_id)
    deleted = api.deploy(owner, flow_id)
    put_tag(api, owner, flow_id, "v1", deleted)
    assert api.call("DELETE", f"/deployment/{deleted}", user=owner).status == 204
    assert start_by_tag(api, flow_id, "v1", user=owner) == 404
    assert store.get_tag(flow_id, "latest") is not None
    assert store.get_tag(flow_id, "latest").deployment_id == kept  # type: ignore[union-attr]
    assert_copies_match()


def test_copies_stay_equal_through_a_mix_of_deploys_patches_moves_and_deletes(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    d1, d2 = api.deploy(owner, flow_id), api.deploy(owner, flow_id)
    put_tag(api, owner, flow_id, "a", d1)
    put_tag(api, owner, flow_id, "b", d2)
    patch(api, owner, d1, start_permission="Authenticated", output_instructions=True)
    d3 = api.deploy(owner, flow_id)
    put_tag(api, owner, flow_id, "a", d3)
    patch(api, owner, d2, start_permission="Anonymous")
    put_tag(api, owner, flow_id, "c", d1)
    assert api.call("DELETE", f"/deployment/{d3}", user=owner).status == 204
    patch(api, owner, d2, output_instructions=True)
    assert_copies_match()
    assert {t.tag for t in store.tags_of_flow(flow_id)} == {"latest", "b", "c"}


def test_a_tag_written_before_tags_kept_copies_is_started_from_its_deployment(api: Api) -> None:
    owner = new_user()
    flow_id = api.create_flow(owner)
    deployment_id = api.deploy(owner, flow_id)
    patch(api, owner, deployment_id, start_permission="Anonymous")
    legacy = store.get_tag(flow_id, "latest")
    assert legacy is not None
    legacy.update(actions=[TagItem.start_permission.remove(), TagItem.output_instructions.remove()])
    assert start_by_tag(api, flow_id, "latest") == 200
    item = DeploymentItem.get(*DeploymentItem.key(deployment_id))
    assert item.start_permission == "Anonymous"
