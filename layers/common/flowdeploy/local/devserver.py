"""`make dev`: the whole service on 127.0.0.1, no Docker, no cloud.

HTTP requests become API Gateway HTTP API (payload 2.0) events for the real
handlers, routed as template.yaml routes them; DynamoDB, SQS and KMS are an embedded
moto server; FlowRunQueue is polled into RunFunction in the background; a local
Solana JSON-RPC endpoint (LiteSVM) stands in for the cluster of flows created here.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from flowdeploy.local import ACCOUNT, calls
from flowdeploy.local.environments import Functions, LambdaError
from flowdeploy.local.event_sources import pollers, schedules
from flowdeploy.local.stack import (
    canonical_aliases,
    fake_credentials,
    function_environment,
    local_replacements,
    provision,
    provision_jwt_parameter,
    repository_root,
)
from flowdeploy.local.template import Route, Template
from flowdeploy.local.websocket import WebSocketGateway

TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


def api_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    route: Route,
    params: dict[str, str],
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event, as AWS builds it."""
    parts = urlsplit(target)
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    content_type = headers.get("content-type", "")
    text = not body or content_type.startswith(TEXT_TYPES) or not content_type
    try:
        decoded = body.decode() if text else None
    except UnicodeDecodeError:
        decoded = None
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": unquote(parts.path),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": decoded is None,
    }
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    if params:
        event["pathParameters"] = {k: unquote(v) for k, v in params.items()}
    if body:
        event["body"] = decoded if decoded is not None else base64.b64encode(body).decode()
    return event


INTERNAL_ERROR = b'{"message":"Internal Server Error"}'
TOO_MANY_REQUESTS = b'{"message":"Too Many Requests"}'


