"""`make invoke FUNCTION=StartFunction EVENT=events/start.json`: one handler, one event.

Like `sam local invoke`, without Docker: the function's module is loaded with exactly its
template.yaml environment, against in-memory DynamoDB, SQS, KMS, SSM and Secrets Manager
(moto) holding the docs page's example (flow 3675, deployment 0194e5ac-…), and the result
is printed; a failure prints Lambda's error (also a timeout or a response over 6 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flowdeploy.local import DEV_JWT_SECRET, calls
from flowdeploy.local.environments import Functions, LambdaError
from flowdeploy.local.stack import (
    fake_credentials,
    function_environment,
    local_replacements,
    provision,
    repository_root,
)
from flowdeploy.local.template import Template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowdeploy.local.invoke", description=__doc__)
    parser.add_argument("function", help="logical id in template.yaml, e.g. StartFunction")
    parser.add_argument("event", type=Path, help="event file, e.g. events/start.json")
    parser.add_argument("--template", type=Path, default=repository_root() / "template.yaml")
    parser.add_argument("--no-seed", action="store_true", help="start from empty tables")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, e.g. TriggerBucketTarget=3675",
    )
    parser.add_argument("--record-calls", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    template = Template(args.template, dict(p.partition("=")[::2] for p in args.parameter))
    if args.function not in template.functions():
        known = ", ".join(sorted(template.functions()))
        print(f"unknown function {args.function!r}; template.yaml has: {known}", file=sys.stderr)
        return 2
    try:
        event = json.loads(args.event.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"cannot read event {args.event}: {error}", file=sys.stderr)
        return 2

    from moto import mock_aws

    fake_credentials()
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if args.record_calls:
        calls.record_to(args.record_calls)
    spec = template.functions()[args.function]
    outcome: dict[str, Any] = {}
    # Lambda writes logs to stdout; here stdout is the result, so logs go to stderr.
    with mock_aws(), contextlib.redirect_stdout(sys.stderr):
        names = provision(template)
        added = {"HTTP_ALLOW_PRIVATE": "true", "POWERTOOLS_METRICS_DISABLED": "true"}
        replaced = local_replacements("http://127.0.0.1:3000")  # where `make dev` serves
        environment = function_environment(template, spec, names, added, replaced)
        # The one difference from `make dev`: the JWT secret from the environment, not SSM
        # (moto's SSM takes seconds to load).
        if environment.pop("JWT_SECRET_PARAMETER", None):
            environment["JWT_SECRET"] = os.environ.get("JWT_SECRET") or DEV_JWT_SECRET
        os.environ.clear()  # the function sees its own variables only, as in Lambda
        os.environ.update(environment)
        if not args.no_seed:
            from flowdeploy.local.samples import seed

            seed()

        def invoke() -> None:
            try:
                outcome["result"] = Functions({spec.name: spec}).invoke(spec.name, event)
            except LambdaError as error:
                outcome["error"] = error.payload

        running = threading.Thread(target=invoke, daemon=True)
        running.start()
        running.join(spec.timeout)
        show_posted(event)
    if running.is_alive():  # Lambda stops the environment; so does this process
        print(
            json.dumps(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": (f"Task timed out after {spec.timeout:.2f} seconds"),
                }
            ),
            flush=True,
        )
        os._exit(1)
    if "error" in outcome:
        print(json.dumps(outcome["error"], indent=2))
        return 1
    print(json.dumps(outcome["result"], indent=2))
    return 0


def show_posted(event: dict[str, Any]) -> None:
    """A WebSocket function answers by posting to the connection: show what it posted."""
    connection = event.get("requestContext", {}).get("connectionId")
    for message in posted(connection) if connection else []:
        print(f"posted to {connection}: {json.dumps(message)}", file=sys.stderr)


def posted(connection: str) -> list[Any]:
    """The messages posted to `connection` through the management API, in order (moto's mock
    keeps their bytes, joined, under the id as it appeared in the URL)."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    key = quote(connection, safe="")
    data = backend.connections[key].data.decode() if key in backend.connections else ""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(data):
        message, at = decoder.raw_decode(data, at)
        found.append(message)
    return found


if __name__ == "__main__":
    sys.exit(main())
