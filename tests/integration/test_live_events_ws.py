"""Live run events over real WebSocket connections to the local stack (`make dev`'s /ws)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from flowdeploy.live.outbox import Outbox
from flowdeploy.solana.rpc import SolanaRpc
from tests.conftest import ROOT, Stack, new_user, token_for
from tests.integration.test_engine_http import finished, start
from tests.integration.test_http import Client
from tests.integration.ws_client import WsError, WsSession
from tests.unit.engine.flows import edge, node
from tests.unit.solana.test_solana_runs import SOL, transfer_flow

pytestmark = pytest.mark.integration

BIG = "x" * 40_000  # more than one 32 KB frame holds, less than a run's outputs may be


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def deployed(client: Client, owner: str, nodes: list[Any], edges: list[Any], **flags: Any) -> str:
    return client.deploy(owner, client.flow(owner, nodes=nodes, edges=edges, **flags))


def waiting_flow(seconds: float) -> tuple[list[Any], list[Any]]:
    """in → wait `seconds` → out: long enough to subscribe while it runs."""
    nodes = [
        node("in", "flow_input", label="a"),
        node("wait", "wait", seconds={"D": str(seconds)}),
        node("out", "flow_output", label="a"),
    ]
    return nodes, [edge("in", "wait", into="value"), edge("wait", "out", "value")]


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["event"], e["data"].get("node_id")) for e in events]


def without_stream(events: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
    return [(e["seq"], e["event"], e["data"]) for e in events]


async def no_more_events(ws: WsSession, stream_id: int, token: str) -> None:
    """Nothing follows FlowFinish: a later request's reply comes, the stream stays empty."""
    await ws.authenticate(token)
    assert ws.streams[stream_id].empty()