class TokenBucket:
    """API Gateway's throttling: `rate` requests a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class Gateway:
    """API Gateway's part: routing, CORS, throttling, and turning responses back into HTTP."""

    def __init__(self, template: Template, functions: Functions | None = None) -> None:
        self.routes = template.routes()
        self.cors = template.cors()
        self.functions = functions  # None until attached: `make dev` starts them once it listens
        # Each route has its own limits, as API Gateway applies route settings.
        self.buckets = {
            route: TokenBucket(rate, burst)
            for route, (rate, burst) in template.route_throttling().items()
        }
        api = template.websocket_api()
        self.websocket = WebSocketGateway(api, self.invoke) if api is not None else None

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke `function` in its own execution environment (LambdaError if it failed)."""
        if self.functions is None:
            raise RuntimeError("the gateway has no functions attached")
        return self.functions.invoke(function, event)

    def route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    def cors_headers(self, origin: str | None, preflight: bool) -> dict[str, str]:
        allowed = self.cors.get("AllowOrigins") or []
        if isinstance(allowed, dict):  # !Ref of a parameter: its default
            allowed = ["*"]
        if not origin or not ("*" in allowed or origin in allowed):
            return {}
        headers = {"access-control-allow-origin": "*" if "*" in allowed else origin}
        if preflight:
            headers["access-control-allow-methods"] = ",".join(self.cors.get("AllowMethods", []))
            headers["access-control-allow-headers"] = ",".join(self.cors.get("AllowHeaders", []))
            headers["access-control-max-age"] = str(self.cors.get("MaxAge", 0))
        elif self.cors.get("ExposeHeaders"):
            headers["access-control-expose-headers"] = ",".join(self.cors["ExposeHeaders"])
        return headers

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        origin = headers.get("origin")
        if method == "OPTIONS" and "access-control-request-method" in headers:
            return 204, self.cors_headers(origin, preflight=True), b""
        path = urlsplit(target).path
        found = self.route(method, path)
        if found is None:
            return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
        route, params = found
        bucket = self.buckets.get(route.route_key)
        if bucket is not None and not bucket.take():
            return 429, {"content-type": "application/json"}, TOO_MANY_REQUESTS
        event = api_event(method, target, headers, body, route, params)
        if self.functions is None:
            raise RuntimeError("the gateway has no functions attached")
        try:
            result = self.functions.invoke(route.function, event)
        except LambdaError as error:
            # Lambda's error (an exception, a timeout, a response over 6 MB) reaches the
            # client as API Gateway's generic 500; the detail is in the log only.
            logging.getLogger("flowdeploy.local").error("%s: %s", route.function, error)
            return 500, {"content-type": "application/json"}, INTERNAL_ERROR
        status, out_headers, payload = self.response(result)
        if self.cors:  # API Gateway ignores a function's CORS headers once it has its own
            out_headers = {
                k: v for k, v in out_headers.items() if not k.startswith("access-control-")
            }
        out_headers.update(self.cors_headers(origin, preflight=False))
        return status, out_headers, payload

    @staticmethod
    def response(result: Any) -> tuple[int, dict[str, str], bytes]:
        """Payload 2.0 responses: a full response object, or any JSON meaning 200."""
        if not (isinstance(result, dict) and "statusCode" in result):
            return 200, {"content-type": "application/json"}, json.dumps(result).encode()
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key.lower()] = ",".join(values)
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        if result.get("cookies"):
            headers["set-cookie"] = "; ".join(result["cookies"])
        return int(result["statusCode"]), headers, payload


def make_server(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "flowdeploy-local"

        def _serve(self) -> None:
            websocket = gateway.websocket
            path = urlsplit(self.path).path
            if websocket is not None and path == websocket.path:
                self._websocket(websocket)
                return
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.send_error(413, "Request Entity Too Large")
                return
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            management = f"{websocket.path}/@connections/" if websocket is not None else None
            if websocket is not None and management and path.startswith(management):
                connection = unquote(path[len(management) :])
                self._reply(*websocket.manage(self.command, connection, body, headers))
                return
            self._reply(*gateway.handle(self.command, self.path, headers, body))

        def _websocket(self, websocket: WebSocketGateway) -> None:
            upgrade = (self.headers.get("upgrade") or "").lower()
            if self.command != "GET" or upgrade != "websocket":
                message = f"{websocket.path} is a WebSocket endpoint: connect a WebSocket client"
                body = json.dumps({"error": message}).encode()
                self._reply(426, {"content-type": "application/json", "upgrade": "websocket"}, body)
                return
            self.close_connection = True
            websocket.serve(
                self.path,
                list(self.headers.items()),
                self.connection,
                self.rfile,  # type: ignore[arg-type]
                self.client_address[0],
            )

        def _reply(self, status: int, out_headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for key, value in out_headers.items():
                if key not in {"content-length", "connection"}:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            logging.getLogger("flowdeploy.local.http").info(format, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default backlog of 5 drops a burst of new connections (SYN retries
        # then stall clients for seconds); API Gateway accepts them.
        request_queue_size = 128

    server = Server((host, port), Handler)
    return server


def websocket_urls(gateway: Gateway, base_url: str) -> tuple[str, str]:
    """The WebSocket API on the server at `base_url`: its `ws://` URL, and its stage's
    https URL on AWS turned local, where the functions post (their WEBSOCKET_ENDPOINT);
    ("", "") if the template has none."""
    if gateway.websocket is None:
        return "", ""
    stage = f"{base_url}{gateway.websocket.path}"
    return f"ws{stage.removeprefix('http')}", stage


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flowdeploy.local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "3000")),
        help="port of the API (default: $PORT, else 3000); 0 picks a free one",
    )
    parser.add_argument(
        "--solana-port",
        type=int,
        default=8899,
        help="port of the local Solana RPC (LiteSVM); 0 picks a free one",
    )
    parser.add_argument("--template", type=Path, default=repository_root() / "template.yaml")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, e.g. TriggerQueueEnabled=true",
    )
    parser.add_argument(
        "--record-calls",
        type=Path,
        metavar="DIR",
        help="write each function's AWS calls, as IAM requests, to DIR (the IAM test reads them)",
    )
    return parser.parse_args(argv)


def local_variables(endpoint: str, solana_url: str) -> dict[str, str]:
    """What the local stack adds to every function's environment (documented as such)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        # Flows created locally use the local cluster; on AWS the default stays devnet.
        "DEFAULT_SOLANA_URL": solana_url,
        "DEFAULT_SOLANA_CLUSTER": "localnet",
        # Local flows may call local services; on AWS http_request refuses private addresses.
        "HTTP_ALLOW_PRIVATE": "true",
        # Metrics are CloudWatch EMF lines on stdout: noise on a terminal.
        "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
    }


