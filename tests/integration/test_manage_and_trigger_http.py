"""Over real HTTP against the local stack: managing deployments and tags, idempotent
starts, a start from the trigger queue, and the OpenAPI document."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.conftest import Stack, new_user
from tests.integration.test_http import FLAGS, WALLET, Client

pytestmark = pytest.mark.integration

INPUTS = {"sender": {"S": WALLET}, "amount": {"D": "3.14"}}


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def tags(client: Client, owner: str, flow_id: int) -> dict[str, str]:
    reply = client.request("GET", f"/flow/{flow_id}/tags", user=owner)
    assert reply.status_code == 200, reply.text
    return {t["tag"]: t["deployment_id"] for t in reply.json()["tags"]}


def test_a_patch_by_a_non_owner_is_a_404_and_changes_nothing(client: Client) -> None:
    owner = new_user()
    deployment_id = client.deploy(owner, client.flow(owner))
    before = client.request("GET", f"/deployment/{deployment_id}", user=owner).json()
    reply = client.request(
        "PATCH",
        f"/deployment/{deployment_id}",
        user=new_user(),
        json={"start_permission": "Anonymous"},
    )
    assert (reply.status_code, reply.json()) == (
        404,
        {"error": f"deployment not found: {deployment_id}"},
    )
    assert client.request("GET", f"/deployment/{deployment_id}", user=owner).json() == before


def test_the_owner_patches_a_deployment_and_the_next_start_obeys_it(client: Client) -> None:
    owner = new_user()
    deployment_id = client.deploy(owner, client.flow(owner))
    wallet = {"Authorization": f"Bearer {WALLET}"}
    start = f"/deployment/start?id={deployment_id}"
    assert client.request("POST", start, headers=wallet).status_code == 404
    patched = client.request(
        "PATCH",
        f"/deployment/{deployment_id}",
        user=owner,
        json={"start_permission": "Anonymous", "fees": [[WALLET, 5000]]},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["start_permission"], patched.json()["fees"]) == (
        "Anonymous",
        [[WALLET, 5000]],
    )
    assert client.request("POST", start, headers=wallet).status_code == 200
    read_only = client.request(
        "PATCH", f"/deployment/{deployment_id}", user=owner, json={"entrypoint": 1}
    )
    assert read_only.status_code == 400
    assert read_only.json() == {"error": "read-only column(s) cannot be changed: entrypoint"}


def test_tags_over_http_and_deleting_the_latest_deployment_moves_latest_back(
    client: Client,
) -> None:
    owner = new_user()
    flow_id = client.flow(owner)
    first, second = client.deploy(owner, flow_id), client.deploy(owner, flow_id)
    put = client.request(
        "PUT",
        f"/flow/{flow_id}/tags/stable",
        user=owner,
        json={"deployment_id": first, "description": "prod"},
    )
    assert put.status_code == 200, put.text
    assert tags(client, owner, flow_id) == {"latest": second, "stable": first}
    by_tag = client.request("POST", f"/deployment/start?flow={flow_id}&tag=stable", user=owner)
    assert by_tag.status_code == 200
    manual = client.request(
        "PUT", f"/flow/{flow_id}/tags/latest", user=owner, json={"deployment_id": first}
    )
    assert manual.status_code == 400

    assert client.request("DELETE", f"/deployment/{second}", user=owner).status_code == 204
    assert tags(client, owner, flow_id) == {"latest": first, "stable": first}
    assert client.request("DELETE", f"/flow/{flow_id}/tags/stable", user=owner).status_code == 204
    assert client.request("DELETE", f"/deployment/{first}", user=owner).status_code == 204
    assert tags(client, owner, flow_id) == {}


def test_a_repeated_idempotency_key_returns_the_same_flow_run_id(client: Client) -> None:
    owner = new_user()
    deployment_id = client.deploy(owner, client.flow(owner, **FLAGS["Anonymous"]))
    path = f"/deployment/start?id={deployment_id}"
    keyed = {"Idempotency-Key": "retry-me-7"}
    caller = new_user()
    first = client.request("POST", path, user=caller, headers=keyed, json={"inputs": INPUTS})
    again = client.request("POST", path, user=caller, headers=keyed, json={"inputs": INPUTS})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["flow_run_id"] == first.json()["flow_run_id"]
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    different = client.request("POST", path, user=caller, headers=keyed, json={"inputs": {}})
    assert different.status_code == 409
    assert len(client.runs(owner, deployment_id)) == 1


def test_a_message_on_the_trigger_queue_starts_a_run_as_the_owner(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    flow_id = client.flow(owner)  # private: only the owner may start it
    deployment_id = client.deploy(owner, flow_id)
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queue_url = sqs.get_queue_url(QueueName="TriggerQueue")["QueueUrl"]
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps({"flow": flow_id, "inputs": INPUTS})
    )
    deadline = time.monotonic() + 20
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not runs:
        runs = client.runs(owner, deployment_id)
        time.sleep(0.2)
    (run,) = runs
    assert (run["origin"], run["inputs"]) == ("sqs", INPUTS)


def test_the_openapi_document_and_its_interactive_page_are_served(client: Client) -> None:
    document = client.request("GET", "/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {
        "/deployment/start",
        "/deployment/{deployment_id}",
        "/flow/{flow_id}/tags/{tag}",
    } <= set(paths)
    page = client.request("GET", "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
