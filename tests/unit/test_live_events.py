"""Live run events: upstream's event shapes and size limits, the request protocol, what each
WebSocket route costs, and a run delivering to its subscribers (moto's management API)."""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from typing import Any

import pytest

from flowdeploy.live import events, protocol
from flowdeploy.live.events import FINISH_EVENT_BYTES, NODE_EVENT_BYTES, Event
from flowdeploy.local.calls import counting
from flowdeploy.store import queue, run_records
from tests.conftest import new_user, token_for
from tests.unit.api import Api, posted, sqs_event
from tests.unit.engine.flows import Publishing, edge, node

RUN = "01a232b8-3e89-7676-9a00-c81ccbf0c592"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def decoded(body: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(body)
    return document


# -- events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "fields"),
    [
        (events.flow_start(), {"time", "flow_run_id"}),
        (events.flow_error("boom"), {"time", "flow_run_id", "error"}),
        (
            events.flow_finish({"a": {"S": "x"}}, ["n"]),
            {"time", "flow_run_id", "not_run", "output"},
        ),
        (events.node_start("n", 0, {}), {"time", "flow_run_id", "node_id", "times", "input"}),
        (events.node_output("n", 0, {}), {"time", "flow_run_id", "node_id", "times", "output"}),
        (events.node_error("n", 0, "e"), {"time", "flow_run_id", "node_id", "times", "error"}),
        (events.node_finish("n", 0), {"time", "flow_run_id", "node_id", "times"}),
        (
            events.log("warn", "hi", "n"),
            {"time", "flow_run_id", "node_id", "times", "level", "module", "content"},
        ),
        (events.log("info", "hi", None), {"time", "flow_run_id", "level", "module", "content"}),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else "",
)
def test_each_kind_has_upstreams_fields(
    built: tuple[str, dict[str, Any]], fields: set[str]
) -> None:
    kind, data = built
    body = decoded(events.encode(kind, data, RUN))
    assert body["event"] == kind
    assert set(body["data"]) == fields
    assert body["data"]["flow_run_id"] == RUN
    assert RFC3339.match(body["data"]["time"])


def test_levels_are_upstreams_names_and_a_node_log_is_a_node_event() -> None:
    assert events.log("warn", "x", "n", 3) == (
        "NodeLog",
        {"node_id": "n", "times": 3, "level": "Warn", "module": None, "content": "x"},
    )
    assert events.log("error", "x", None)[0] == "FlowLog"


def test_a_signature_request_keeps_its_own_time() -> None:
    body = decoded(events.encode("SignatureRequest", {"id": 7, "time": 1739020079355}, RUN))
    assert body["data"]["time"] == 1739020079355


def test_a_command_can_publish_a_kind_no_record_holds() -> None:
    from flowdeploy.live.run_stream import RunStream

    stream = RunStream(RUN, "owner")
    stream.publish("ApiInput", {"url": "https://example.com/i/1"})
    [event] = stream.kept
    assert (event.seq, event.kind) == (0, "ApiInput")
    assert decoded(event.body)["data"]["url"] == "https://example.com/i/1"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        events.encode("Surprise", {}, RUN)


def test_a_frame_puts_the_stream_and_the_seq_in_front() -> None:
    event = Event(41, events.encode(*events.node_finish("n", 0), RUN))
    frame = decoded(event.frame(3))
    assert (frame["stream_id"], frame["seq"], frame["event"], event.kind) == (
        3,
        41,
        "NodeFinish",
        "NodeFinish",
    )


def test_a_value_too_large_for_a_frame_is_clipped_with_a_marker_and_named() -> None:
    outputs = {"big": {"S": "x" * 40_000}, "small": {"S": "kept"}}
    body = events.encode(*events.node_output("n", 0, outputs), RUN, where="see /nodes")
    assert len(body) <= NODE_EVENT_BYTES
    data = decoded(body)["data"]
    assert data["clipped"] == ["big"]
    assert data["output"]["M"]["small"] == {"S": "kept"}
    assert data["output"]["M"]["big"] == {"S": "VALUE TOO LARGE: 40008 bytes of JSON; see /nodes"}


def test_many_small_values_too_large_together_are_all_clipped() -> None:
    inputs = {f"p{i}": {"S": "y" * 30} for i in range(2_000)}
    body = events.encode(*events.node_start("n", 0, inputs), RUN, where="see /nodes")
    assert len(body) <= NODE_EVENT_BYTES
    data = decoded(body)["data"]
    assert data["input"] == {"S": "VALUE TOO LARGE: see /nodes"}
    assert len(data["clipped"]) == 2_000


def test_flow_finish_may_fill_a_message_but_no_more() -> None:
    fits = {"a": {"S": "z" * 120_000}}
    assert "clipped" not in decoded(events.encode(*events.flow_finish(fits, []), RUN))["data"]
    huge = {"a": {"S": "z" * 140_000}}
    body = events.encode(*events.flow_finish(huge, []), RUN)
    assert len(body) <= FINISH_EVENT_BYTES
    assert decoded(body)["data"]["clipped"] == ["a"]


def test_a_long_log_line_of_escaped_characters_is_cut_to_fit() -> None:
    body = events.encode(*events.log("info", "€" * 8_192, "n"), RUN)
    assert len(body) <= NODE_EVENT_BYTES
    assert decoded(body)["data"]["content"].endswith("... (8192 characters)")


# -- requests and replies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (
            "not json",
            {"id": -1, "Err": "the message is not JSON: Expecting value: line 1 column 1 (char 0)"},
        ),
        ('{"method": "Authenticate"}', {"id": -1, "Err": "invalid request: id: Field required"}),
        (
            '{"id": "1", "method": "Authenticate"}',
            {"id": -1, "Err": "invalid request: id: Input should be a valid integer"},
        ),
        (
            '{"id": 5, "method": "Nope"}',
            {
                "id": 5,
                "Err": "unknown method 'Nope': expected one of Authenticate, "
                "SubscribeFlowRunEvents, SubscribeSignatureRequests",
            },
        ),
        (
            '{"id": 6, "method": "Authenticate", "params": {}}',
            {"id": 6, "Err": "invalid params: token: Field required"},
        ),
        (
            '{"id": 7, "method": "SubscribeFlowRunEvents", "params": []}',
            {"id": 7, "Err": "invalid request: params: Input should be a valid dictionary"},
        ),
    ],
)
def test_a_message_that_is_not_a_request_gets_upstreams_err(
    text: str, reply: dict[str, Any]
) -> None:
    with pytest.raises(protocol.Malformed) as malformed:
        protocol.parse(text)
    assert json.loads(malformed.value.reply) == reply