def start_functions(
    template: Template,
    record_calls: Path | None,
    solana_url: str,
    api_url: str,
    websocket_endpoint: str = "",
) -> tuple[dict[str, Any], Functions]:
    """The template's resources in moto (names for resolving), and its functions, each
    invoked in execution environments of its own with its own environment."""
    if record_calls:
        calls.record_to(record_calls)
    names = provision(template)
    provision_jwt_parameter(template)
    added = local_variables(os.environ["AWS_ENDPOINT_URL"], solana_url)
    replaced = local_replacements(api_url, websocket_endpoint)
    specs = template.functions()
    aliases = canonical_aliases(template, names)
    functions = Functions(
        specs,
        {
            name: function_environment(template, spec, names, added, replaced)
            for name, spec in specs.items()
        },
        record_calls=record_calls,
        resource_aliases=lambda: aliases,
    )
    return names, functions


def busy_port(what: str, host: str, port: int, error: OSError, remedy: str) -> str:
    """What `make dev` says when a port it needs is taken, and how to choose another."""
    return (
        f"cannot listen on {host}:{port} for {what}: {error.strerror or error}.\n"
        f"Another `make dev` (or another program) is using it; {remedy}"
    )


def banner(base_url: str, aws_endpoint: str, solana_url: str, ws_url: str = "") -> str:
    """What `make dev` prints once it serves; the FLOWDEPLOY_ lines are for scripts."""
    return (
        f"flowdeploy local stack\n"
        f"  API            {base_url}\n"
        f"  WebSocket      {ws_url} (live run events)\n"
        f"  docs           {base_url}/docs (Swagger UI), {base_url}/openapi.json\n"
        f"  AWS services   {aws_endpoint} (moto, in memory: DynamoDB, SQS, KMS, SSM,"
        f" Secrets Manager)\n"
        f'  Solana RPC     {solana_url} (LiteSVM, in memory; cluster "localnet")\n'
        f"  access token   make token USER=<user uuid>\n"
        f"  stop           Ctrl-C\n"
        f"FLOWDEPLOY_AWS_ENDPOINT={aws_endpoint}\n"
        f"FLOWDEPLOY_SOLANA_RPC={solana_url}\n"
        f"FLOWDEPLOY_WS_URL={ws_url}\n"
        f"FLOWDEPLOY_URL={base_url}"
    )


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("flowdeploy.local.http").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parameters = dict(p.partition("=")[::2] for p in args.parameter)
    _configure_logging()

    # Both ports first, before anything slow starts: a taken one fails at once. The
    # functions are attached once the API listens: they are told its address (API_URL).
    template = Template(args.template, parameters)
    gateway = Gateway(template)
    try:
        server = make_server(gateway, args.host, args.port)
    except OSError as error:
        remedy = f"choose another with `make dev PORT={args.port + 1}`, or stop what holds it."
        print(busy_port("the API", args.host, args.port, error, remedy), file=sys.stderr)
        return 1

    from moto.server import ThreadedMotoServer

    from flowdeploy.local.solana_rpc import LocalSolana

    solana = LocalSolana(port=args.solana_port)
    try:
        solana.start()
    except OSError as error:
        remedy = "let it pick a free one with `make dev SOLANA_PORT=0`, or stop what holds it."
        port = args.solana_port
        print(busy_port("the local Solana RPC", "127.0.0.1", port, error, remedy), file=sys.stderr)
        server.server_close()
        return 1

    fake_credentials()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{moto_host}:{moto_port}"

    base_url = f"http://{args.host}:{server.server_address[1]}"
    ws_url, ws_endpoint = websocket_urls(gateway, base_url)
    names, functions = start_functions(
        template, args.record_calls, solana.url, base_url, ws_endpoint
    )
    gateway.functions = functions
    workers: list[Any] = [*pollers(template, functions, names), *schedules(template, functions)]
    for worker in workers:
        worker.start()

    print(banner(base_url, os.environ["AWS_ENDPOINT_URL"], solana.url, ws_url), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            worker.stopping.set()
        server.shutdown()
        functions.close()
        moto.stop()
        solana.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
