"""Upstream's flow run events (flow-lib's `flow_run_events::Event`), as the WebSocket sends them.

An event is `{"event": "<Kind>", "data": {...}}`; every kind's data carries `flow_run_id`
and `time` (RFC 3339, UTC), node kinds also `node_id` and `times` (which run of the node:
0, or its element's number inside a `foreach` loop). Each event is encoded once, when it
happens, into `Event.body`; a subscriber's frame adds its `stream_id` and the event's
per-run `seq` in front.

Sizes: API Gateway carries at most 32 KB in a WebSocket frame and 128 KB in a message.
Node events stay within one frame, FlowFinish within one message (which any run's outputs
fit: a run keeps at most 128,000 bytes of them). A value that would not fit is replaced by
an explicit `VALUE TOO LARGE` marker and named in the event's `clipped` list; the whole value
stays in the run's node records (`GET /flow_run/{id}/nodes`) or on the run.

To add a kind: name it in `KINDS` and publish its data with `RunStream.publish(kind, data)`
(a command: `ctx.publish_event(kind, data)`); `encode` gives it the common fields and the
size limit. `ApiInput` is published when an `api_input` node starts waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
# What a frame adds in front of the body: {"stream_id":<u64>,"seq":<n>,
ENVELOPE_BYTES = 64
NODE_EVENT_BYTES = FRAME_BYTES - ENVELOPE_BYTES
FINISH_EVENT_BYTES = MESSAGE_BYTES - ENVELOPE_BYTES

FLOW_START, FLOW_ERROR, FLOW_LOG, FLOW_FINISH = "FlowStart", "FlowError", "FlowLog", "FlowFinish"
NODE_START, NODE_OUTPUT, NODE_ERROR, NODE_LOG, NODE_FINISH = (
    "NodeStart",
    "NodeOutput",
    "NodeError",
    "NodeLog",
    "NodeFinish",
)
SIGNATURE_REQUEST, API_INPUT = "SignatureRequest", "ApiInput"
KINDS = (
    FLOW_START,
    FLOW_ERROR,
    FLOW_LOG,
    FLOW_FINISH,
    NODE_START,
    NODE_OUTPUT,
    NODE_ERROR,
    NODE_LOG,
    NODE_FINISH,
    SIGNATURE_REQUEST,
    API_INPUT,
)
# Our log levels → upstream's LogLevel names.
LEVELS = {"trace": "Trace", "debug": "Debug", "info": "Info", "warn": "Warn", "error": "Error"}
TOO_LARGE = "VALUE TOO LARGE"
_TEXT_FIELDS = ("content", "error")


class Event(NamedTuple):
    """One event of a run: its place in the run's order and its encoded `{"event", "data"}`."""

    seq: int
    body: str

    @property
    def kind(self) -> str:
        return self.body[10 : self.body.index('"', 10)]  # {"event":"<Kind>",...

    def frame(self, stream_id: int) -> str:
        """The text a subscriber of stream `stream_id` receives."""
        return f'{{"stream_id":{stream_id},"seq":{self.seq},{self.body[1:]}'


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def now() -> str:
    """The current time as chrono serializes a `DateTime<Utc>`: 2025-02-08T13:07:59.355280Z."""
    moment = time.time()
    second = int(moment)
    if second != _second[0]:  # formatting the date and time once a second is enough
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{int((moment - second) * 1e6):06d}Z"


def encode(kind: str, data: Mapping[str, Any], run_id: str, *, where: str = "") -> str:
    """The body of an event of `kind`: `flow_run_id` and `time` added (upstream's
    `inject_run_id`), values too large for the event clipped; `where` says where the whole
    value can be read."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    document = {"time": now(), **data, "flow_run_id": run_id}
    limit = FINISH_EVENT_BYTES if kind == FLOW_FINISH else NODE_EVENT_BYTES
    return _fitted({"event": kind, "data": document}, limit, where)


_encoder = json.JSONEncoder(separators=(",", ":"))
_dumps = _encoder.encode


def _fitted(event: dict[str, Any], limit: int, where: str) -> str:
    text = _dumps(event)
    if len(text) <= limit:  # ASCII JSON: characters are bytes
        return text
    data = event["data"]
    for name in ("input", "output"):
        value = data.get(name)
        if isinstance(value, dict) and isinstance(value.get("M"), dict):
            data["clipped"] = _clip_map(value["M"], len(text) - limit, where)
            text = _dumps(event)
            if len(text) > limit:  # too many small values: drop them all
                data["clipped"] = sorted(value["M"])
                value["M"] = {}
                data[name] = {"S": f"{TOO_LARGE}: {where}".rstrip(": ")}
                text = _dumps(event)
    for name in _TEXT_FIELDS:
        if len(text) > limit and isinstance(data.get(name), str):
            full = data[name]
            keep = max(0, len(full) - (len(text) - limit) - 64)
            while len(text) > limit and keep >= 0:
                data[name] = f"{full[:keep]}... ({len(full)} characters)"
                text = _dumps(event)
                keep -= max(64, keep // 8)
    return text


def _clip_map(values: dict[str, Any], excess: int, where: str) -> list[str]:
    """Replace the largest values by markers until `excess` bytes are gone; their names."""
    sizes = sorted(((len(_dumps(v)), name) for name, v in values.items()), reverse=True)
    clipped = []
    for size, name in sizes:
        marker = {"S": f"{TOO_LARGE}: {size} bytes of JSON; {where}".rstrip("; ")}
        values[name] = marker
        clipped.append(name)
        excess -= size - len(_dumps(marker)) - len(_dumps(name)) - 3
        if excess + 16 < 0:
            break
    return sorted(clipped)


# -- The kinds the engine and the run produce -----------------------------------------


def flow_start() -> tuple[str, dict[str, Any]]:
    return FLOW_START, {}


def flow_error(error: str) -> tuple[str, dict[str, Any]]:
    return FLOW_ERROR, {"error": error}


def flow_finish(outputs: Mapping[str, Any], not_run: Iterable[str]) -> tuple[str, dict[str, Any]]:
    """`outputs`: the run's outputs as IValue JSON (name → document); `output` is their map."""
    return FLOW_FINISH, {"not_run": list(not_run), "output": {"M": dict(outputs)}}


def node_start(node_id: str, times: int, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return NODE_START, {"node_id": node_id, "times": times, "input": {"M": dict(inputs)}}


def node_output(node_id: str, times: int, outputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return NODE_OUTPUT, {"node_id": node_id, "times": times, "output": {"M": dict(outputs)}}


def node_error(node_id: str, times: int, error: str) -> tuple[str, dict[str, Any]]:
    return NODE_ERROR, {"node_id": node_id, "times": times, "error": error}


def node_finish(node_id: str, times: int) -> tuple[str, dict[str, Any]]:
    return NODE_FINISH, {"node_id": node_id, "times": times}


def log(
    level: str, content: str, node_id: str | None, times: int = 0
) -> tuple[str, dict[str, Any]]:
    """A node's log line is a NodeLog, the run's own a FlowLog."""
    data = {"level": LEVELS.get(level.lower(), "Info"), "module": None, "content": content}
    if node_id is None:
        return FLOW_LOG, data
    return NODE_LOG, {"node_id": node_id, "times": times, **data}
