"""api_input, as upstream's api_input_test.ts uses it: the run publishes a URL, a POST of the
value resumes it, a DELETE cancels it, a timeout fails it; a webhook is told the URL."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import new_user
from tests.unit.api import Api, Reply
from tests.unit.test_import_export import flow_ids, imported
from tests.unit.test_run_execution import execute, read, start


def submit_path(url: str) -> str:
    return urlsplit(url).path


def started_api_input(api: Api, **inputs: Any) -> tuple[str, dict[str, str]]:
    user = new_user()
    flow_id = flow_ids(imported(api, user))["API Input"]
    deployment = api.deploy(user, flow_id)
    return user, start(api, user, deployment, {"inputs": inputs})


def when_waiting(
    api: Api, started: dict[str, str], act: Callable[[dict[str, Any]], None]
) -> threading.Thread:
    """Calls `act` with the run's waiting api_input once it is published."""

    def watch() -> None:
        for _ in range(100):
            waiting = read(api, started, "/api_input").body
            if waiting:
                act(waiting[0])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_a_posted_value_is_the_nodes_output(api: Api) -> None:
    _, started = started_api_input(api)
    replies: list[Reply] = []

    def answer(request: dict[str, Any]) -> None:
        assert request["times"] == 0 and request["url"].startswith("http")
        path = submit_path(request["url"])
        replies.append(api.call("POST", path, json_body={"value": {"S": "hello"}}))
        replies.append(api.call("POST", path, json_body={"value": {"S": "again"}}))

    thread = when_waiting(api, started, answer)
    execute(api, started["flow_run_id"])
    thread.join()
    run = read(api, started).body
    assert (run["status"], run["outputs"]) == ("succeeded", {"c": {"S": "hello"}})
    first, second = replies
    assert (first.status, first.body) == (200, {"success": True})
    assert second.status == 404, "a value is taken once"
    assert read(api, started, "/api_input").body == []


def test_a_delete_cancels_the_wait_and_fails_the_node(api: Api) -> None:
    _, started = started_api_input(api)
    thread = when_waiting(api, started, lambda r: api.call("DELETE", submit_path(r["url"])))
    execute(api, started["flow_run_id"])
    thread.join()
    run = read(api, started).body
    assert run["status"] == "failed"
    assert run["error"].endswith("(api_input) failed: canceled by user")


def test_no_value_within_the_timeout_fails_the_node_with_timeout(api: Api) -> None:
    user = new_user()
    flow_id = flow_ids(imported(api, user))["API Input"]
    flow = api.call("GET", f"/flow/{flow_id}", user=user).body
    [timeout] = [n for n in flow["nodes"] if n["data"]["config"].get("type") == "F64"]
    timeout["data"]["config"]["value"] = {"F": "0.3"}  # the export's flow waits 5 s
    body = {k: v for k, v in flow.items() if k not in {"id", "user_id", "created_at", "updated_at"}}
    assert api.call("PUT", f"/flow/{flow_id}", user=user, json_body=body).status == 200
    started = start(api, user, api.deploy(user, flow_id), {})
    execute(api, started["flow_run_id"])
    run = read(api, started).body
    assert run["status"] == "failed"
    assert run["error"].endswith("(api_input) failed: timeout")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/flow/submit/" + "0" * 64, {"value": {"S": "x"}}, 404),
        ("POST", "/flow/submit/not-a-key", {"value": {"S": "x"}}, 404),
        ("DELETE", "/flow/submit/" + "f" * 64, None, 404),
        ("POST", "/flow/submit/" + "0" * 64, {"value": {"Q": "x"}}, 400),
        ("POST", "/flow/submit/" + "0" * 64, {"nothing": 1}, 400),
    ],
)
def test_a_key_no_node_waits_on_finds_nothing(
    api: Api, method: str, path: str, body: Any, status: int
) -> None:
    assert api.call(method, path, json_body=body).status == status


@pytest.fixture
def webhook(api: Api) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook that answers the value "hello" to the URL it is told, as upstream's does."""
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            told = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(told)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            path = submit_path(told["url"])
            threading.Thread(
                target=api.call,
                args=("POST", path),
                kwargs={"json_body": {"value": {"S": "hello"}}},
            ).start()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhook", calls
    server.shutdown()
    server.server_close()


def test_a_webhook_is_told_where_to_post_and_its_answer_resumes_the_run(
    api: Api, webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowdeploy.settings import settings

    monkeypatch.setenv("HTTP_ALLOW_PRIVATE", "true")
    settings.cache_clear()
    url, calls = webhook
    _, started = started_api_input(api, webhook_url={"S": url})
    execute(api, started["flow_run_id"])
    settings.cache_clear()
    run = read(api, started).body
    assert (run["status"], run["outputs"]) == ("succeeded", {"c": {"S": "hello"}})
    [told] = calls
    assert told["flow_run_id"] == started["flow_run_id"]
    assert (told["times"], told["timeout"], told["extra"]) == (0, 5.0, {"key": "value"})


def test_a_webhook_that_fails_is_said_in_the_run_log_and_the_wait_goes_on(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowdeploy.settings import settings

    monkeypatch.setenv("HTTP_ALLOW_PRIVATE", "true")
    settings.cache_clear()
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    _, started = started_api_input(api, webhook_url={"S": f"http://127.0.0.1:{port}/hook"})
    thread = when_waiting(
        api,
        started,
        lambda request: api.call(
            "POST", submit_path(request["url"]), json_body={"value": {"S": "by hand"}}
        ),
    )
    execute(api, started["flow_run_id"])
    thread.join()
    settings.cache_clear()
    run = read(api, started).body
    assert (run["status"], run["outputs"]) == ("succeeded", {"c": {"S": "by hand"}})
    lines = read(api, started, "/logs").body["logs"]
    [warning] = [line for line in lines if "webhook" in line["content"]]
    assert warning["level"] == "warn"
    assert warning["content"].startswith("api_input webhook failed: ")
    assert warning["content"].endswith("; still waiting for the value")
