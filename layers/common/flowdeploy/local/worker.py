"""One execution environment of the local stack: a process that runs one function's handler.

As in Lambda, the process has only its function's environment variables (and what the
runtime adds), imports the handler once (the init phase), then serves one event at a time;
its module state — settings, Powertools' parameter and secret caches, boto3 clients — is its
own. The parent (`flowdeploy.local.environments`) stops it when a handler overruns its
timeout, as Lambda does, and holds responses to Lambda's size limit.

Processes are forked from multiprocessing's fork server, which has already imported the
heavy third-party libraries below (none reads the environment at import), so starting an
environment costs a fork and the function's own imports.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Imported once in the fork server, shared copy-on-write by every environment.
PRELOAD = [
    "boto3",
    "botocore.session",
    "pydantic",
    "pynamodb.models",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parameters",
    "jwt",
]


@dataclass(frozen=True)
class WorkerConfig:
    function: str
    code_uri: Path
    handler: str
    memory: int
    environment: dict[str, str]
    record_calls: Path | None = None
    resource_aliases: dict[str, str] | None = None


def error_payload(error: BaseException) -> dict[str, Any]:
    """An unhandled exception as the Lambda Python runtime reports it."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def serve(connection: Connection, config: WorkerConfig) -> None:
    """Init, then answer ("invoke", event, request id, seconds left) messages until closed."""
    # Ctrl-C on `make dev` reaches the whole process group; the stack stops its environments.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(config.environment)
    os.chdir(config.code_uri)
    if config.record_calls is not None:
        from flowdeploy.local import calls
        from flowdeploy.local.iam_requests import Names

        calls.record_to(config.record_calls, Names(dict(config.resource_aliases or {})))
        calls.act_as_process(config.function)
    from flowdeploy.local.environments import LocalContext, load_handler

    try:
        handler = load_handler(config.code_uri, config.handler, config.function)
    except BaseException as error:  # init failed: Lambda reports it on the invocation
        traceback.print_exc()
        connection.send(("init_error", error_payload(error)))
        return
    connection.send(("ready", None))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        _, event, request_id, seconds_left = message
        context = LocalContext(config.function, config.memory, seconds_left, request_id)
        started = time.monotonic()
        try:
            result = handler(event, context)
        except Exception as error:
            print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr)
            traceback.print_exc()
            connection.send(("error", error_payload(error)))
            continue
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as error:
            connection.send(
                (
                    "error",
                    {
                        "errorMessage": f"Unable to marshal response: {error}",
                        "errorType": "Runtime.MarshalError",
                    },
                )
            )
            continue
        connection.send(("ok", payload, time.monotonic() - started))