def test_requests_parse_with_upstreams_params() -> None:
    params = {"flow_run_id": "r", "token": "fr-x"}
    request = protocol.parse(
        json.dumps({"id": 9, "method": "SubscribeFlowRunEvents", "params": params})
    )
    assert (request.id, request.method) == (9, "SubscribeFlowRunEvents")
    assert request.params.model_dump() == {"flow_run_id": "r", "token": "fr-x"}
    assert (
        protocol.parse('{"id": 1, "method": "SubscribeSignatureRequests"}').params.model_dump()
        == {}
    )
    assert protocol.ok(1, {"stream_id": 2}) == '{"id":1,"Ok":{"stream_id":2}}'


# -- events written with the run's records ---------------------------------------------------


def test_events_too_large_for_one_item_are_split_and_read_back_in_order(
    aws: dict[str, Any],
) -> None:
    bodies = [
        events.encode(*events.flow_error(secrets.token_urlsafe(20_000)), RUN) for _ in range(30)
    ]
    written = [Event(seq, body) for seq, body in enumerate(bodies)]
    items = run_records.events_items(RUN, written)
    assert len(items) > 1
    run_records.write(RUN, [], [], written)
    assert run_records.events(RUN) == written
    assert run_records.add_events(RUN, written[:1]) is False  # the first item exists


# -- the routes in-process: what each costs, and a run delivering -------------------------------


