"""The local stack's execution environments behave as Lambda's where a user would otherwise
be surprised on AWS: each function has only its own variables and caches, a response over
6 MB and a handler past its timeout fail as in Lambda (API Gateway: 500), routes are
throttled as the template says. Two probe functions (tests/fixtures/lambda) run in real
environment processes, routed by the real gateway; no AWS service is involved.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flowdeploy.local.devserver import Gateway
from flowdeploy.local.environments import MAX_RESPONSE_BYTES, Functions
from flowdeploy.local.stack import function_environment
from flowdeploy.local.template import Template
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "lambda" / "template.yaml"
INTERNAL_ERROR = {"message": "Internal Server Error"}


def environments(template: Template) -> Functions:
    specs = template.functions()
    local = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # what the local stack adds
    return Functions(
        specs,
        {name: function_environment(template, spec, {}, local) for name, spec in specs.items()},
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    template = Template(FIXTURE)
    functions = environments(template)
    yield Gateway(template, functions)
    functions.close()


def get(gateway: Gateway, path: str) -> tuple[int, Any]:
    status, _, body = gateway.handle("GET", path, {"host": "localhost"}, b"")
    return status, json.loads(body)


def test_each_function_sees_only_its_own_variables_and_has_its_own_caches(
    gateway: Gateway,
) -> None:
    _, probe = get(gateway, "/probe/env")
    _, other = get(gateway, "/other/env")
    assert {"SHARED", "ONLY_PROBE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL"} <= set(
        probe["variables"]
    )
    assert "ONLY_OTHER" not in probe["variables"]
    assert "ONLY_PROBE" not in other["variables"]
    leaked = set(os.environ) - {
        "PATH",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LANG",
        "TZ",
    }
    assert not leaked & set(probe["variables"]), "nothing of the process running the stack"
    assert (probe["function"], other["function"]) == ("ProbeFunction", "OtherFunction")
    # flowdeploy.settings is read once per environment: each has its own.
    assert (probe["max_receives"], other["max_receives"]) == (5, 2)
    assert len({probe["pid"], other["pid"], os.getpid()}) == 3
    assert 0 < other["remaining_ms"] <= 1000 < probe["remaining_ms"] <= 10_000


def test_a_response_over_6_mb_is_lambdas_error_and_api_gateways_500(gateway: Gateway) -> None:
    status, _, body = gateway.handle(
        "GET", f"/probe/size?bytes={MAX_RESPONSE_BYTES}", {"host": "localhost"}, b""
    )
    assert status == 200
    assert len(body) == MAX_RESPONSE_BYTES - len(json.dumps({"statusCode": 200, "body": ""}))
    assert get(gateway, f"/probe/size?bytes={MAX_RESPONSE_BYTES + 1}") == (500, INTERNAL_ERROR)


def test_a_handler_past_its_timeout_is_stopped_and_the_next_call_gets_a_new_environment(
    gateway: Gateway,
) -> None:
    _, before = get(gateway, "/other/env")
    started = time.monotonic()
    assert get(gateway, "/other/sleep?seconds=30") == (500, INTERNAL_ERROR)
    assert time.monotonic() - started < 10, "stopped at its 1 s timeout, not after 30 s"
    with pytest.raises(ProcessLookupError):
        os.kill(before["pid"], 0)
    status, after = get(gateway, "/other/env")
    assert status == 200
    assert after["pid"] != before["pid"]


def test_routes_are_throttled_as_the_templates_default_route_settings_say() -> None:
    template = Template(FIXTURE, {"RateLimit": "1", "BurstLimit": "2"})
    functions = Functions(template.functions())  # throttling happens before any function
    throttled = Gateway(template, functions)
    statuses = [get(throttled, "/probe/env")[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert get(throttled, "/probe/env") == (429, {"message": "Too Many Requests"})
    assert get(throttled, "/other/env")[0] == 200, "each route has its own limit"
