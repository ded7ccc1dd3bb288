"""Upstream's WebSocket protocol as client-next's `RpcSocket` speaks it, every message checked.

Requests get ids 1, 2, …; a message with a numeric `id` is the reply to that request, one
with a numeric `stream_id` an event of that stream (kept until the stream is asked for, as
both clients keep events that arrive before their subscription's reply). Each reply and
event is checked against the zod schemas of `@space-operator/contracts/src/client.ts`
(`wsResponseSchema`, `webSocketIdentitySchema`, `wsStreamStartSchema` (strict),
`flowRunWireEventSchemas`, `signatureRequestsEventSchema`), ported below.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import websockets

from tests.integration.space_operator_clients import ContractError, ivalue, signature_request

LOG_LEVELS = {"Trace", "Debug", "Info", "Warn", "Error"}


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _time(value: Any) -> bool:
    return _is_str(value) or _is_number(value)


def _optional_str(value: Any) -> bool:
    return value is None or _is_str(value)


def _ivalue(value: Any) -> bool:
    ivalue(value, "data")
    return True


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(_is_str(v) for v in value)


RUN = {"flow_run_id": _is_str, "time": _time}
NODE = {**RUN, "node_id": _is_str, "times": _is_number}
LOG = {"level": lambda v: v in LOG_LEVELS, "module": _optional_str, "content": _is_str}
EVENT_DATA: dict[str, dict[str, Any]] = {
    "FlowStart": RUN,
    "FlowError": {**RUN, "error": _is_str},
    "FlowFinish": {**RUN, "not_run": _strings, "output": _ivalue},
    "FlowLog": {**RUN, **LOG},
    "NodeStart": {**NODE, "input": _ivalue},
    "NodeOutput": {**NODE, "output": _ivalue},
    "NodeError": {**NODE, "error": _is_str},
    "NodeLog": {**NODE, **LOG},
    "NodeFinish": NODE,
    "ApiInput": {**RUN, "url": _is_str},
}


def check_event(message: dict[str, Any], signatures_only: bool = False) -> None:
    """`flowRunWireEventSchemas[event]` (or `signatureRequestsEventSchema`), passthrough."""
    if not _is_number(message.get("stream_id")):
        raise ContractError(f"stream_id: {message!r}")
    kind, data = message.get("event"), message.get("data")
    if signatures_only and kind != "SignatureRequest":
        raise ContractError(f"a signature request stream sent {kind!r}")
    if kind == "SignatureRequest":
        signature_request(data)
        return
    fields = EVENT_DATA.get(str(kind))
    if fields is None or not isinstance(data, dict):
        raise ContractError(f"not a flow run event: {message!r}")
    for name, check in fields.items():
        if not check(data.get(name)):
            raise ContractError(f"{kind}.{name}: {data.get(name)!r}")


def check_reply(message: dict[str, Any]) -> None:
    """`wsResponseSchema`: a numeric id, `Ok` or a string `Err`."""
    if not _is_number(message.get("id")) or ("Ok" in message) == ("Err" in message):
        raise ContractError(f"not a reply: {message!r}")
    if "Err" in message and not _is_str(message["Err"]):
        raise ContractError(f"Err is not a string: {message!r}")


def check_identity(ok: Any) -> None:
    """`webSocketIdentitySchema`: user_id, pubkey, flow_run_id each a string or null."""
    if not isinstance(ok, dict) or not all(
        _optional_str(ok.get(k)) for k in ("user_id", "pubkey", "flow_run_id")
    ):
        raise ContractError(f"not an identity: {ok!r}")


def check_stream_start(ok: Any) -> None:
    """`wsStreamStartSchema`: exactly `{stream_id: number}`."""
    if not isinstance(ok, dict) or set(ok) != {"stream_id"} or not _is_number(ok["stream_id"]):
        raise ContractError(f"not a stream start: {ok!r}")


_CLOSED: dict[str, Any] = {}  # put on every stream when the connection closes


class WsError(Exception):
    """An `Err` reply."""


class WsSession:
    """One connection; `async with WsSession(url) as ws:`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.next_id = 0
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.streams: dict[int, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.signature_streams: set[int] = set()
        self.socket: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

    async def __aenter__(self) -> WsSession:
        self.socket = await websockets.connect(self.url, compression=None, max_size=2**20)
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.socket.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                message = json.loads(text)
                if _is_number(message.get("id")):
                    check_reply(message)
                    self.replies.pop(message["id"]).set_result(message)
                elif _is_number(message.get("stream_id")):
                    stream_id = message["stream_id"]
                    check_event(message, signatures_only=stream_id in self.signature_streams)
                    self.streams[stream_id].put_nowait(message)
                else:
                    raise ContractError(f"neither a reply nor an event: {message!r}")
        except websockets.ConnectionClosed as closed:
            # A stream waited on now ends at once, saying why, rather than at its timeout.
            self.failure = ConnectionError(f"the server closed the connection: {closed}")
            for queue in self.streams.values():
                queue.put_nowait(_CLOSED)
        except BaseException as error:
            self.failure = error
            raise

    async def send_raw(self, text: str) -> None:
        await self.socket.send(text)

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        reply = asyncio.get_running_loop().create_future()
        self.replies[self.next_id] = reply
        await self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return await asyncio.wait_for(reply, 20)

    async def ok(self, method: str, params: dict[str, Any]) -> Any:
        reply = await self.request(method, params)
        if "Err" in reply:
            raise WsError(reply["Err"])
        return reply["Ok"]

    async def authenticate(self, token: str) -> dict[str, Any]:
        identity = await self.ok("Authenticate", {"token": token})
        check_identity(identity)
        return dict(identity)

    async def subscribe_run(self, run_id: str, token: str | None = None) -> int:
        params = {"flow_run_id": run_id, **({"token": token} if token else {})}
        started = await self.ok("SubscribeFlowRunEvents", params)
        check_stream_start(started)
        return int(started["stream_id"])

    async def subscribe_signatures(self) -> int:
        started = await self.ok("SubscribeSignatureRequests", {})
        check_stream_start(started)
        self.signature_streams.add(int(started["stream_id"]))
        return int(started["stream_id"])

    async def next_event(self, stream_id: int, timeout: float = 20) -> dict[str, Any]:
        queue = self.streams[stream_id]
        if self.failure is not None and queue.empty():
            raise self.failure
        message = await asyncio.wait_for(queue.get(), timeout)
        if message is _CLOSED:
            assert self.failure is not None
            raise self.failure
        return message

    async def until_finish(self, stream_id: int, timeout: float = 30) -> list[dict[str, Any]]:
        """A run stream's events up to FlowFinish (what client-next's waitForFinish reads)."""
        received = []
        async with asyncio.timeout(timeout):
            while not received or received[-1]["event"] != "FlowFinish":
                received.append(await self.next_event(stream_id, timeout))
        return received
