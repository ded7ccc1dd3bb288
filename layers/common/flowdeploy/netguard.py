"""Outbound connections that refuse non-public addresses.

The address check happens on the socket actually connected, after DNS, for every
connection (redirects included), so DNS rebinding cannot route around it. Used by
`http_request` and the Solana RPC client.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from typing import Any

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(OSError):
    """The host resolved only to addresses this process may not reach."""


def is_public(address: str) -> bool:
    """Whether `address` is a public internet address, looking through IPv6 forms that embed
    an IPv4 address (mapped, compatible, 6to4, NAT64)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in _NAT64 or ip in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return ip.is_global


def guarded_connect(allow_private: bool) -> Any:
    """A `socket.create_connection` replacement that raises AddressRefused for non-public
    addresses unless `allow_private`."""

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
            raise AddressRefused(f"refused to connect to non-public address {refused[0]}")
        raise last_error or OSError(f"cannot resolve {host}")

    return create_connection


def connection_classes(
    allow_private: bool,
) -> tuple[type[http.client.HTTPConnection], type[http.client.HTTPSConnection]]:
    """http.client connection classes (plain, TLS) whose connections are guarded."""
    connect = guarded_connect(allow_private)

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
