"""A small blocking HTTP client for http_request, refusing non-public addresses
(`flowdeploy.netguard` checks every connection, redirects included)."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flowdeploy.netguard import connection_classes, is_public

__all__ = ["Request", "RequestFailed", "Response", "is_public", "send"]

READ_CHUNK = 64 * 1024
# Requests block a thread each; their own pool keeps them from starving the store calls that
# share asyncio's default executor (claim, record writes, the final status).
executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="http_request")


class RequestFailed(Exception):
    """The request got no HTTP response: bad URL, refused address, network error."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    content_type: str
    body: bytes


# Credentials a redirect must not carry to another origin.
_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-authorization")


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            for name in _CREDENTIAL_HEADERS:
                new.remove_header(name)
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def send(request: Request, timeout: float, allow_private: bool) -> Response:
    """Send `request`, all of it within `timeout` seconds; RequestFailed when there is no
    complete HTTP response in time."""
    if not request.url.lower().startswith(("http://", "https://")):
        raise RequestFailed("url must start with http:// or https://")
    deadline = time.monotonic() + timeout
    plain, secure = connection_classes(allow_private)

    class PlainHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(plain, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(secure, req)

    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), PlainHandler(), SecureHandler(), _Redirects()
    )
    try:
        outgoing = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            request.url, data=request.body, headers=request.headers, method=request.method
        )
    except ValueError as error:
        raise RequestFailed(f"invalid url: {error}") from None
    try:
        with opener.open(outgoing, timeout=timeout) as reply:
            return _read(reply, reply.status, request.max_bytes, deadline)
    except urllib.error.HTTPError as reply:
        with reply:
            return _read(reply, reply.code, request.max_bytes, deadline)
    except urllib.error.URLError as error:
        raise RequestFailed(str(error.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise RequestFailed(f"{type(error).__name__}: {error}") from None


def _read(reply: Any, status: int, max_bytes: int, deadline: float) -> Response:
    # Socket timeouts bound each read, not the whole body: a server trickling bytes must
    # not hold this thread past the node's deadline.
    chunks: list[bytes] = []
    size = 0
    while chunk := reply.read1(READ_CHUNK) if hasattr(reply, "read1") else reply.read(READ_CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise RequestFailed(f"the response body is over {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise RequestFailed("timed out reading the response body")
    body = b"".join(chunks)
    headers: dict[str, str] = {}
    for name, value in reply.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Response(status, headers, headers.get("content-type", ""), body)
