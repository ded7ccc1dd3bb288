"""What each WebSocket route does: `$connect`, `$disconnect`, and the requests of upstream's
protocol (`Authenticate`, `SubscribeFlowRunEvents`, `SubscribeSignatureRequests`; anything
else reaches `$default` and gets an `Err`).

A connection sees only what its credentials allow: the runs of the users it authenticated
as (API key or access token) and the runs whose `fr-` tokens it presented. A run it may not
see gets the same `Err` as a run that does not exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flowdeploy import apikeys
from flowdeploy.auth import (
    API_KEY_PREFIX,
    RUN_TOKEN_PREFIX,
    hash_api_key,
    run_id_of_token,
    verify_access_token,
)
from flowdeploy.errors import ApiError, BadRequest, NotFound, Unauthorized
from flowdeploy.ids import parse_uuid
from flowdeploy.live import protocol
from flowdeploy.live.events import FLOW_FINISH, Event
from flowdeploy.store import connections, run_records
from flowdeploy.store import runs as run_store
from flowdeploy.store.models import ConnectionItem, FlowRunItem

logger = logging.getLogger(__name__)

# API Gateway closes a connection after 2 hours (and after 10 idle minutes); its items are
# kept a little longer, for a `$disconnect` that never came.
CONNECTION_SECONDS = 2 * 3600
KEEP_SECONDS = CONNECTION_SECONDS + 600
# Each subscription multiplies what a run posts: one connection holds at most this many.
MAX_SUBSCRIPTIONS = 100

Send = Callable[[str], bool]
"""Sends one message to the connection; False if the connection is gone."""


def connect(connection_id: str, connected_at: float) -> None:
    connections.open_connection(connection_id, connected_at, _remove_at(connected_at))


def disconnect(connection_id: str) -> None:
    connections.forget(connection_id)


def answer(
    text: str | None,
    connection_id: str,
    connected_at: float,
    send: Send,
    close: Callable[[], None],
    deadline: float,
) -> None:
    """Reply to one message, and for a finished run replay its events (until `deadline`,
    a `time.monotonic()`; past it the connection is closed rather than cut short silently)."""
    try:
        request = protocol.parse(text)
    except protocol.Malformed as malformed:
        send(malformed.reply)
        return
    session = _Session(connection_id, _remove_at(connected_at), send, close, deadline)
    try:
        if request.method == protocol.AUTHENTICATE:
            assert isinstance(request.params, protocol.AuthenticateParams)
            send(protocol.ok(request.id, session.authenticate(request.params.token)))
        elif request.method == protocol.SUBSCRIBE_FLOW_RUN_EVENTS:
            assert isinstance(request.params, protocol.SubscribeFlowRunEventsParams)
            session.subscribe_run(request.id, request.params)
        else:
            send(protocol.ok(request.id, {"stream_id": session.subscribe_signatures()}))
    except ApiError as refused:
        send(protocol.err(request.id, refused.message))
    except Exception:
        logger.exception("%s failed", request.method)
        send(protocol.err(request.id, "internal error; please retry"))


def _below_limit(connection: ConnectionItem) -> None:
    if len(connection.subscriptions or ()) >= MAX_SUBSCRIPTIONS:
        raise BadRequest(
            f"this connection has {MAX_SUBSCRIPTIONS} subscriptions, the most it may have: "
            "open another connection"
        )


def _remove_at(connected_at: float) -> int:
    return int(connected_at) + KEEP_SECONDS


class _Session:
    """One request on one connection."""

    def __init__(
        self,
        connection_id: str,
        remove_at: int,
        send: Send,
        close: Callable[[], None],
        deadline: float,
    ) -> None:
        self.connection_id = connection_id
        self.remove_at = remove_at
        self.send = send
        self.close = close
        self.deadline = deadline

    def authenticate(self, token: str) -> dict[str, Any]:
        """Upstream's identity: `user_id` for an API key or access token, `flow_run_id` for a
        run token (`pubkey`, the user's wallet in upstream's accounts, is not known here)."""
        user_id, run_id = credential(token)
        connections.prove(self.connection_id, self.remove_at, user_id=user_id, run_id=run_id)
        return {"user_id": user_id, "pubkey": None, "flow_run_id": run_id}

    def subscribe_run(self, request_id: int, params: protocol.SubscribeFlowRunEventsParams) -> None:
        user_id = run_token = None
        if params.token is not None:
            user_id, run_token = credential(params.token)
        connection = connections.prove(
            self.connection_id, self.remove_at, user_id=user_id, run_id=run_token, new_stream=True
        )
        run = self._readable(connection, params.flow_run_id)
        _below_limit(connection)
        stream_id = int(connection.streams)
        self.send(protocol.ok(request_id, {"stream_id": stream_id}))
        if run.status not in run_store.FINAL:
            try:
                if connections.subscribe_run(connection, stream_id, run.id):
                    return  # the run's worker sends every event, from the first
            except Exception:
                logger.exception("could not subscribe %s to run %s", self.connection_id, run.id)
                self.close()
                return
            run = run_store.get(run.id) or run  # it has just become final
        self._replay(run, stream_id)

    def subscribe_signatures(self) -> int:
        connection = connections.prove(self.connection_id, self.remove_at, new_stream=True)
        users = connection.user_ids or set()
        if not users:
            raise Unauthorized(
                "unauthorized: Authenticate with an API key or an access token first"
            )
        _below_limit(connection)
        stream_id = int(connection.streams)
        connections.subscribe_signatures(connection, stream_id, users)
        return stream_id

    def _readable(self, connection: ConnectionItem, flow_run_id: str) -> FlowRunItem:
        users, runs = connection.user_ids or set(), connection.run_ids or set()
        if not users and not runs:
            raise Unauthorized(
                "unauthorized: Authenticate first, or send the run's token with the subscription"
            )
        run_id = parse_uuid(flow_run_id)
        run = run_store.get(run_id) if run_id else None
        if run is None or not (run.user_id in users or run.id in runs):
            raise NotFound(f"flow run not found: {flow_run_id}")
        return run

    def _replay(self, run: FlowRunItem, stream_id: int) -> None:
        """A finished run: every event it wrote, then (for a run that ended without running,
        or before events existed) its outcome as FlowError and FlowFinish."""
        from flowdeploy.live.run_stream import RunStream

        written = 0
        for event in run_records.iter_events(run.id):  # read a page at a time
            if not self._replayed(run, event, stream_id):
                return
            written = event.seq + 1
        stream = RunStream(run.id, run.user_id)
        stream.continue_after(written)
        stream.finish(run.status, run.error, run.outputs or {}, [])
        for event in stream.kept:
            if not self._replayed(run, event, stream_id):
                return

    def _replayed(self, run: FlowRunItem, event: Event, stream_id: int) -> bool:
        """Send one replayed event; False once the replay is over (finished, the connection
        gone, or out of time)."""
        if time.monotonic() > self.deadline:
            logger.warning("replay of run %s did not finish in time; closing", run.id)
            self.close()
            return False
        return self.send(event.frame(stream_id)) and event.kind != FLOW_FINISH


def credential(token: str) -> tuple[str | None, str | None]:
    """(user id, None) for an API key or access token, (None, run id) for a run token."""
    token = token.strip()
    if token[:7].lower() == "bearer ":
        raise Unauthorized('send the token alone, without "Bearer "')
    if token.startswith(RUN_TOKEN_PREFIX):
        run_id = run_id_of_token(token)
        if run_id is None:
            raise Unauthorized("invalid flow run token")
        return None, run_id
    if token.count(".") == 2:
        return verify_access_token(token), None
    if token.startswith(API_KEY_PREFIX):
        user_id = apikeys.owner_of(hash_api_key(token))
        if user_id is None:
            raise Unauthorized("invalid API key")
        return user_id, None
    raise Unauthorized(
        "invalid token: expected an API key (b3-…), an access token (JWT) "
        "or a flow run token (fr-…)"
    )
