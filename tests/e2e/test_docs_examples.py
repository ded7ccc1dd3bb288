"""Every curl example of the docs page "Flow Deployment", run with curl against the local stack.

The commands are the docs' own lines, character for character; only the host
https://dev-api.spaceoperator.com is swapped for the local stack, the $VARIABLES
are filled in, and the authentication header the docs "omit for brevity" is added.
They are split into arguments as the docs intend (a shell would treat the `&` of
`?flow=$FLOW_ID&tag=$TAG` as "run in background": quote URLs in your shell).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import uuid
from typing import Any

import pytest

from tests.conftest import Stack, token_for

pytestmark = pytest.mark.integration

DOCS_HOST = "https://dev-api.spaceoperator.com"
DEPLOY = "curl -X POST https://dev-api.spaceoperator.com/flow/deploy/$FLOW_ID"
START_BY_ID = "curl -X POST https://dev-api.spaceoperator.com/deployment/start?id=$ID"
START_BY_TAG = (
    "curl -X POST https://dev-api.spaceoperator.com/deployment/start?flow=$FLOW_ID&tag=$TAG"
)
START_LATEST = "curl -X POST https://dev-api.spaceoperator.com/deployment/start?flow=$FLOW_ID"
AUTH_TOKEN = '-H "Authorization: Bearer $ACCESS_TOKEN"'
AUTH_API_KEY = '-H "x-api-key: $API_KEY"'
AUTH_PUBLIC_KEY = '-H "Authorization: Bearer $PUBLIC_KEY"'
EXAMPLE_BODY = """{
  "inputs": {
    "sender": {
      "S": "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
    },
    "amount": {
      "D": "3.14"
    }
  },
  "action_signer": "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
}"""
DEPLOY_RESPONSE = re.compile(
    r'^\{"deployment_id":"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"\}$'
)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
START_RESPONSE = re.compile(rf'^\{{"flow_run_id":"{UUID}","token":"fr-[A-Za-z0-9_-]{{64}}"\}}$')


def curl(stack: Stack, command: str, auth: str, variables: dict[str, str], *extra: str) -> str:
    """Run a docs command with curl; its stdout (the response body)."""
    line = f"{command} {auth}".replace(DOCS_HOST, stack.url)
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        line = line.replace(f"${name}", value)
    argv = [*shlex.split(line), "--silent", "--show-error", "--fail-with-body", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"{argv}: {done.stdout} {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def docs(stack: Stack) -> dict[str, str]:
    """The docs' variables: a user with a public, anonymous-startable flow, and an API key."""
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the docs examples (apt-get install curl)")
    import requests

    user = str(uuid.uuid4())
    token = token_for(user)
    auth = {"Authorization": f"Bearer {token}"}
    flow = requests.post(
        f"{stack.url}/flow",
        json={
            "name": "docs",
            "is_public": True,
            "start_shared": True,
            "start_unverified": True,
            # the docs' flow is on devnet (flows created on the local stack default to its
            # local cluster); a deployment takes its flow's network
            "current_network": {"url": "https://api.devnet.solana.com", "cluster": "devnet"},
        },
        headers=auth,
        timeout=30,
    ).json()
    key = requests.post(f"{stack.url}/apikey", json={"name": "docs"}, headers=auth, timeout=30)
    return {
        "USER": user,
        "ACCESS_TOKEN": token,
        "API_KEY": key.json()["key"],
        "PUBLIC_KEY": "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK",
        "FLOW_ID": str(flow["flow_id"]),
        "TAG": "latest",
    }


def deploy(stack: Stack, docs: dict[str, str], auth: str = AUTH_TOKEN) -> str:
    out = curl(stack, DEPLOY, auth, docs)
    assert DEPLOY_RESPONSE.match(out), out
    return str(json.loads(out)["deployment_id"])


def test_deploy_a_flow_with_an_access_token(stack: Stack, docs: dict[str, str]) -> None:
    deploy(stack, docs)


def test_deploy_a_flow_with_an_api_key(stack: Stack, docs: dict[str, str]) -> None:
    deploy(stack, docs, AUTH_API_KEY)


def test_the_inserted_rows_are_the_docs_rows(stack: Stack, docs: dict[str, str]) -> None:
    deployment_id = deploy(stack, docs)
    get = f"curl {DOCS_HOST}/deployment/$ID"
    row = json.loads(curl(stack, get, AUTH_TOKEN, {**docs, "ID": deployment_id}))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?", row["created_at"])
    # The docs' row, then the columns issue 14 added (null until the owner sets them).
    extra = ("compute_unit_price", "action_title", "action_icon", "action_description")
    extra += ("action_label",)
    assert {key: row.pop(key) for key in extra} == dict.fromkeys(extra)
    assert row == {
        "id": deployment_id,
        "created_at": row["created_at"],  # the docs' "2025-02-08 13:07:59.35528" format
        "user_id": docs["USER"],
        "entrypoint": int(docs["FLOW_ID"]),
        "start_permission": "Anonymous",
        "output_instructions": False,
        "action_identity": None,
        "fees": [],
        "solana_network": {"url": "https://api.devnet.solana.com", "cluster": "devnet"},
    }
    tags = json.loads(curl(stack, f"curl {DOCS_HOST}/flow/$FLOW_ID/tags", AUTH_TOKEN, docs))
    assert tags["next"] is None
    assert tags["tags"] == [
        {
            "user_id": docs["USER"],
            "entrypoint": int(docs["FLOW_ID"]),
            "tag": "latest",
            "deployment_id": deployment_id,
            "description": None,
        }
    ]


@pytest.mark.parametrize("auth", [AUTH_TOKEN, AUTH_API_KEY, AUTH_PUBLIC_KEY])
@pytest.mark.parametrize("command", [START_BY_ID, START_BY_TAG, START_LATEST])
def test_call_a_deployment(stack: Stack, docs: dict[str, str], command: str, auth: str) -> None:
    variables = {**docs, "ID": deploy(stack, docs)}
    out = curl(stack, command, auth, variables)
    assert START_RESPONSE.match(out), out


@pytest.mark.parametrize("auth", [AUTH_TOKEN, AUTH_API_KEY, AUTH_PUBLIC_KEY])
def test_call_a_deployment_with_the_example_body(
    stack: Stack, docs: dict[str, str], auth: str
) -> None:
    variables = {**docs, "ID": deploy(stack, docs)}
    extra = ("-H", "Content-Type: application/json", "-d", EXAMPLE_BODY)
    out = curl(stack, START_BY_ID, auth, variables, *extra)
    assert START_RESPONSE.match(out), out
    started: dict[str, Any] = json.loads(out)
    run = json.loads(
        curl(
            stack,
            f"curl {DOCS_HOST}/flow_run/{started['flow_run_id']}",
            f'-H "Authorization: Bearer {started["token"]}"',
            docs,
        )
    )
    assert run["deployment_id"] == variables["ID"]
    assert run["inputs"] == json.loads(EXAMPLE_BODY)["inputs"]


def test_flow_runs_of_a_deployment_have_its_deployment_id(
    stack: Stack, docs: dict[str, str]
) -> None:
    variables = {**docs, "ID": deploy(stack, docs)}
    started = json.loads(curl(stack, START_BY_ID, AUTH_TOKEN, variables))
    runs = json.loads(
        curl(stack, f"curl {DOCS_HOST}/deployment/$ID/flow_runs", AUTH_TOKEN, variables)
    )["flow_runs"]
    assert [(r["id"], r["deployment_id"]) for r in runs] == [
        (started["flow_run_id"], variables["ID"])
    ]
