"""http_request against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flowdeploy.engine import FlowGraph, FlowInvalid
from flowdeploy.engine.http_client import is_public
from flowdeploy.values import IValue
from tests.unit.engine.flows import edge, flow, node, run


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Seen", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/json":
            self._reply(200, "application/json", b'{"price": 1.10, "ok": true}')
        elif self.path == "/text":
            self._reply(200, "text/plain; charset=utf-8", "héllo".encode())
        elif self.path == "/bytes":
            self._reply(200, "application/octet-stream", b"\x00\x01")
        elif self.path == "/slow":
            time.sleep(2)
            self._reply(200, "text/plain", b"late")
        elif self.path == "/redirect":
            self._redirect("/json")
        elif self.path.startswith("/away?to="):
            self._redirect(self.path.removeprefix("/away?to="))
        elif self.path == "/whoami":
            echo = json.dumps({"auth": self.headers.get("Authorization")}).encode()
            self._reply(200, "application/json", echo)
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                for _ in range(20):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
        else:
            self._reply(404, "application/json", b'{"error": "nope"}')

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        echo = {
            "got": json.loads(body),
            "type": self.headers["Content-Type"],
            "auth": self.headers.get("Authorization"),
        }
        self._reply(201, "application/json", json.dumps(echo).encode())


def serve() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from serve()


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    yield from serve()


def request(allow_private: bool = True, **config: Any) -> Any:
    document = flow(
        node("req", "http_request", **config),
        node("status", "flow_output", label="status"),
        node("headers", "flow_output", label="headers"),
        node("body", "flow_output", label="body"),
        edges=[
            edge("req", "status", "status"),
            edge("req", "headers", "headers"),
            edge("req", "body", "body"),
        ],
    )
    return run(document, allow_private=allow_private)


def test_a_json_response_becomes_a_value(server: str) -> None:
    outcome = request(url=f"{server}/json")
    assert outcome.status == "succeeded"
    assert outcome.outputs["status"] == {"U": "200"}
    assert outcome.outputs["body"] == {"M": {"price": {"D": "1.10"}, "ok": {"B": True}}}
    assert outcome.outputs["headers"]["M"]["x-seen"] == {"S": "yes"}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/text", {"S": "héllo"}), ("/bytes", {"BY": "AAE="})],
)
def test_text_is_a_string_and_anything_else_bytes(server: str, path: str, body: Any) -> None:
    assert request(url=f"{server}{path}").outputs["body"] == body


def test_a_json_body_is_sent_with_headers(server: str) -> None:
    outcome = request(
        url=f"{server}/echo",
        method="post",
        headers={"Authorization": "Bearer t"},
        body={"M": {"n": {"D": "2.5"}, "s": {"S": "x"}}},
    )
    assert outcome.outputs["status"] == {"U": "201"}
    assert outcome.outputs["body"] == {
        "M": {
            "got": {"M": {"n": {"D": "2.5"}, "s": {"S": "x"}}},
            "type": {"S": "application/json"},
            "auth": {"S": "Bearer t"},
        }
    }


def test_an_error_status_is_a_result_not_a_failure(server: str) -> None:
    outcome = request(url=f"{server}/missing")
    assert outcome.status == "succeeded"
    assert outcome.outputs["status"] == {"U": "404"}


def test_redirects_are_followed(server: str) -> None:
    assert request(url=f"{server}/redirect").outputs["status"] == {"U": "200"}


def test_a_slow_server_is_a_timeout_error(server: str) -> None:
    outcome = request(url=f"{server}/slow", timeout={"D": "0.3"})
    assert outcome.status == "failed"
    assert "/slow: " in (outcome.error or "")
    assert "timed out" in (outcome.error or "") or "no response within" in (outcome.error or "")


def test_private_addresses_are_refused_unless_allowed(server: str) -> None:
    outcome = request(allow_private=False, url=f"{server}/json")
    assert outcome.status == "failed"
    assert "refused to connect to non-public address 127.0.0.1" in (outcome.error or "")


def test_a_refused_connection_is_a_node_error() -> None:
    outcome = request(url="http://127.0.0.1:9/")
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.startswith(
        "node 'req' (http_request) failed: GET http://127.0.0.1:9/: "
    )


BAD_INPUTS = [
    ({"url": "file:///etc/passwd"}, "input 'url': must be an http:// or https:// URL"),
    ({"url": "http://x", "method": "BREW"}, "input 'method': use one of"),
    ({"url": "http://x", "timeout": 0}, "input 'timeout': must be above 0"),
    ({"url": "http://x", "timeout": 1e6}, "input 'timeout': must be above 0"),
]


@pytest.mark.parametrize(("config", "message"), BAD_INPUTS)
def test_bad_request_inputs_arriving_at_run_time_are_node_errors(
    config: dict[str, Any], message: str
) -> None:
    # The same values through flow inputs: only known when the run starts.
    nodes = [node("req", "http_request"), node("out", "flow_output", label="status")]
    edges = [edge("req", "out", "status")]
    for name in config:
        nodes.append(node(f"in-{name}", "flow_input", label=name))
        edges.append(edge(f"in-{name}", "req", into=name))
    inputs = {name: IValue.from_python(value).to_json() for name, value in config.items()}
    outcome = run(flow(*nodes, edges=edges), inputs)
    assert outcome.status == "failed"
    assert message in (outcome.error or "")


@pytest.mark.parametrize(("config", "message"), BAD_INPUTS)
def test_bad_literal_request_inputs_are_refused_when_the_flow_is_saved(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(FlowInvalid) as refused:
        FlowGraph.build(flow(node("req", "http_request", **config)))
    assert refused.value.message.startswith(f"node 'req' (http_request): {message}")


def test_a_bad_header_is_a_node_error() -> None:
    outcome = request(url="http://x", headers={"a\r\nb": "c"})
    assert outcome.status == "failed"
    assert "is not a valid header" in (outcome.error or "")


def test_credentials_follow_a_redirect_only_within_one_origin(
    server: str, other_origin: str
) -> None:
    auth = {"Authorization": "Bearer secret"}
    same = request(url=f"{server}/away?to=/whoami", headers=auth)
    assert same.outputs["body"] == {"M": {"auth": {"S": "Bearer secret"}}}
    elsewhere = request(url=f"{server}/away?to={other_origin}/whoami", headers=auth)
    assert elsewhere.outputs["body"] == {"M": {"auth": {"N": 0}}}


def test_a_trickling_body_is_cut_off_at_the_timeout(server: str) -> None:
    started = time.monotonic()
    outcome = request(url=f"{server}/trickle", timeout={"D": "0.5"})
    assert time.monotonic() - started < 2
    assert outcome.status == "failed"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::127.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("2002:7f00:1::", False),
        ("fd00::1", False),
        ("2606:4700:4700::1111", True),
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    assert is_public(address) is public
