"""Shared fixtures: configuration, moto in-process, and the local stack over HTTP.

The environment is set before anything imports flowdeploy, because the settings
are read once per process, as in Lambda.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    FLOWS_TABLE="FlowsTable",
    DEPLOYMENTS_TABLE="DeploymentsTable",
    FLOW_RUNS_TABLE="FlowRunsTable",
    API_KEYS_TABLE="ApiKeysTable",
    WALLETS_TABLE="WalletsTable",
    CONNECTIONS_TABLE="ConnectionsTable",
    # The WebSocket API's management API: moto's mock answers it in-process.
    WEBSOCKET_ENDPOINT="https://localws.execute-api.us-east-1.amazonaws.com/ws",
    KV_STORE_TABLE="KvStoreTable",
    # The key's alias: the key id is new in every moto context, its alias is not.
    WALLET_KEY_ID="alias/flowdeploy/wallets",
    FLOW_RUN_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/FlowRunQueue",
    JWT_SECRET=JWT_SECRET,
    RUN_TOKEN_SECRET="unit-test-run-token-secret",
    POWERTOOLS_SERVICE_NAME="flowdeploy",
    POWERTOOLS_LOG_LEVEL="WARNING",
    POWERTOOLS_METRICS_NAMESPACE="flowdeploy",
)
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "JWT_SECRET_PARAMETER", "RUN_TOKEN_SECRET_ARN"):
    os.environ.pop(name, None)
# JavaScript nodes: the Deno that `make test` installs (pytest run by hand finds it too).
if (ROOT / ".tools" / "deno" / "deno").is_file():
    os.environ.setdefault("DENO_PATH", str(ROOT / ".tools" / "deno" / "deno"))

# Before any botocore session exists, so the round-trip tests see every AWS call, and the
# IAM test every call a function makes: in-process handlers here, the local stack's and
# `make invoke`'s in their own processes, all into this directory.
from flowdeploy.local import calls  # noqa: E402

# `make test` runs the suite in parallel workers and then the IAM judgement in a session of
# its own: all of them share the directory it names. Alone, a session uses a directory of its own.
if os.environ.get("FLOWDEPLOY_CALL_RECORDS"):
    CALL_RECORDS = Path(os.environ["FLOWDEPLOY_CALL_RECORDS"])
    CALL_RECORDS.mkdir(parents=True, exist_ok=True)
else:
    CALL_RECORDS = Path(tempfile.mkdtemp(prefix="flowdeploy-calls-"))
    atexit.register(shutil.rmtree, CALL_RECORDS, ignore_errors=True)
calls.record_to(CALL_RECORDS)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Which test files this session ran, beside its calls: the IAM judgement, in a later
    session, knows whether the calls it judges are those of the whole suite."""
    if os.environ.get("FLOWDEPLOY_CALL_RECORDS") and session.items:
        ran = sorted({str(Path(str(item.path)).resolve()) for item in session.items})
        (CALL_RECORDS / f"tests-{os.getpid()}.txt").write_text("\n".join(ran) + "\n")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked after_everything judge what the others did: they go last."""
    items.sort(key=lambda item: item.get_closest_marker("after_everything") is not None)


def token_for(user_id: str, secret: str = JWT_SECRET, lifetime: int = 3600) -> str:
    from flowdeploy.auth import issue_access_token

    return issue_access_token(user_id, secret.encode(), lifetime)


def new_user() -> str:
    return str(uuid.uuid4())


# -- moto in-process ---------------------------------------------------------


def _reuse_what_every_test_would_rebuild() -> None:
    """Each test gets fresh moto backends, and with them a fresh botocore session (moto
    drops the default one) that would parse the same service models again, and KMS keys
    for which moto generates an RSA key even when they are symmetric: together about half
    a second per test. The parsed models are read-only, shared as within one session; the
    RSA key of a key spec is the same for every test (no test uses it).
    """
    import functools

    import botocore.loaders
    import botocore.session
    import moto.kms.models

    load_file = botocore.loaders.JSONFileLoader.load_file
    parsed: dict[str, Any] = {}

    def cached_load_file(self: Any, file_path: str) -> Any:
        if file_path not in parsed:
            parsed[file_path] = load_file(self, file_path)
        return parsed[file_path]

    botocore.loaders.JSONFileLoader.load_file = cached_load_file  # type: ignore[method-assign]
    # One loader for every session: it also caches which services and versions exist,
    # found by listing botocore's data directories.
    shared_loader = botocore.loaders.create_loader()
    create_loader = botocore.session.Session._register_data_loader

    def register_shared_loader(self: Any) -> None:
        create_loader(self)
        self._components.lazy_register_component("data_loader", lambda: shared_loader)

    botocore.session.Session._register_data_loader = register_shared_loader  # type: ignore[method-assign]
    moto.kms.models.generate_private_key = functools.cache(moto.kms.models.generate_private_key)


_reuse_what_every_test_would_rebuild()


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """Fresh in-memory DynamoDB, SQS and KMS with the tables, queues and keys of template.yaml."""
    from moto import mock_aws

    from flowdeploy.local.stack import provision
    from flowdeploy.local.template import Template

    with mock_aws():
        names = provision(Template(ROOT / "template.yaml"))
        assert names["FlowRunQueue"] == os.environ["FLOW_RUN_QUEUE_URL"]
        assert names["WalletKeyAlias"] == os.environ["WALLET_KEY_ID"]
        yield names


# -- the local stack as a subprocess ----------------------------------------


class Stack:
    def __init__(
        self,
        process: subprocess.Popen[str],
        url: str,
        log: Path,
        aws_endpoint: str,
        solana_url: str,
        ws_url: str,
    ) -> None:
        self.process = process
        self.url = url
        self.log = log
        self.aws_endpoint = aws_endpoint  # the stack's moto server (DynamoDB, SQS, S3)
        self.solana_url = solana_url  # the stack's local Solana RPC (LiteSVM)
        self.ws_url = ws_url  # the stack's WebSocket API (ws://…/ws)


def _copy_lines(source: Any, log: Path) -> None:
    with log.open("a") as sink:
        for line in source:
            sink.write(line)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`python -m flowdeploy.local` on a free port, as `make dev` runs it, with the optional
    trigger queue switched on (`make dev PARAMS=TriggerQueueEnabled=true`).
    """
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOW", "JWT_"))}
    env.pop("RUN_TOKEN_SECRET", None)
    env["JWT_SECRET"] = JWT_SECRET
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowdeploy.local",
                "--port",
                "0",
                "--solana-port",
                "0",
                "--parameter",
                "TriggerQueueEnabled=true",
                "--record-calls",
                str(CALL_RECORDS),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline and "URL" not in printed:
        line = process.stdout.readline()
        if not line:
            break
        found = re.match(r"FLOWDEPLOY_(URL|AWS_ENDPOINT|SOLANA_RPC|WS_URL)=(\S+)", line)
        if found:
            printed[found.group(1)] = found.group(2)
    if "URL" not in printed:
        process.kill()
        pytest.fail(f"local stack did not start:\n{log.read_text()}")
    # Keep reading its stdout (the functions' logs): a full pipe would block every log call.
    threading.Thread(target=_copy_lines, args=(process.stdout, log), daemon=True).start()
    yield Stack(
        process,
        printed["URL"],
        log,
        printed["AWS_ENDPOINT"],
        printed["SOLANA_RPC"],
        printed["WS_URL"],
    )
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
