"""Cold start: a fresh interpreter until the handler is ready (imports + module-level init).

Each handler is imported in 7 fresh processes, interleaved with a baseline handler that
imports only boto3 and Powertools' resolver and creates one DynamoDB client; the median of
each is compared. Each process also reports which heavy modules it loaded, so a handler
that starts importing solders (or the engine, or an HTTP client) at module level shows up.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

from bench.report import LAYER, ROOT, Row, median, print_rows, python

RUNS = 7
# name -> (folder the handler module runs in, module, budget: × the baseline)
HANDLERS: dict[str, tuple[Path, str, float | None]] = {
    "DeployFunction": (ROOT / "functions" / "deploy", "app", 1.3),
    "StartFunction": (ROOT / "functions" / "start", "app", 1.3),
    "ApiFunction": (ROOT / "functions" / "api", "app", 1.3),
    # Loads the engine only when a read misses the cache, never at init.
    "ReadFunction": (ROOT / "functions" / "read", "app", 1.3),
    "RunFunction": (ROOT / "functions" / "run", "app", 1.6),
    "TriggerFunction": (ROOT / "functions" / "trigger", "app", None),
    "DocsFunction": (ROOT / "functions", "docs.app", None),
    # The WebSocket routes: never the engine; the management API client is made on first post.
    "WebSocketFunction": (ROOT / "functions" / "ws", "app", 1.3),
    "WebSocketConnectionFunction": (ROOT / "functions" / "ws_connect", "app", 1.3),
}
# Modules worth knowing about: heavy, or never meant for Lambda code.
WATCHED = (
    "lark",
    "flowdeploy.engine.rhai",
    "flowdeploy.engine.deno",
    "solders",
    "flowdeploy.solana",
    "flowdeploy.engine",
    "flowdeploy.engine.http_client",
    "flowdeploy.local",
    "moto",
    "yaml",
    "requests",
    "cryptography",
    "jwt",
    "pynamodb",
    "pydantic",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parameters",
)
# Loaded by a handler's import, any of these is a miss.
NEVER = ("solders", "flowdeploy.solana", "flowdeploy.engine.http_client", "flowdeploy.local")
NEVER += ("moto", "yaml", "requests")
# Script runtimes load when a flow has script nodes, never with a handler.
NEVER += ("lark", "flowdeploy.engine.rhai", "flowdeploy.engine.deno")
# The engine only where a request uses it: running (Run), deploying and saving flows (Deploy,
# Api validate them).
ENGINE_USERS = ("DeployFunction", "ApiFunction", "RunFunction")

# PyJWT imports `cryptography` when it is installed. The layer does not ship it
# (layers/common/requirements.txt: PyJWT without [crypto]; HS256 needs only hmac), but moto
# brings it into .venv; the child refuses it, as Lambda's python would not find it.
NOT_IN_LAYER = ("cryptography",)

CHILD = """
import json, sys, time

class NotInLayer:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {not_in_layer!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NotInLayer())
started = time.perf_counter()
{body}
ready = time.perf_counter()
watched = {watched!r}
print(json.dumps({{"ms": (ready - started) * 1000,
                  "modules": [m for m in watched if m in sys.modules]}}))
"""
BASELINE = """
import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
app = APIGatewayHttpResolver()
dynamodb = boto3.client("dynamodb")
"""


def lambda_environment() -> dict[str, str]:
    """What template.yaml gives a function in AWS (secrets stay unread until a request)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOW", "JWT"))}
    env.update(
        PYTHONPATH=str(LAYER),
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        FLOWS_TABLE="FlowsTable",
        DEPLOYMENTS_TABLE="DeploymentsTable",
        FLOW_RUNS_TABLE="FlowRunsTable",
        RUN_RECORDS_TABLE="RunRecordsTable",
        API_KEYS_TABLE="ApiKeysTable",
        IDEMPOTENCY_TABLE="IdempotencyTable",
        FLOW_RUN_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/FlowRunQueue",
        JWT_SECRET_PARAMETER="/flowdeploy/jwt-secret",
        RUN_TOKEN_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:run-token",
        POWERTOOLS_SERVICE_NAME="flowdeploy",
        POWERTOOLS_METRICS_NAMESPACE="flowdeploy",
        POWERTOOLS_LOG_LEVEL="INFO",
    )
    return env


def _once(name: str) -> dict[str, object]:
    if name == "baseline":
        folder, body = ROOT, BASELINE
    else:
        folder, module, _ = HANDLERS[name]
        body = f"import importlib; importlib.import_module({module!r})"
    code = CHILD.format(body=body, watched=WATCHED, not_in_layer=NOT_IN_LAYER)
    result: dict[str, object] = json.loads(python("-c", code, cwd=folder, env=lambda_environment()))
    return result


def measure(runs: int = RUNS) -> list[Row]:
    names = ["baseline", *HANDLERS]
    for name in names:  # warm the file cache and write .pyc files: not counted
        _once(name)
    times: dict[str, list[float]] = {name: [] for name in names}
    modules: dict[str, list[str]] = {}
    for _ in range(runs):
        random.shuffle(names)  # spread drift in the machine's load over every handler
        for name in names:
            result = _once(name)
            times[name].append(float(result["ms"]))  # type: ignore[arg-type]
            modules[name] = list(result["modules"])  # type: ignore[call-overload]
    base = median(times["baseline"])
    rows = [
        Row("cold start", "baseline (boto3 + resolver + 1 client)", "1.00×", note=f"{base:.0f} ms")
    ]
    for name, (_, _, budget) in HANDLERS.items():
        ms = median(times[name])
        ratio = ms / base
        loaded = modules[name]
        forbidden = [m for m in loaded if m in NEVER]
        if "flowdeploy.engine" in loaded and name not in ENGINE_USERS:
            forbidden.append("flowdeploy.engine")
        rows.append(
            Row(
                "cold start",
                name,
                f"{ratio:.2f}×",
                f"≤ {budget}×" if budget else "",
                None if budget is None else ratio <= budget,
                f"{ms:.0f} ms",
            )
        )
        rows.append(
            Row(
                "cold start",
                f"{name} heavy modules",
                ", ".join(m for m in loaded if m in (*NEVER, "flowdeploy.engine")) or "none",
                "only where used",
                not forbidden,
                "also: " + ", ".join(m for m in loaded if m not in (*NEVER, "flowdeploy.engine")),
            )
        )
    return rows


if __name__ == "__main__":
    sys.exit(print_rows(measure()))