def started_run(api: Api, owner: str, nodes: list[Any], edges: list[Any]) -> dict[str, Any]:
    deployment_id = api.deploy(owner, api.create_flow(owner, nodes=nodes, edges=edges))
    reply = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def chain(length: int) -> tuple[list[Any], list[Any]]:
    nodes = [node("n0", "const", value=0)] + [node(f"n{i}", "add", b=1) for i in range(1, length)]
    edges = [edge("n0", "n1", into="a")] + [
        edge(f"n{i - 1}", f"n{i}", "result", "a") for i in range(2, length)
    ]
    return nodes, edges


def test_each_route_makes_only_the_calls_it_needs(aws: dict[str, Any]) -> None:
    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(2))
    with counting() as connect:
        assert api.ws("c1", event_type="CONNECT") == {"statusCode": 200}
    with counting() as authenticate:
        api.ws("c1", {"id": 1, "method": "Authenticate", "params": {"token": token_for(owner)}})
    with counting() as subscribe:
        api.ws(
            "c1",
            {
                "id": 2,
                "method": "SubscribeFlowRunEvents",
                "params": {"flow_run_id": run["flow_run_id"]},
            },
        )
    with counting() as disconnect:
        api.ws("c1", event_type="DISCONNECT")
    assert connect == {"dynamodb:PutItem": 1}
    assert authenticate == {"dynamodb:UpdateItem": 1, "apigatewaymanagementapi:PostToConnection": 1}
    assert subscribe == {
        # the connection's next stream id; the run's subscriber count; the subscription's key
        # on the connection (so that forgetting the connection removes it)
        "dynamodb:UpdateItem": 3,
        "dynamodb:GetItem": 1,  # the run
        "dynamodb:PutItem": 1,  # the subscription
        "apigatewaymanagementapi:PostToConnection": 1,
    }
    assert disconnect == {"dynamodb:DeleteItem": 1, "dynamodb:BatchWriteItem": 1}
    assert posted("c1") == [
        {"id": 1, "Ok": {"user_id": owner, "pubkey": None, "flow_run_id": None}},
        {"id": 2, "Ok": {"stream_id": 1}},
    ]


def run_with_subscribers(
    count: int, length: int
) -> tuple[Counter[str], list[list[dict[str, Any]]]]:
    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(length))
    connections = [f"conn{i}" for i in range(count)]
    for connection in connections:
        params = {"flow_run_id": run["flow_run_id"], "token": run["token"]}
        api.ws(connection, {"id": 1, "method": "SubscribeFlowRunEvents", "params": params})
    with counting() as calls:
        result = api.functions.invoke(
            "RunFunction", sqs_event(queue.message_body(run["flow_run_id"]))
        )
    assert result == {"batchItemFailures": []}
    return calls, [posted(connection)[1:] for connection in connections]


def test_nobody_listening_costs_a_run_no_call_and_ten_listeners_one_query(
    aws: dict[str, Any],
) -> None:
    quiet, _ = run_with_subscribers(0, 10)
    assert quiet == {
        "dynamodb:UpdateItem": 2,  # claim, finish
        "dynamodb:GetItem": 1,  # the deployment
        "dynamodb:Query": 1,  # its snapshot
        "dynamodb:BatchWriteItem": 1,  # node records and events, together
    }
    watched, received = run_with_subscribers(10, 10)
    number = 1 + 10 * 3 + 1  # FlowStart, NodeStart/NodeOutput/NodeFinish per node, FlowFinish
    assert watched == quiet + Counter(
        {"dynamodb:Query": 1, "apigatewaymanagementapi:PostToConnection": 10 * number}
    )
    for frames in received:
        assert [frame["seq"] for frame in frames] == list(range(number))
        assert frames[-1]["event"] == "FlowFinish"
        assert frames[-1]["data"]["output"] == {"M": {}}


def test_every_event_kind_is_documented_in_openapi_and_the_docs() -> None:
    from flowdeploy.http.openapi import WEBSOCKET_DESCRIPTION
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "live-events.md").read_text()
    for kind in events.KINDS:
        assert f"`{kind}`" in WEBSOCKET_DESCRIPTION, kind
        assert f"| `{kind}` |" in page, kind


