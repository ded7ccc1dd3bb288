"""Space Operator's docker/export.json on the local stack, over HTTP as a migrating user does
it: import, deploy, start, and answer an api_input at the URL the run publishes."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import Stack, new_user
from tests.integration.test_engine_http import finished, start
from tests.integration.test_http import Client
from tests.unit.engine.upstream import export


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def test_import_deploy_and_answer_an_api_input_at_its_published_url(client: Client) -> None:
    owner = new_user()
    report = client.request("POST", "/data/import", user=owner, json=export())
    assert report.status_code == 200, report.text
    ids = {flow["name"]: flow.get("flow_id") for flow in report.json()["flows"]}
    assert client.request("GET", "/nodes").status_code == 200
    started = start(client, owner, client.deploy(owner, ids["API Input"]))
    bearer = {"Authorization": f"Bearer {started['token']}"}
    deadline = time.monotonic() + 20
    waiting: list[dict[str, str]] = []
    while not waiting and time.monotonic() < deadline:
        waiting = client.request(
            "GET", f"/flow_run/{started['flow_run_id']}/api_input", headers=bearer
        ).json()
        time.sleep(0.1)
    [request] = waiting
    assert request["url"].startswith(client.url + "/flow/submit/")
    answer = requests.post(request["url"], json={"value": {"S": "hello"}}, timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    run = finished(client, started)
    assert (run["status"], run["outputs"]) == ("succeeded", {"c": {"S": "hello"}})
    exported = client.request("POST", "/data/export", user=owner)
    assert exported.status_code == 200 and "API Input" in exported.json()["flows"]
    # Script nodes on the local stack: Rhai in RunFunction, JavaScript in its Deno process
    add = start(client, owner, client.deploy(owner, ids["Add"]), {"a": {"D": "1"}, "b": {"D": "2"}})
    deno = start(client, owner, client.deploy(owner, ids["Deno Add"]))
    assert finished(client, add)["outputs"] == {"c": {"D": "3"}}
    ran = finished(client, deno)
    assert ran["outputs"] == {"pi": {"F": "3.14"}}, ran["error"]
