"""API Gateway's WebSocket API on the local stack: `ws://127.0.0.1:<port>/ws`, on the HTTP port.

An upgrade request on the stage's path becomes a `$connect` event (the connection is refused
unless the function answers 2xx); each message becomes an event of the route its `method`
selects (`$request.body.method`, else `$default`), handled concurrently as AWS does; a
close becomes `$disconnect`. The functions answer through the management API, which this
module serves on the same port (`POST/GET/DELETE /ws/@connections/{id}`, 410 once a
connection is gone), so the handlers run unchanged. Frames are read and written by the
`websockets` library's sans-I/O protocol inside the HTTP server's own connection thread.

Limits as on AWS: 32 KB per frame and 128 KB per message from a client (larger closes
with 1009), 128 KB per posted message (413), 10 idle minutes and 2 hours per connection.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from flowdeploy.local.template import WebSocketApiSpec

log = logging.getLogger("flowdeploy.local.ws")

FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
IDLE_SECONDS = 10 * 60
LIFETIME_SECONDS = 2 * 60 * 60
POLL_SECONDS = 1.0  # how often an idle connection checks its limits
GONE = "GoneException"

Invoke = Callable[[str, dict[str, Any]], Any]


def connection_id() -> str:
    """An id shaped like API Gateway's (16 characters of base64, e.g. L0SM9cOFvHcCIhw=)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def request_time(epoch: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


