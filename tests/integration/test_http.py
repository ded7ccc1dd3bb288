"""The local stack over real HTTP: caller kinds, concurrency, bad input, the run lifecycle."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests

from tests.conftest import JWT_SECRET, Stack, new_user, token_for

pytestmark = pytest.mark.integration

WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
FLAGS = {
    "Owner": {},
    "Authenticated": {"is_public": True, "start_shared": True},
    "Anonymous": {"is_public": True, "start_shared": True, "start_unverified": True},
}


class Client:
    def __init__(self, stack: Stack) -> None:
        self.url = stack.url
        self.http = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> requests.Response:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {token_for(user)}"
        return self.http.request(method, self.url + path, headers=sent, timeout=30, **kw)

    def flow(self, user: str, **fields: Any) -> int:
        reply = self.request("POST", "/flow", user=user, json={"name": "it", **fields})
        assert reply.status_code == 201, reply.text
        return int(reply.json()["flow_id"])

    def deploy(self, user: str, flow_id: int) -> str:
        reply = self.request("POST", f"/flow/deploy/{flow_id}", user=user)
        assert reply.status_code == 200, reply.text
        return str(reply.json()["deployment_id"])

    def runs(self, user: str, deployment_id: str) -> list[dict[str, Any]]:
        reply = self.request("GET", f"/deployment/{deployment_id}/flow_runs", user=user)
        assert reply.status_code == 200, reply.text
        return list(reply.json()["flow_runs"])


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def caller_headers(kind: str, owner: str) -> dict[str, str]:
    if kind == "owner":
        return {"Authorization": f"Bearer {token_for(owner)}"}
    if kind == "other user":
        return {"Authorization": f"Bearer {token_for(new_user())}"}
    return {"Authorization": f"Bearer {WALLET}"}


@pytest.mark.parametrize(
    ("permission", "caller", "expected"),
    [
        ("Owner", "owner", 200),
        ("Owner", "other user", 404),
        ("Owner", "wallet", 404),
        ("Authenticated", "owner", 200),
        ("Authenticated", "other user", 200),
        ("Authenticated", "wallet", 404),
        ("Anonymous", "owner", 200),
        ("Anonymous", "other user", 200),
        ("Anonymous", "wallet", 200),
    ],
)
def test_each_caller_kind_against_each_start_permission(
    client: Client, permission: str, caller: str, expected: int
) -> None:
    owner = new_user()
    flow_id = client.flow(owner, **FLAGS[permission])
    deployment_id = client.deploy(owner, flow_id)
    row = client.request("GET", f"/deployment/{deployment_id}", user=owner).json()
    assert row["start_permission"] == permission

    for query in (f"id={deployment_id}", f"flow={flow_id}", f"flow={flow_id}&tag=latest"):
        reply = client.request(
            "POST", f"/deployment/start?{query}", headers=caller_headers(caller, owner)
        )
        assert reply.status_code == expected, (query, reply.text)
        if expected == 404:
            assert reply.json() == {"error": f"deployment not found: {_label(query)}"}
    runs = client.runs(owner, deployment_id)
    assert len(runs) == (3 if expected == 200 else 0)


def _label(query: str) -> str:
    params = dict(part.split("=") for part in query.split("&"))
    return params.get("id") or f"{params['flow']}:{params.get('tag', 'latest')}"


def test_a_started_run_is_taken_off_the_queue_and_finished(client: Client) -> None:
    owner = new_user()
    deployment_id = client.deploy(owner, client.flow(owner))
    started = client.request("POST", f"/deployment/start?id={deployment_id}", user=owner).json()
    bearer = {"Authorization": f"Bearer {started['token']}"}
    deadline = time.monotonic() + 20
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = client.request("GET", f"/flow_run/{started['flow_run_id']}", headers=bearer).json()
        if run["status"] not in {"queued", "running"}:
            break
        time.sleep(0.2)
    assert (run["status"], run["outputs"], run["error"]) == ("succeeded", {}, None)
    assert run["deployment_id"] == deployment_id


def expired_token(user: str) -> str:
    return jwt.encode(
        {"sub": user, "aud": "authenticated", "exp": int(time.time()) - 10}, JWT_SECRET
    )


def forged_token(user: str) -> str:
    return jwt.encode(
        {"sub": user, "aud": "authenticated", "exp": int(time.time()) + 60},
        "not-the-secret-but-long-enough-32b",
    )


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad json", 400),
        ("unknown field", 400),
        ("bad pubkey", 400),
        ("bad ivalue", 400),
        ("unknown deployment", 404),
        ("unknown tag", 404),
        ("missing credential", 401),
        ("expired credential", 401),
        ("forged credential", 401),
        ("unknown api key", 401),
    ],
)
def test_bad_input_gets_its_4xx_and_writes_nothing(client: Client, case: str, status: int) -> None:
    owner = new_user()
    flow_id = client.flow(owner, **FLAGS["Anonymous"])
    deployment_id = client.deploy(owner, flow_id)
    auth = {"Authorization": f"Bearer {token_for(owner)}"}
    query, body, headers = f"id={deployment_id}", b"", dict(auth)
    json_type = {"Content-Type": "application/json"}
    if case == "bad json":
        body, headers = b'{"inputs": {', {**auth, **json_type}
    elif case == "unknown field":
        body, headers = b'{"inputz": {}}', {**auth, **json_type}
    elif case == "bad pubkey":
        body, headers = b'{"action_signer": "0OIl"}', {**auth, **json_type}
    elif case == "bad ivalue":
        body, headers = b'{"inputs": {"a": {"U": "-1"}}}', {**auth, **json_type}
    elif case == "unknown deployment":
        query = "id=0194e5ac-9103-7c52-971e-f71f83c5de2e"
    elif case == "unknown tag":
        query = f"flow={flow_id}&tag=v9"
    elif case == "missing credential":
        headers = {}
    elif case == "expired credential":
        headers = {"Authorization": f"Bearer {expired_token(owner)}"}
    elif case == "forged credential":
        headers = {"Authorization": f"Bearer {forged_token(owner)}"}
    elif case == "unknown api key":
        headers = {"x-api-key": "b3-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    reply = client.request("POST", f"/deployment/start?{query}", headers=headers, data=body)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error"}
    assert client.runs(owner, deployment_id) == []


def test_api_key_lifecycle_over_http(client: Client) -> None:
    owner = new_user()
    flow_id = client.flow(owner)
    created = client.request("POST", "/apikey", user=owner, json={"name": "script"})
    assert created.status_code == 201
    key = {"x-api-key": created.json()["key"]}
    assert client.request("POST", f"/flow/deploy/{flow_id}", headers=key).status_code == 200
    deleted = client.request("DELETE", f"/apikey/{created.json()['id']}", user=owner)
    assert deleted.status_code == 204
    assert client.request("POST", f"/flow/deploy/{flow_id}", headers=key).status_code == 401


def test_browsers_get_cors_headers(client: Client) -> None:
    preflight = client.http.options(
        f"{client.url}/deployment/start",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    reply = client.request("GET", "/apikey", user=new_user(), headers={"Origin": "https://a.b"})
    assert reply.headers["access-control-allow-origin"] == "*"