def test_a_run_watched_from_start_to_flow_finish_in_upstreams_shapes(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    nodes = [
        node("in", "flow_input", label="a"),
        node("say", "log"),
        node("big", "const", value={"S": BIG}),
        node("out", "flow_output", label="a"),
        node("out_big", "flow_output", label="big"),
    ]
    edges = [
        edge("in", "say", into="message"),
        edge("say", "out", "message"),
        edge("big", "out_big"),
    ]
    deployment_id = deployed(client, owner, nodes, edges)

    async def watch() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        async with WsSession(stack.ws_url) as ws:
            identity = await ws.authenticate(token_for(owner))
            started = start(client, owner, deployment_id, {"a": {"S": "hello"}})
            stream_id = await ws.subscribe_run(started["flow_run_id"])
            events = await ws.until_finish(stream_id)
            await no_more_events(ws, stream_id, token_for(owner))
            return identity, started, events

    identity, started, events = asyncio.run(watch())
    run_id = started["flow_run_id"]
    assert identity == {"user_id": owner, "pubkey": None, "flow_run_id": None}
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert {e["data"]["flow_run_id"] for e in events} == {run_id}
    assert all(e["data"]["time"].endswith("Z") for e in events)
    order = kinds(events)
    assert order[0] == ("FlowStart", None) and order[-1] == ("FlowFinish", None)
    for node_id in ("in", "say", "big", "out", "out_big"):
        mine = [kind for kind, of in order if of == node_id]
        assert mine[0] == "NodeStart" and mine[-1] == "NodeFinish", (node_id, mine)
    log = next(e["data"] for e in events if e["event"] == "NodeLog")
    assert (log["node_id"], log["level"], log["content"], log["module"]) == (
        "say",
        "Info",
        "hello",
        None,
    )
    started_say = next(e for e in events if kinds([e]) == [("NodeStart", "say")])
    assert started_say["data"]["input"] == {"M": {"message": {"S": "hello"}}}
    # 40 KB does not fit a 32 KB frame: clipped, marked and named; whole everywhere else
    big = next(e for e in events if kinds([e]) == [("NodeOutput", "big")])
    assert len(json.dumps(big)) <= 32 * 1024
    assert big["data"]["clipped"] == ["output"]
    marker = big["data"]["output"]["M"]["output"]["S"]
    assert marker.startswith("VALUE TOO LARGE: 40008 bytes of JSON")
    assert f"/flow_run/{run_id}/nodes" in marker
    finish = events[-1]["data"]
    assert finish["not_run"] == []
    assert finish["output"] == {"M": {"a": {"S": "hello"}, "big": {"S": BIG}}}
    run = finished(client, started)
    assert {"M": run["outputs"]} == finish["output"]
    records = client.request("GET", f"/flow_run/{run_id}/nodes", user=owner).json()["nodes"]
    assert next(r for r in records if r["node_id"] == "big")["outputs"] == {"output": {"S": BIG}}


def test_a_late_subscriber_gets_the_whole_history_then_the_live_events(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    deployment_id = deployed(client, owner, *waiting_flow(1.0))
    started = start(client, owner, deployment_id, {"a": {"S": "v"}})
    run_id, token = started["flow_run_id"], started["token"]

    async def watch() -> list[list[dict[str, Any]]]:
        async with WsSession(stack.ws_url) as first, WsSession(stack.ws_url) as late:
            await first.authenticate(token)  # the run token, as client-next's run.events()
            first_stream = await first.subscribe_run(run_id)
            while (await first.next_event(first_stream))["data"].get("node_id") != "wait":
                pass  # the wait node has started: the run is half way
            late_stream = await late.subscribe_run(run_id, token=token)
            watched = [await first.until_finish(first_stream), await late.until_finish(late_stream)]
        async with WsSession(stack.ws_url) as after:  # the run is over: replayed, then ended
            after_stream = await after.subscribe_run(run_id, token=token)
            watched.append(await after.until_finish(after_stream))
            await no_more_events(after, after_stream, token)
        return watched

    first, late, after = asyncio.run(watch())
    assert [e["seq"] for e in late] == list(range(len(late)))
    assert without_stream(late) == without_stream(after)
    assert without_stream(first) == without_stream(late)[len(late) - len(first) :]
    assert kinds(after)[-3:] == [("NodeOutput", "out"), ("NodeFinish", "out"), ("FlowFinish", None)]


def test_a_signature_request_reaches_the_owners_stream_and_is_answered_by_submit(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    api_key = client.request("POST", "/apikey", user=owner, json={"name": "ws"}).json()["key"]
    rpc = SolanaRpc(stack.solana_url, allow_private=True)
    signer, recipient = Keypair(), Keypair().pubkey()
    rpc.confirm(rpc.request_airdrop(signer.pubkey(), 2 * SOL), rpc.latest_blockhash()[1])
    flow = transfer_flow(node("sender", "flow_input", label="sender"))
    flags = {"is_public": True, "start_shared": True, "start_unverified": True}
    deployment_id = deployed(client, owner, flow["nodes"], flow["edges"], **flags)
    inputs = {"sender": {"S": str(signer.pubkey())}, "recipient": {"S": str(recipient)}}

    async def sign() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        async with WsSession(stack.ws_url) as ws:
            await ws.authenticate(api_key)
            signatures = await ws.subscribe_signatures()
            reply = client.request(
                "POST",
                f"/deployment/start?id={deployment_id}",
                headers={"Authorization": f"Bearer {signer.pubkey()}"},
                json={"inputs": inputs, "action_signer": str(signer.pubkey())},
            )
            started = reply.json()
            run_stream = await ws.subscribe_run(started["flow_run_id"], token=started["token"])
            event = await ws.next_event(signatures)
            request = event["data"]
            bearer = {"Authorization": f"Bearer {started['token']}"}
            path = f"/flow/signature_request/{started['flow_run_id']}"
            assert client.request("GET", path, headers=bearer).json() == request
            message = base64.b64decode(request["message"])
            body = {"id": request["id"], "signature": str(signer.sign_message(message))}
            submitted = client.request("POST", "/signature/submit", json=body)
            assert submitted.json() == {"success": True}
            return event, await ws.until_finish(run_stream), started

    event, run_events, started = asyncio.run(sign())
    assert event["event"] == "SignatureRequest" and "seq" not in event
    assert event["data"]["pubkey"] == str(signer.pubkey())
    assert event["data"]["flow_run_id"] == started["flow_run_id"]
    in_run = next(e for e in run_events if e["event"] == "SignatureRequest")
    assert in_run["data"] == event["data"]
    assert run_events[-1]["data"]["output"]["M"]["signature"]
    assert finished(client, started)["status"] == "succeeded"
    assert rpc.balance(Pubkey.from_string(str(recipient))) == SOL // 2


def test_a_connection_sees_only_what_its_credentials_allow(client: Client, stack: Stack) -> None:
    owner, other = new_user(), new_user()
    deployment_id = deployed(client, owner, *waiting_flow(0))
    started = start(client, owner, deployment_id, {"a": {"S": "v"}})
    others = start(client, other, deployed(client, other, *waiting_flow(0)), {"a": {"S": "w"}})
    missing = str(uuid.uuid4())

    async def refused() -> dict[str, str]:
        errors: dict[str, str] = {}
        async with WsSession(stack.ws_url) as ws:
            for name, run_id in (("anonymous", started["flow_run_id"]),):
                errors[name] = (
                    await ws.request("SubscribeFlowRunEvents", {"flow_run_id": run_id})
                )["Err"]
            errors["signatures, anonymous"] = (await ws.request("SubscribeSignatureRequests", {}))[
                "Err"
            ]
            await ws.authenticate(others["token"])  # a run token: no user
            errors["signatures, run token"] = (await ws.request("SubscribeSignatureRequests", {}))[
                "Err"
            ]
            await ws.authenticate(token_for(other))
            for name, run_id in (("another user's", started["flow_run_id"]), ("missing", missing)):
                reply = await ws.request("SubscribeFlowRunEvents", {"flow_run_id": run_id})
                errors[name] = reply["Err"].replace(run_id, "<id>")
            params = {"flow_run_id": started["flow_run_id"], "token": others["token"]}
            errors["another run's token"] = (await ws.request("SubscribeFlowRunEvents", params))[
                "Err"
            ]
            for name, token in (
                ("bearer", f"Bearer {token_for(owner)}"),
                ("forged run token", "fr-" + "A" * 64),
                ("unknown API key", "b3-" + "A" * 43),
                ("garbage", "hello"),
            ):
                errors[name] = (await ws.request("Authenticate", {"token": token}))["Err"]
            await ws.send_raw("not json")
            errors["not json"] = await _reply_to_raw(ws, -1)
            await ws.send_raw(json.dumps({"id": 77, "method": "Nope", "params": {}}))
            errors["unknown method"] = await _reply_to_raw(ws, 77)
            await ws.send_raw(json.dumps({"id": 78, "method": "Authenticate", "params": {}}))
            errors["no token"] = await _reply_to_raw(ws, 78)
            # and what it may see, it sees: its own run
            mine = await ws.subscribe_run(others["flow_run_id"])
            assert (await ws.until_finish(mine))[-1]["event"] == "FlowFinish"
        return errors

    errors = asyncio.run(refused())
    assert errors["another user's"] == errors["missing"] == "flow run not found: <id>"
    assert errors["another run's token"] == f"flow run not found: {started['flow_run_id']}"
    assert errors["anonymous"].startswith("unauthorized")
    assert errors["signatures, anonymous"].startswith("unauthorized")
    assert errors["signatures, run token"].startswith("unauthorized")
    assert errors["bearer"] == 'send the token alone, without "Bearer "'
    assert errors["forged run token"] == "invalid flow run token"
    assert errors["unknown API key"] == "invalid API key"
    assert errors["garbage"].startswith("invalid token")
    assert errors["not json"].startswith("the message is not JSON")
    assert errors["unknown method"].startswith("unknown method 'Nope'")
    assert errors["no token"] == "invalid params: token: Field required"


async def _reply_to_raw(ws: WsSession, request_id: int) -> str:
    """The reply to a message sent with `send_raw` (its id, or -1: no request waits on it)."""
    reply = asyncio.get_running_loop().create_future()
    ws.replies[request_id] = reply
    message = await asyncio.wait_for(reply, 20)
    return str(message["Err"])


def test_a_hundred_subscribers_each_get_every_event_exactly_once(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    deployment_id = deployed(client, owner, *waiting_flow(1.0))
    started = start(client, owner, deployment_id, {"a": {"S": "all"}})

    async def one() -> list[dict[str, Any]]:
        async with WsSession(stack.ws_url) as ws:
            stream_id = await ws.subscribe_run(started["flow_run_id"], token=started["token"])
            return await ws.until_finish(stream_id, timeout=60)

    async def hundred() -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(one() for _ in range(100))))

    received = asyncio.run(hundred())
    reference = without_stream(received[0])
    assert [seq for seq, _, _ in reference] == list(range(len(reference)))
    assert kinds(received[0])[0] == ("FlowStart", None)
    assert all(without_stream(events) == reference for events in received)


def test_a_connection_dropped_mid_run_affects_neither_the_run_nor_the_others(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    deployment_id = deployed(client, owner, *waiting_flow(1.0))
    started = start(client, owner, deployment_id, {"a": {"S": "on"}})
    run_id, token = started["flow_run_id"], started["token"]

    table = boto3.resource("dynamodb", endpoint_url=stack.aws_endpoint).Table("ConnectionsTable")

    def subscribers() -> int:
        key = {":pk": f"RUN#{run_id}"}
        return len(
            table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=key)["Items"]
        )

    async def drop() -> tuple[list[dict[str, Any]], int]:
        async with WsSession(stack.ws_url) as stays:
            kept = await stays.subscribe_run(run_id, token=token)
            dropped = WsSession(stack.ws_url)
            await dropped.__aenter__()
            gone = await dropped.subscribe_run(run_id, token=token)
            while (await dropped.next_event(gone))["data"].get("node_id") != "wait":
                pass
            assert subscribers() == 2
            dropped.socket.transport.abort()  # no close frame: the network went away
            events = await stays.until_finish(kept)
            for _ in range(50):  # the dropped one is forgotten by $disconnect or its 410
                if subscribers() == 1:
                    break
                await asyncio.sleep(0.1)
            return events, subscribers()

    events, left = asyncio.run(drop())
    assert events[-1]["event"] == "FlowFinish"
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert finished(client, started)["status"] == "succeeded"
    assert left == 1  # only the connection that stayed is still subscribed


def test_api_gateways_limits_hold_on_the_local_stack(client: Client, stack: Stack) -> None:
    from botocore.exceptions import ClientError

    endpoint = stack.url + "/ws"
    outbox = Outbox(endpoint)
    assert outbox.post("L0SM9cOFvHcCIhw=", "hello") is False  # 410: gone
    assert client.request("GET", "/ws").status_code == 426
    unsigned = client.request("POST", "/ws/@connections/L0SM9cOFvHcCIhw=", data=b"x")
    assert unsigned.status_code == 403

    async def limits() -> tuple[int | None, str]:
        async with WsSession(stack.ws_url) as ws:
            identity = await ws.authenticate(token_for(new_user()))
            assert identity["user_id"]
            # a frame over 32 KB closes the connection with 1009, as API Gateway does
            await ws.send_raw(json.dumps({"id": 1, "method": "Authenticate", "pad": "x" * 40_000}))
            await asyncio.wait_for(ws.reader, 10) if ws.reader else None
            return ws.socket.close_code, ws.socket.close_reason

    code, reason = asyncio.run(limits())
    assert (code, reason) == (1009, "frame is larger than 32 KB")
    with pytest.raises(ClientError) as raised:
        outbox._client.post_to_connection(ConnectionId="L0SM9cOFvHcCIhw=", Data=b"x" * 140_000)
    assert raised.value.response["Error"]["Code"] in {"PayloadTooLargeException", "GoneException"}


def test_errors_before_a_reply_are_upstreams_err_with_the_request_id(stack: Stack) -> None:
    async def ask() -> dict[str, Any]:
        async with WsSession(stack.ws_url) as ws:
            reply = await ws.request("SubscribeFlowRunEvents", {"flow_run_id": "not-a-uuid"})
            with pytest.raises(WsError):
                await ws.ok("SubscribeFlowRunEvents", {})
            return reply

    assert asyncio.run(ask()) == {
        "id": 1,
        "Err": "unauthorized: Authenticate first, or send the run's token with the subscription",
    }


def test_a_subscription_whose_connection_is_gone_is_forgotten_at_the_first_410(
    client: Client, stack: Stack
) -> None:
    """As when API Gateway's $disconnect never came: the run's first post gets a 410."""
    owner = new_user()
    started = start(client, owner, deployed(client, owner, *waiting_flow(0.5)), {"a": {"S": "x"}})
    run_id, gone = started["flow_run_id"], "Z0neC0nnecti0n="
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint)
    subscription = {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": f"{gone}#1"}}
    dynamodb.put_item(
        TableName="ConnectionsTable",
        Item={
            **subscription,
            "connection_id": {"S": gone},
            "stream_id": {"N": "1"},
            "remove_at": {"N": "4102444800"},
        },
    )
    dynamodb.put_item(
        TableName="ConnectionsTable",
        Item={
            "pk": {"S": f"CONN#{gone}"},
            "sk": {"S": "CONN"},
            "subscriptions": {"SS": [f"RUN#{run_id} {gone}#1"]},
            "remove_at": {"N": "4102444800"},
        },
    )
    dynamodb.update_item(
        TableName="FlowRunsTable",
        Key={"id": {"S": run_id}},
        UpdateExpression="ADD watchers :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert finished(client, started)["status"] == "succeeded"
    for _ in range(50):
        left = dynamodb.get_item(TableName="ConnectionsTable", Key=subscription).get("Item")
        if left is None:
            break
        time.sleep(0.1)
    assert left is None
    conn = {"pk": {"S": f"CONN#{gone}"}, "sk": {"S": "CONN"}}
    assert dynamodb.get_item(TableName="ConnectionsTable", Key=conn).get("Item") is None


def test_the_node_example_of_the_docs_watches_a_run(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    page = (ROOT / "docs" / "live-events.md").read_text()
    example = page.split("<!-- example: watch-run -->\n```js\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "watch.mjs"
    script.write_text(example)
    owner = new_user()
    started = start(client, owner, deployed(client, owner, *waiting_flow(0.2)), {"a": {"S": "x"}})
    # Node 22 has WebSocket built in, Node 20 behind a flag
    native = subprocess.run(
        ["node", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"], check=False
    )
    done = subprocess.run(
        [
            "node",
            *([] if native.returncode == 0 else ["--experimental-websocket"]),
            str(script),
            stack.ws_url,
            started["flow_run_id"],
            started["token"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("0 FlowStart ") and lines[-1].startswith(
        f"{len(lines) - 1} FlowFinish "
    )


def test_an_api_input_is_announced_with_the_url_that_answers_it(
    client: Client, stack: Stack
) -> None:
    owner = new_user()
    nodes = [node("ask", "api_input"), node("out", "flow_output", label="c")]
    started = start(client, owner, deployed(client, owner, nodes, [edge("ask", "out", "value")]))

    async def answer() -> list[dict[str, Any]]:
        async with WsSession(stack.ws_url) as ws:
            stream_id = await ws.subscribe_run(started["flow_run_id"], token=started["token"])
            received = [await ws.next_event(stream_id)]
            while received[-1]["event"] != "ApiInput":
                received.append(await ws.next_event(stream_id))
            url = received[-1]["data"]["url"]
            reply = await asyncio.to_thread(
                requests.post, url, json={"value": {"S": "hello"}}, timeout=10
            )
            assert reply.json() == {"success": True}
            return received + await ws.until_finish(stream_id)

    received = asyncio.run(answer())
    announced = next(e["data"] for e in received if e["event"] == "ApiInput")
    assert announced["url"].startswith(stack.url + "/flow/submit/")
    assert received[-1]["data"]["output"] == {"M": {"c": {"S": "hello"}}}