def websocket_event(
    api: WebSocketApiSpec,
    route_key: str,
    event_type: str,
    connection: str,
    *,
    connected_at: float,
    domain: str,
    source_ip: str = "127.0.0.1",
    user_agent: str | None = None,
    body: str | None = None,
    is_base64: bool = False,
    headers: dict[str, str] | None = None,
    close: tuple[int, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """An event as API Gateway's WebSocket API hands it to a Lambda proxy integration."""
    moment = time.time() if now is None else now
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": request_time(moment),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": int(connected_at * 1000),
        "requestTimeEpoch": int(moment * 1000),
        "identity": {"sourceIp": source_ip, **({"userAgent": user_agent} if user_agent else {})},
        "requestId": uuid.uuid4().hex[:16],
        "domainName": domain,
        "connectionId": connection,
        "apiId": api.api_id,
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": is_base64}
    if event_type == "MESSAGE":
        context["messageId"] = uuid.uuid4().hex[:16]
        event["body"] = body or ""
    else:
        sent = headers or {}
        event["headers"] = sent
        event["multiValueHeaders"] = {k: [v] for k, v in sent.items()}
    if close is not None:
        context["disconnectStatusCode"], context["disconnectReason"] = close
    return event


def select_route(api: WebSocketApiSpec, text: str | None) -> str:
    """`$request.body.method`: the route a message's `method` names, else `$default`."""
    try:
        document = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return "$default"
    key = document.get(api.selection_key) if isinstance(document, dict) else None
    if isinstance(key, (str, int, float)) and not isinstance(key, bool) and str(key) in api.routes:
        return str(key)
    return "$default"


@dataclass
class Connection:
    """One open WebSocket connection: its protocol state and the socket it writes to."""

    id: str
    protocol: Any  # websockets.server.ServerProtocol
    sock: socket.socket
    source_ip: str
    user_agent: str | None
    connected_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    open: bool = True

    def flush(self) -> None:
        """Write what the protocol has to send (the caller holds `lock`)."""
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:  # the protocol wants the TCP connection half-closed
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    def send_text(self, text: bytes) -> bool:
        with self.lock:
            if not self.open:
                return False
            self.protocol.send_text(text)
            self.last_active = time.monotonic()
            try:
                self.flush()
            except OSError:
                self.open = False
                return False
            return True

    def close(self, code: int, reason: str) -> None:
        """Send a close frame and stop reading (the reading thread then sees the end)."""
        with self.lock:
            if not self.open:
                return
            try:
                self.protocol.send_close(code, reason)
                self.flush()
            except Exception:  # already closing, or the socket is gone
                log.debug("closing %s", self.id, exc_info=True)
            self.open = False
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RD)


class WebSocketGateway:
    """The WebSocket API of template.yaml: connections, routes, and its management API."""

    def __init__(self, api: WebSocketApiSpec, invoke: Invoke) -> None:
        self.api = api
        self.invoke = invoke
        self.connections: dict[str, Connection] = {}
        self._lock = threading.Lock()
        # API Gateway invokes the route's function for each message without waiting for the
        # previous one: so do we.
        self._workers = ThreadPoolExecutor(max_workers=32, thread_name_prefix="ws-route")
        self._limits: threading.Thread | None = None

    @property
    def path(self) -> str:
        return f"/{self.api.stage}"

    # -- the client side ---------------------------------------------------------------

    def serve(
        self,
        path: str,
        headers: list[tuple[str, str]],
        sock: socket.socket,
        reader: IO[bytes],
        source_ip: str,
    ) -> None:
        """Run one connection from its upgrade request to its close (blocks the caller's
        thread, as the HTTP server gives each connection one)."""
        from websockets.http11 import Request
        from websockets.server import ServerProtocol

        protocol = ServerProtocol(max_size=MESSAGE_BYTES)
        # The HTTP server has read the request already: hand it to the protocol as it came.
        raw = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        protocol.receive_data((raw + "\r\n").encode("latin-1"))
        (request,) = protocol.events_received()
        assert isinstance(request, Request)
        response = protocol.accept(request)
        lowered = {k.lower(): v for k, v in headers}
        connection = Connection(
            connection_id(), protocol, sock, source_ip, lowered.get("user-agent")
        )
        if response.status_code == 101:
            verdict = self._route(connection, "$connect", "CONNECT", headers=dict(headers))
            status = int((verdict or {}).get("statusCode", 200)) if verdict is not False else 500
            if not 200 <= status < 300:
                response = protocol.reject(status if status >= 400 else 403, "Forbidden\n")
        protocol.send_response(response)
        with connection.lock:
            connection.flush()
        if response.status_code != 101:
            return
        with self._lock:
            self.connections[connection.id] = connection
            if self._limits is None:
                self._limits = threading.Thread(
                    target=self._enforce_limits, daemon=True, name="ws-limits"
                )
                self._limits.start()
        try:
            self._read(connection, reader)
        finally:
            with self._lock:
                self.connections.pop(connection.id, None)
            connection.open = False
            code = protocol.close_rcvd.code if protocol.close_rcvd else 1006
            reason = protocol.close_rcvd.reason if protocol.close_rcvd else ""
            self._workers.submit(
                self._route, connection, "$disconnect", "DISCONNECT", close=(code, reason)
            )

    def _read(self, connection: Connection, reader: IO[bytes]) -> None:
        protocol = connection.protocol
        message = _Message()
        while connection.open:
            try:
                data = reader.read1(65536)  # type: ignore[attr-defined]
            except OSError:
                return
            with connection.lock:
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                frames = protocol.events_received()
                connection.flush()  # pongs and close replies
            for frame in frames:
                if len(frame.data) > FRAME_BYTES:
                    with connection.lock:
                        protocol.fail(1009, "frame is larger than 32 KB")
                        connection.flush()
                    return
                complete = message.add(frame)
                if complete is not None:
                    connection.last_active = time.monotonic()
                    self._workers.submit(self._message, connection, *complete)
            if not data or protocol.close_expected() or not connection.open:
                return

    def _enforce_limits(self) -> None:
        """Close connections idle for 10 minutes or open for 2 hours, as API Gateway does."""
        while True:
            time.sleep(POLL_SECONDS)
            with self._lock:
                open_now = list(self.connections.values())
            for connection in open_now:
                if time.monotonic() - connection.last_active > IDLE_SECONDS:
                    connection.close(1001, "Going away: idle for 10 minutes")
                elif time.time() - connection.connected_at > LIFETIME_SECONDS:
                    connection.close(1001, "Going away: connections last at most 2 hours")

    def _message(self, connection: Connection, data: bytes, text: bool) -> None:
        try:
            body = data.decode() if text else base64.b64encode(data).decode()
        except UnicodeDecodeError:
            connection.close(1007, "invalid UTF-8")
            return
        route = select_route(self.api, body) if text else "$default"
        self._route(connection, route, "MESSAGE", body=body, is_base64=not text)

    def _route(self, connection: Connection, route_key: str, event_type: str, **fields: Any) -> Any:
        function = self.api.routes.get(route_key)
        if function is None:
            return None  # API Gateway accepts a connection with no $connect route
        event = websocket_event(
            self.api,
            route_key,
            event_type,
            connection.id,
            connected_at=connection.connected_at,
            domain="127.0.0.1",
            source_ip=connection.source_ip,
            user_agent=connection.user_agent,
            **fields,
        )
        try:
            return self.invoke(function, event)
        except Exception:
            log.exception("%s (%s) crashed", function, route_key)
            if event_type == "MESSAGE":  # what API Gateway sends when an integration fails
                failure = {"message": "Internal server error", "connectionId": connection.id}
                connection.send_text(json.dumps(failure).encode())
            return False

    # -- the management API ----------------------------------------------------------

    def manage(
        self, method: str, connection: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """`POST` (post_to_connection), `GET` (get_connection), `DELETE` (delete_connection)
        on `/@connections/{connection}`, as API Gateway answers them."""
        if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
            return _error(403, "ForbiddenException", "Missing Authentication Token")
        with self._lock:
            found = self.connections.get(connection)
        if found is None or not found.open:
            return _error(410, GONE, f"connection {connection} is gone")
        if method == "POST":
            return self._post(found, body)
        if method == "DELETE":
            found.close(1000, "")
            return 204, {}, b""
        if method == "GET":
            info = {
                "connectedAt": _iso(found.connected_at),
                "lastActiveAt": _iso(time.time() - (time.monotonic() - found.last_active)),
                "identity": {"sourceIp": found.source_ip, "userAgent": found.user_agent or ""},
            }
            return 200, {"content-type": "application/json"}, json.dumps(info).encode()
        return _error(404, "NotFoundException", f"no {method} on @connections")

    @staticmethod
    def _post(connection: Connection, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if len(body) > MESSAGE_BYTES:
            return _error(413, "PayloadTooLargeException", "message is larger than 128 KB")
        if not connection.send_text(body):
            return _error(410, GONE, f"connection {connection.id} is gone")
        return 200, {"content-type": "application/json"}, b""


class _Message:
    """Frames of one message, until its last: then (the data, whether it is text)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.text = True

    def add(self, frame: Any) -> tuple[bytes, bool] | None:
        name = frame.opcode.name
        if name in {"TEXT", "BINARY"}:
            self.parts, self.text = [frame.data], name == "TEXT"
        elif name == "CONT":
            self.parts.append(frame.data)
        else:  # control frames: the protocol answered pings and closes itself
            return None
        if not frame.fin:
            return None
        data, self.parts = b"".join(self.parts), []
        return data, self.text


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", "x-amzn-errortype": kind}
    return status, headers, json.dumps({"message": message}).encode()
