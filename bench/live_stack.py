"""`make dev` with the delivery design we did not choose, for `make bench` to measure it.

    python -m bench.live_stack --design stream [--flush 0.05] [devserver options]

`--design stream`: RunFunction does not post; a DynamoDB stream on RunRecordsTable feeds a
fan-out, as a stream-triggered Lambda would: Lambda's event source mapping reads each shard
4 times a second, so the fan-out polls GetRecords every 250 ms, and for each new events item
looks the run's subscribers up (one Query) and posts every event to each, in order.
`--flush` is how often RunFunction writes its records (2 s in the product; the stream can
deliver no sooner than they are written). The same WebSocket server, management API and
handlers serve both designs. A measuring prototype: never part of the product.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any

POLLS_PER_SECOND = 4  # Lambda's DynamoDB Streams poller, per shard

log = logging.getLogger("bench.live_stack")


def use_stream_fan_out(flush_seconds: float) -> None:
    from flowdeploy.local import stack
    from flowdeploy.local.template import Template

    tables = Template.tables

    def with_stream(self: Template) -> dict[str, dict[str, Any]]:
        found = tables(self)
        found["RunRecordsTable"]["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_IMAGE",
        }
        return found

    Template.tables = with_stream  # type: ignore[method-assign]
    invoke = stack.Functions.invoke
    patched = threading.Event()

    def once_patched(self: stack.Functions, name: str, event: dict[str, Any]) -> Any:
        patched.wait()  # no function runs before the run is changed
        return invoke(self, name, event)

    stack.Functions.invoke = once_patched  # type: ignore[method-assign]
    threading.Thread(
        target=_fan_out, args=(flush_seconds, patched), daemon=True, name="stream-fan-out"
    ).start()


def _patch_the_run(flush_seconds: float) -> None:
    """RunFunction posts nothing and writes its records every `flush_seconds`. Called once
    the functions' environment is complete: importing flowdeploy reads its settings."""
    from flowdeploy import runner
    from flowdeploy.live.run_stream import RunStream

    async def no_live_delivery(stream: RunStream, count: Any) -> None:
        return None

    RunStream.watchers = no_live_delivery  # type: ignore[method-assign]
    runner.FLUSH_SECONDS = flush_seconds


def _fan_out(flush_seconds: float, patched: threading.Event) -> None:
    import os

    while not os.environ.get("WEBSOCKET_ENDPOINT", "").startswith("http:"):  # still starting
        time.sleep(0.05)
    _patch_the_run(flush_seconds)
    patched.set()
    import boto3

    from flowdeploy.live.events import Event
    from flowdeploy.live.outbox import outbox
    from flowdeploy.store import connections, run_records
    from flowdeploy.store.models import unpack

    stream_arn = boto3.client("dynamodb").describe_table(TableName="RunRecordsTable")["Table"][
        "LatestStreamArn"
    ]
    streams = boto3.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterators = {
        shard["ShardId"]: streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        for shard in shards
    }
    sent: dict[tuple[str, str], int] = {}  # (run, subscription) → next seq
    while True:
        time.sleep(1 / POLLS_PER_SECOND)
        for shard, iterator in list(iterators.items()):
            batch = streams.get_records(ShardIterator=iterator)
            iterators[shard] = batch["NextShardIterator"]
            for record in batch["Records"]:
                image = record["dynamodb"].get("NewImage", {})
                if not image.get("sk", {}).get("S", "").startswith(run_records.EVENTS):
                    continue
                run_id, first = image["flow_run_id"]["S"], run_records.seq_of(image["sk"]["S"])
                bodies = unpack(image["events"]["B"])
                events = [Event(first + i, body) for i, body in enumerate(bodies)]
                for subscription in connections.run_subscribers(run_id):
                    key = (run_id, subscription.sk)
                    for event in events:
                        if event.seq >= sent.get(key, 0):
                            text = event.frame(int(subscription.stream_id))
                            outbox().post(subscription.connection_id, text)
                            sent[key] = event.seq + 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_stack")
    parser.add_argument("--design", choices=("run", "stream"), default="run")
    parser.add_argument("--flush", type=float, default=2.0)
    args, rest = parser.parse_known_args(argv)
    if args.design == "stream":
        use_stream_fan_out(args.flush)
    from flowdeploy.local.devserver import main as serve

    return serve(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
