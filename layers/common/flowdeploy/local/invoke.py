"""`make invoke FUNCTION=StartFunction EVENT=events/start.json`: one handler, one event.

Like `sam local invoke`, without Docker: the function's module is loaded with its
template.yaml environment, against in-memory DynamoDB and SQS (moto) holding the
docs page's example (flow 3675, deployment 0194e5ac-…), and the result is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flowdeploy.local.stack import (
    Functions,
    fake_credentials,
    function_environment,
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
    # Lambda writes logs to stdout; here stdout is the result, so logs go to stderr.
    with mock_aws(), contextlib.redirect_stdout(sys.stderr):
        names = provision(template)
        os.environ.update(function_environment(template, names))
        if not args.no_seed:
            from flowdeploy.local.samples import seed

            seed()
        result = Functions(template).invoke(args.function, event)
        # A WebSocket function answers by posting to the connection: show what it posted.
        connection = event.get("requestContext", {}).get("connectionId")
        sent = posted(connection) if connection else []
    for message in sent:
        print(f"posted to {connection}: {json.dumps(message)}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


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