def test_a_run_stopped_while_queued_ends_the_streams_of_its_subscribers(
    aws: dict[str, Any],
) -> None:
    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(3))
    params = {"flow_run_id": run["flow_run_id"], "token": run["token"]}
    api.ws("c1", {"id": 1, "method": "SubscribeFlowRunEvents", "params": params})
    assert api.call("POST", f"/flow_run/{run['flow_run_id']}/stop", user=owner).status == 200
    message = sqs_event(queue.message_body(run["flow_run_id"]))
    for _ in range(2):  # the message comes after the stop; a redelivery sends nothing twice
        assert api.functions.invoke("RunFunction", message) == {"batchItemFailures": []}
    frames = posted("c1")[1:]
    assert [(f["seq"], f["event"]) for f in frames] == [(0, "FlowError"), (1, "FlowFinish")]
    assert frames[0]["data"]["error"] == "stopped by its owner"
    assert [e.kind for e in run_records.events(run["flow_run_id"])] == ["FlowError", "FlowFinish"]


def test_a_subscription_refused_by_a_final_run_is_never_written(aws: dict[str, Any]) -> None:
    from flowdeploy.store import connections
    from flowdeploy.store import runs as run_store

    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(2))
    api.functions.invoke("RunFunction", sqs_event(queue.message_body(run["flow_run_id"])))
    assert run_store.get(run["flow_run_id"]).status == "succeeded"  # type: ignore[union-attr]
    connection = connections.prove("c1", 4102444800, user_id=owner, new_stream=True)
    assert connections.subscribe_run(connection, 1, run["flow_run_id"]) is False
    assert connections.run_subscribers(run["flow_run_id"]) == []


def test_the_run_waits_a_moment_for_a_counted_subscription_to_be_written(
    aws: dict[str, Any],
) -> None:
    """Counted, then written: the final look finds one written just after the final status."""
    import asyncio
    import threading

    from flowdeploy.live.run_stream import RunStream
    from flowdeploy.store import connections
    from flowdeploy.store.models import SubscriptionItem

    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(2))
    connections.prove("c1", 4102444800, user_id=owner, new_stream=True)
    item = SubscriptionItem(
        f"RUN#{run['flow_run_id']}", "c1#1", connection_id="c1", stream_id=1, remove_at=1
    )
    late = threading.Timer(0.2, item.save)

    async def finish() -> RunStream:
        stream = RunStream(run["flow_run_id"], owner)
        stream.publish(*events.flow_finish({}, []))
        late.start()
        await stream.watchers(1, final=True)  # counted, not written yet
        await stream.drain(5)
        return stream

    asyncio.run(finish())
    assert [frame["event"] for frame in posted("c1")] == ["FlowFinish"]


