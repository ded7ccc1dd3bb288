"""A small blocking HTTP client for http_request, refusing non-public addresses.

The address check happens on the socket actually connected, after DNS, for every
connection including redirects, so DNS rebinding cannot route around it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


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


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


def _guarded_connect(allow_private: bool) -> Any:
    def create_connection(
        address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        refused: list[str] = []
        last_error: OSError | None = None
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            if not allow_private and not is_public(str(sockaddr[0])):
                refused.append(str(sockaddr[0]))
                continue
            sock = socket.socket(family, kind, proto)
            try:
                if timeout is not None:
                    sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as error:
                sock.close()
                last_error = error
                continue
            return sock
        if refused and last_error is None:
            raise RequestFailed(f"refused to connect to non-public address {refused[0]}")
        raise last_error or OSError(f"cannot resolve {host}")

    return create_connection


def _connection_classes(allow_private: bool) -> tuple[Any, Any]:
    connect = _guarded_connect(allow_private)

    # http.client sets `_create_connection` per instance, so replace it after __init__.
    class Plain(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class Secure(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    return Plain, Secure


def send(request: Request, timeout: float, allow_private: bool) -> Response:
    """Send `request`; RequestFailed when there is no HTTP response at all."""
    if not request.url.lower().startswith(("http://", "https://")):
        raise RequestFailed("url must start with http:// or https://")
    plain, secure = _connection_classes(allow_private)

    class PlainHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(plain, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(secure, req)

    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), PlainHandler(), SecureHandler()
    )
    try:
        outgoing = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            request.url, data=request.body, headers=request.headers, method=request.method
        )
    except ValueError as error:
        raise RequestFailed(f"invalid url: {error}") from None
    try:
        with opener.open(outgoing, timeout=timeout) as reply:
            return _read(reply, reply.status, request.max_bytes)
    except urllib.error.HTTPError as reply:
        with reply:
            return _read(reply, reply.code, request.max_bytes)
    except urllib.error.URLError as error:
        raise RequestFailed(str(error.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise RequestFailed(f"{type(error).__name__}: {error}") from None


def _read(reply: Any, status: int, max_bytes: int) -> Response:
    body = reply.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise RequestFailed(f"the response body is over {max_bytes} bytes")
    headers: dict[str, str] = {}
    for name, value in reply.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Response(status, headers, headers.get("content-type", ""), body)
