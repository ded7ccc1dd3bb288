"""Sending to WebSocket connections: API Gateway's management API (`post_to_connection`).

The same code runs on AWS and on `make dev`, whose server answers the management API on
the local WebSocket stage (`WEBSOCKET_ENDPOINT`). A 410 means the connection is gone: the
caller forgets it at once. Throttling (429) and 5xx are retried by botocore.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from botocore.exceptions import ClientError

from flowdeploy.settings import ConfigurationError, settings

logger = logging.getLogger(__name__)

GONE = "GoneException"
# Concurrent posts one process may make (RunFunction delivers to many connections at once).
MAX_CONNECTIONS = 64


class Outbox:
    """Posts texts to connections of one WebSocket API stage."""

    def __init__(self, endpoint: str) -> None:
        import boto3
        from botocore.config import Config

        if not endpoint:
            raise ConfigurationError("set WEBSOCKET_ENDPOINT (the WebSocket API's stage URL)")
        self._client: Any = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint,
            config=Config(
                max_pool_connections=MAX_CONNECTIONS,
                connect_timeout=2,
                read_timeout=5,
                retries={"mode": "standard", "max_attempts": 4},
            ),
        )

    def post(self, connection_id: str, text: str) -> bool:
        """Send `text` as one message; False if the connection is gone (410)."""
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=text.encode())
        except ClientError as error:
            if _code(error) == GONE:
                return False
            raise
        return True

    def close(self, connection_id: str) -> None:
        """Close a connection (a client that could not be sent what it subscribed to)."""
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if _code(error) != GONE:
                logger.warning("could not close connection %s: %s", connection_id, error)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


_outbox: Outbox | None = None
_lock = threading.Lock()


def outbox() -> Outbox:
    """The process's Outbox (one client, made on first use: most runs never post)."""
    global _outbox  # noqa: PLW0603
    with _lock:
        if _outbox is None:
            _outbox = Outbox(settings().websocket_endpoint)
        return _outbox