def test_a_run_holds_only_unwritten_events_and_a_late_subscriber_reads_the_rest_back(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events written and sent to every known subscriber are let go; a subscriber found
    later gets them from the run's records, in order, a bounded read at a time, then the
    live ones: no gap, no duplicate."""
    import asyncio

    from flowdeploy.live import run_stream
    from flowdeploy.live.run_stream import RunStream
    from flowdeploy.store import connections
    from flowdeploy.store.models import SubscriptionItem

    monkeypatch.setattr(run_stream, "REPLAY_BYTES", 1_000)  # a few events per read
    api, owner = Api(), new_user()
    run_id = started_run(api, owner, *chain(2))["flow_run_id"]

    async def run() -> RunStream:
        stream = RunStream(run_id, owner)
        for i in range(40):
            stream.publish(*events.log("info", f"line {i}", None, 0))
        run_records.write(run_id, [], [], stream.unsaved())
        stream.saved(len(stream.unsaved()))
        assert (stream.kept, stream.first_kept, stream.count) == ([], 40, 40)
        connections.prove("c1", 4102444800, user_id=owner, new_stream=True)
        SubscriptionItem(
            f"RUN#{run_id}", "c1#1", connection_id="c1", stream_id=1, remove_at=4102444800
        ).save()
        await stream.watchers(1)  # found now, 40 events after they were let go
        stream.publish(*events.flow_finish({}, []))
        await stream.drain(5)
        return stream

    asyncio.run(run())
    frames = posted("c1")
    assert [frame["seq"] for frame in frames] == list(range(41))
    assert frames[0]["data"]["content"] == "line 0" and frames[-1]["event"] == "FlowFinish"


def test_a_connection_holds_a_bounded_number_of_subscriptions(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowdeploy.live import sessions

    monkeypatch.setattr(sessions, "MAX_SUBSCRIPTIONS", 2)
    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(2))
    api.ws("c1", {"id": 1, "method": "Authenticate", "params": {"token": token_for(owner)}})
    subscribe = {"method": "SubscribeFlowRunEvents", "params": {"flow_run_id": run["flow_run_id"]}}
    for request_id in (2, 3, 4):
        api.ws("c1", {"id": request_id, **subscribe})
    api.ws("c1", {"id": 5, "method": "SubscribeSignatureRequests", "params": {}})
    replies = [m for m in posted("c1") if "id" in m]
    assert [("Ok" in m) for m in replies] == [True, True, True, False, False]
    assert replies[-1]["Err"].startswith("this connection has 2 subscriptions")


def test_a_node_in_a_loop_has_its_runs_numbered_by_times() -> None:
    import asyncio

    from flowdeploy.engine import Run, build_flow_set
    from tests.unit.engine.upstream import document

    recorder = Publishing(RUN)
    graphs = build_flow_set({1: document("Loop")}, 1)
    result = asyncio.run(Run(graphs, recorder, deadline_seconds=10).execute(1, {}))
    assert result.status == "succeeded" and result.not_run == []
    bodies = [decoded(event.body) for event in recorder.stream.kept]
    command = {node["id"]: node["data"]["node_id"] for node in document("Loop")["nodes"]}
    finishes = sorted(
        body["data"]["times"]
        for body in bodies
        if body["event"] == "NodeFinish" and command.get(body["data"]["node_id"]) == "to_string"
    )
    assert finishes == [0, 1, 2, 3]


def test_a_subscriber_that_cannot_be_posted_to_is_closed_and_forgotten_not_skipped(
    aws: dict[str, Any],
) -> None:
    """RunFunction's rare path (its DELETE on @connections): a post fails with something other
    than 410 once botocore's retries give up; the run closes that connection, so its client
    never silently misses an event, and goes on for the others."""
    from flowdeploy.store import connections
    from tests.faults import Fault, injected

    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(2))
    params = {"flow_run_id": run["flow_run_id"], "token": run["token"]}
    for connection in ("slow", "fine"):
        api.ws(connection, {"id": 1, "method": "SubscribeFlowRunEvents", "params": params})
    fault = Fault(
        "PostToConnection", "LimitExceededException", when=lambda p: p["ConnectionId"] == "slow"
    )
    with injected(fault), counting() as calls:
        api.functions.invoke("RunFunction", sqs_event(queue.message_body(run["flow_run_id"])))
    assert len(fault.hits) == 1  # the first event; nothing more is tried
    assert calls["apigatewaymanagementapi:DeleteConnection"] == 1
    assert [s.connection_id for s in connections.run_subscribers(run["flow_run_id"])] == ["fine"]
    assert posted("fine")[-1]["event"] == "FlowFinish"


def test_a_subscription_that_could_not_be_written_closes_its_connection(
    aws: dict[str, Any],
) -> None:
    """WebSocketFunction's rare path (its DELETE on @connections): the stream id was given,
    the subscription could not be counted on the run (DynamoDB failed): the client is closed
    rather than left waiting for events that will never come."""
    from tests.faults import Fault, injected

    api, owner = Api(), new_user()
    run = started_run(api, owner, *chain(2))
    params = {"flow_run_id": run["flow_run_id"], "token": run["token"]}
    fault = Fault(
        "UpdateItem", "ServiceUnavailable", when=lambda p: p["TableName"] == "FlowRunsTable"
    )
    with injected(fault), counting() as calls:
        api.ws("c1", {"id": 1, "method": "SubscribeFlowRunEvents", "params": params})
    assert len(fault.hits) == 1
    assert calls["apigatewaymanagementapi:PostToConnection"] == 1  # the reply: its stream id
    assert calls["apigatewaymanagementapi:DeleteConnection"] == 1
