"""`make dev` with the delivery design we did not choose, for `make bench` to measure it.

    python -m bench.live_stack --design stream [--flush 0.05] [devserver options]

`--design stream`: RunFunction does not post; a DynamoDB stream on RunRecordsTable feeds a
fan-out, as a stream-triggered Lambda would: Lambda's event source mapping reads each shard
4 times a second, so the fan-out polls GetRecords every 250 ms, and for each new events item
looks the run's subscribers up (one Query) and posts every event to each, in order.
`--flush` is how often RunFunction writes its records (2 s in the product; the stream can
deliver no sooner than they are written): its execution environments run it through
`bench/live_run_function.py`, which also turns its own delivery off. The same WebSocket
server, management API and handlers serve both designs. A measuring prototype: never part
of the product.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

POLLS_PER_SECOND = 4  # Lambda's DynamoDB Streams poller, per shard
RUN_FUNCTION = "RunFunction"

log = logging.getLogger("bench.live_stack")


def use_stream_fan_out(flush_seconds: float) -> None:
    """A stream on RunRecordsTable, RunFunction's environments running
    `bench/live_run_function.py`, and the fan-out in this process once they are set up."""
    import dataclasses

    from flowdeploy.local import devserver, environments
    from flowdeploy.local.template import FunctionSpec, Template

    tables = Template.tables

    def with_stream(self: Template) -> dict[str, dict[str, Any]]:
        found = tables(self)
        found["RunRecordsTable"]["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_IMAGE",
        }
        return found

    Template.tables = with_stream  # type: ignore[method-assign]
    run_environment: dict[str, str] = {}
    environment_of = devserver.function_environment

    def run_function_environment(
        template: Template, spec: FunctionSpec, *args: Any, **kwargs: Any
    ) -> dict[str, str]:
        found = environment_of(template, spec, *args, **kwargs)
        if spec.name == RUN_FUNCTION:
            found.update(
                BENCH_FLUSH_SECONDS=str(flush_seconds),
                BENCH_RUN_CODE=str(spec.code_uri),
                BENCH_RUN_HANDLER=spec.handler,
            )
            run_environment.update(found)
        return found

    devserver.function_environment = run_function_environment  # type: ignore[assignment]
    configure = environments._configure

    def prototype(spec: FunctionSpec, *args: Any) -> Any:
        if spec.name == RUN_FUNCTION:
            bench = Path(__file__).resolve().parent
            spec = dataclasses.replace(spec, code_uri=bench, handler="live_run_function.handler")
        return configure(spec, *args)

    environments._configure = prototype
    threading.Thread(
        target=_fan_out, args=(run_environment,), daemon=True, name="stream-fan-out"
    ).start()


def _fan_out(run_environment: dict[str, str]) -> None:
    """As a stream-triggered Lambda would, with RunFunction's tables and endpoint."""
    import os

    while "WEBSOCKET_ENDPOINT" not in run_environment:  # the stack is still starting
        time.sleep(0.05)
    os.environ.update(
        {
            key: value
            for key, value in run_environment.items()
            if key.endswith("_TABLE") or key == "WEBSOCKET_ENDPOINT"
        }
    )
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
