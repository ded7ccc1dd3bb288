"""template.yaml, the handlers, the models and events/ agree with one another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from flowdeploy.local.samples import SAMPLE_PARAMETERS, sample_events
from flowdeploy.local.template import Template
from flowdeploy.store.models import (
    ApiKeyItem,
    DeploymentsRecord,
    FlowItem,
    FlowRunItem,
    WalletsRecord,
)
from tests.conftest import CALL_RECORDS, ROOT
from tests.unit.api import Api

TEMPLATE = Template(ROOT / "template.yaml")


def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted(((k["AttributeName"], k["KeyType"]) for k in schema), key=lambda k: k[1])


def key_schema(model: Any) -> list[tuple[str, str]]:
    return keys(model._get_schema()["key_schema"])


def index_schemas(model: Any) -> dict[str, list[tuple[str, str]]]:
    indexes = model._get_schema()["global_secondary_indexes"]
    return {index["index_name"]: keys(index["key_schema"]) for index in indexes}


@pytest.mark.parametrize(
    ("table", "model"),
    [
        ("FlowsTable", FlowItem),
        ("DeploymentsTable", DeploymentsRecord),
        ("FlowRunsTable", FlowRunItem),
        ("ApiKeysTable", ApiKeyItem),
        ("WalletsTable", WalletsRecord),
    ],
)
def test_each_table_has_the_keys_its_model_uses(table: str, model: Any) -> None:
    declared = TEMPLATE.tables()[table]
    assert keys(declared["KeySchema"]) == key_schema(model)
    assert declared["BillingMode"] == "PAY_PER_REQUEST"
    props = TEMPLATE.resources[table]["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize(
    ("table", "models", "ttl"),
    [
        ("SignatureRequestsTable", ["SignatureRequestItem"], "remove_at"),
        ("SignInTable", ["WalletUserItem", "UsedNonceItem"], "remove_at"),
        ("ReadCacheTable", ["CachedReadItem"], "expires_at"),
        ("ConnectionsTable", ["ConnectionItem", "SubscriptionItem"], "remove_at"),
    ],
)
def test_the_tables_of_the_client_protocol_match_their_models_and_expire_items(
    table: str, models: list[str], ttl: str
) -> None:
    from flowdeploy.store import models as declared

    props = TEMPLATE.resources[table]["Properties"]
    for name in models:
        model = getattr(declared, name)
        assert keys(props["KeySchema"]) == key_schema(model), name
        assert model.Meta.table_name == table
    assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert ttl in getattr(declared, models[-1]).get_attributes()


def test_the_idempotency_table_has_the_keys_and_ttl_powertools_uses() -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    layer = DynamoDBPersistenceLayer(table_name="IdempotencyTable")
    props = TEMPLATE.resources["IdempotencyTable"]["Properties"]
    assert keys(props["KeySchema"]) == [(layer.key_attr, "HASH")]
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": layer.expiry_attr,
        "Enabled": True,
    }
    start_env = TEMPLATE.functions()["StartFunction"].environment
    assert start_env["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}


def test_the_live_runs_table_has_the_keys_its_model_uses_and_every_starter_knows_it() -> None:
    from flowdeploy.store.models import LiveRunsItem

    declared = TEMPLATE.tables()["LiveRunsTable"]
    assert keys(declared["KeySchema"]) == key_schema(LiveRunsItem)
    for function in ("StartFunction", "TriggerFunction", "ActionsFunction"):
        env = TEMPLATE.functions()[function].environment
        assert env["LIVE_RUNS_TABLE"] == {"Ref": "LiveRunsTable"}
        assert env["MAX_LIVE_RUNS_PER_USER"] == {"Ref": "MaxLiveRunsPerUser"}
    assert TEMPLATE.parameter_defaults()["MaxLiveRunsPerUser"] == 10


def test_each_index_a_model_queries_is_declared_with_the_same_keys() -> None:
    from flowdeploy.store.models import DeploymentItem, TagItem

    declared = {
        index["IndexName"]: keys(index["KeySchema"])
        for table in TEMPLATE.tables().values()
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    for model in (DeploymentItem, TagItem, FlowRunItem, ApiKeyItem, FlowItem):
        for name, schema in index_schemas(model).items():
            assert declared[name] == schema, name
    assert declared["EntrypointTagIndex"] == [("entrypoint", "HASH"), ("tag", "RANGE")]


def test_the_flow_list_index_projects_what_the_list_shows() -> None:
    from flowdeploy.store.flows import summary_row
    from flowdeploy.store.models import FLOW_SUMMARY

    (index,) = TEMPLATE.tables()["FlowsTable"]["GlobalSecondaryIndexes"]
    # export and import read `source` from it too
    assert index["Projection"]["NonKeyAttributes"] == [*FLOW_SUMMARY, "source"]
    assert set(summary_row(FlowItem(id=1, user_id="u"))) == {"id", "user_id", *FLOW_SUMMARY}


def test_the_queue_redrives_to_a_dead_letter_queue_after_three_receives() -> None:
    props = TEMPLATE.queues()["FlowRunQueue"]
    assert props["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "FlowRunMaxReceives"}
    assert TEMPLATE.parameter_defaults()["FlowRunMaxReceives"] == 3
    assert props["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["FlowRunDeadLetterQueue", "Arn"]
    }


def test_every_delivery_of_a_run_message_happens_before_the_sweeper_gives_up_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flowdeploy.settings import Settings

    timing = TEMPLATE.mappings["FlowRunQueue"]["Timing"]
    visibility, retention = timing["VisibilityTimeoutSeconds"], timing["RetentionSeconds"]
    queue = TEMPLATE.resolve(TEMPLATE.queues()["FlowRunQueue"], {"FlowRunDeadLetterQueue.Arn": ""})
    assert (queue["VisibilityTimeout"], queue["MessageRetentionPeriod"]) == (visibility, retention)
    most_receives = TEMPLATE.doc["Parameters"]["FlowRunMaxReceives"]["MaxValue"]
    assert most_receives * visibility < retention, "the last delivery must come before expiry"
    sweeper_env = TEMPLATE.functions()["SweeperFunction"].environment
    timing_env = ("FLOW_RUN_QUEUE_RETENTION_SECONDS", "FLOW_RUN_VISIBILITY_TIMEOUT_SECONDS")
    for name in timing_env:
        monkeypatch.setenv(name, str(TEMPLATE.resolve(sweeper_env[name], {})))
    threshold = Settings.from_env().flow_run_queued_timeout_seconds
    assert threshold == retention + visibility > most_receives * visibility
    for name in timing_env:
        monkeypatch.delenv(name)
    assert Settings.from_env().flow_run_queued_timeout_seconds == threshold, "local default"


def test_stateful_resources_outlive_the_stack_and_are_never_replaced() -> None:
    for name, resource in TEMPLATE.doc["Resources"].items():
        kind = resource["Type"]
        policies = (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        if kind in {"AWS::KMS::Key", "AWS::SecretsManager::Secret", "AWS::S3::Bucket"}:
            assert policies == ("Retain", "Retain"), name
        elif kind == "AWS::DynamoDB::Table":
            # Data that expires by itself (TTL: idempotency records, caches) or only counts
            # what is live (LiveRunsTable: places come back as runs end) may go with the
            # stack, said explicitly; users' data is kept.
            expires = "TimeToLiveSpecification" in resource["Properties"]
            transient = expires or name == "LiveRunsTable"
            assert policies == ("Retain", "Retain") or (
                transient and policies == ("Delete", "Delete")
            ), name
        elif kind == "AWS::SQS::Queue":
            assert policies == ("Delete", "Delete"), name


def test_alarms_notify_the_optional_topic() -> None:
    alarms = TEMPLATE.doc["Resources"]
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    found = [r for r in alarms.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert found
    for alarm in found:
        assert alarm["Properties"]["AlarmActions"] == alarm["Properties"]["OKActions"] == topic
    assert TEMPLATE.parameter_defaults()["AlarmTopicArn"] == ""
    with_topic = Template(
        ROOT / "template.yaml", {"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"}
    )
    resolved = with_topic.resolve(
        alarms["FlowRunDeadLetterAlarm"]["Properties"]["AlarmActions"], {}
    )
    assert resolved == ["arn:aws:sns:us-east-1:123456789012:ops"]


def test_run_concurrency_and_api_throttling_are_parameters() -> None:
    (source,) = TEMPLATE.functions()["RunFunction"].sqs_queues
    assert (source.queue, source.batch, source.max_concurrency) == ("FlowRunQueue", 10, 10)
    assert TEMPLATE.functions()["RunFunction"].reserved_concurrency is None
    limits = TEMPLATE.route_throttling()
    assert limits["POST /flow/deploy/{flow_id}"] == limits["$default"] == (100.0, 200)
    assert limits["POST /signature/submit"] == (100.0, 100), "RouteSettings override it"
    tuned = Template(
        ROOT / "template.yaml",
        {
            "FlowRunMaxConcurrency": "3",
            "RunFunctionReservedConcurrency": "5",
            "ApiThrottlingRateLimit": "7",
            "ApiThrottlingBurstLimit": "9",
        },
    )
    run = tuned.functions()["RunFunction"]
    assert (run.sqs_queues[0].max_concurrency, run.reserved_concurrency) == (3, 5)
    assert tuned.route_throttling()["POST /flow/deploy/{flow_id}"] == (7.0, 9)


def test_functions_run_python_3_13_on_arm64_with_the_shared_layer() -> None:
    globals_ = TEMPLATE.doc["Globals"]["Function"]
    assert (globals_["Runtime"], globals_["Architectures"]) == ("python3.13", ["arm64"])
    assert globals_["Layers"] == [{"Ref": "CommonLayer"}]
    env = globals_["Environment"]["Variables"]
    assert "JWT_SECRET" not in env, "the secret comes from SSM, never a literal"
    assert env["JWT_SECRET_PARAMETER"] == {"Ref": "JwtSecretParameterName"}
    # Deploys and runs read one node-run limit.
    assert env["FLOW_MAX_NODE_RUNS"] == {"Ref": "FlowMaxNodeRuns"}
    assert TEMPLATE.parameter_defaults()["FlowMaxNodeRuns"] == 10_000


def test_the_documented_routes_go_to_the_documented_functions() -> None:
    routes = {(r.method, r.path): r.function for r in TEMPLATE.routes() if r.method != "ANY"}
    assert routes[("POST", "/flow/deploy/{flow_id}")] == "DeployFunction"
    assert routes[("POST", "/deployment/start")] == "StartFunction"
    assert routes[("GET", "/openapi.json")] == routes[("GET", "/docs")] == "DocsFunction"
    assert routes[("GET", "/")] == "DocsFunction"
    assert routes[("GET", "/deployment/read")] == routes[("POST", "/deployment/read")]
    assert routes[("GET", "/deployment/read")] == "ReadFunction"
    actions = {(m, p) for (m, p), f in routes.items() if f == "ActionsFunction"}
    assert actions == {
        ("GET", "/actions.json"),
        ("OPTIONS", "/actions.json"),
        ("GET", "/actions/icon.svg"),
        ("GET", "/action/{deployment_id}"),
        ("OPTIONS", "/action/{deployment_id}"),
        ("POST", "/action/{deployment_id}"),
    }
    special = {"/flow/deploy/{flow_id}", "/deployment/start", "/openapi.json", "/docs", "/"}
    others = {
        f
        for (m, p), f in routes.items()
        if p not in special | {"/deployment/read"} and (m, p) not in actions
    }
    assert others == {"ApiFunction"}


def test_deployment_read_is_not_taken_for_a_deployment_id() -> None:
    """API Gateway prefers the literal route; the local stack routes as it does."""
    from flowdeploy.local.devserver import Gateway

    gateway = Gateway(TEMPLATE)  # routing only: no function runs
    found = gateway.route("GET", "/deployment/read")
    assert found is not None and found[0].function == "ReadFunction"
    found = gateway.route("GET", "/deployment/0194e5ac-9103-7c52-971e-f71f83c5de2e")
    assert found is not None and found[0].path == "/deployment/{deployment_id}"


# Routes that take no credentials, as upstream's: a signature proves itself, and a sign-in
# is how a wallet gets credentials.
NO_CREDENTIALS = {
    "POST /signature/submit",
    "POST /auth/init",
    "POST /auth/confirm",
    # upstream's api_input URL: its key is the credential
    "POST /flow/submit/{key}",
    "DELETE /flow/submit/{key}",
    "GET /nodes",  # the command catalogue is public
}


@pytest.mark.parametrize(
    "route", [r for r in TEMPLATE.routes() if r.method != "ANY"], ids=lambda r: r.route_key
)
def test_every_route_of_the_template_has_a_handler(aws: dict[str, Any], route: Any) -> None:
    path = route.path.replace("{flow_id}", "1").replace("{deployment_id}", "x")
    path = path.replace("{run_id}", "x").replace("{key_id}", "x").replace("{tag}", "x")
    path = path.replace("{wallet_id}", "x").replace("{key}", "x")
    status, _, body = Api().gateway.handle(route.method, path, {"host": "localhost"}, b"")
    if route.function == "ActionsFunction":  # public: a wallet sends no credentials
        expected = 404 if "{deployment_id}" in route.path else 200  # no deployment "x"
        assert status == expected, (route.route_key, body)
    elif route.function == "DocsFunction" or route.route_key == "GET /nodes":
        assert status == 200, (route.route_key, body)
    elif route.route_key == "DELETE /flow/submit/{key}":  # no api_input waits at key "x"
        assert status == 404, (route.route_key, body)
    elif route.route_key in NO_CREDENTIALS:  # the body is what they check first
        assert status == 400 and b"body is required" in body, (route.route_key, body)
    else:
        assert status == 401, (route.route_key, body)


WEBSOCKET_SAMPLES = sorted(name for name in sample_events() if name.startswith("ws_"))


@pytest.mark.parametrize("name", sorted(set(sample_events()) - set(WEBSOCKET_SAMPLES)))
def test_each_sample_event_runs_with_make_invoke(name: str) -> None:
    function, _ = sample_events()[name]
    parameters = [f"--parameter={k}={v}" for k, v in SAMPLE_PARAMETERS.get(name, {}).items()]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowdeploy.local.invoke",
            function,
            f"events/{name}",
            *parameters,
            f"--record-calls={CALL_RECORDS}",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "JWT_SECRET"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    if "Records" in sample_events()[name][1]:
        assert result == {"batchItemFailures": []}
    elif function == "TriggerFunction":
        assert set(result) == {"flow_run_ids"}
        assert len(result["flow_run_ids"]) == 1
    elif function == "SweeperFunction":
        assert result == {"failed": {"running": [], "queued": []}}
    else:
        assert result["statusCode"] in {200, 201}, result


# `make invoke`'s main() for each WebSocket route's sample, in one interpreter (each call has
# fresh tables, as each `make invoke` has): what it printed, and what it posted; its AWS calls
# are recorded for the IAM test.
_INVOKE_EACH = """
import contextlib, io, json, sys
from flowdeploy.local.invoke import main
from flowdeploy.local.samples import sample_events
found, calls = {}, sys.argv[1]
for name in sys.argv[2:]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([sample_events()[name][0], f"events/{name}", f"--record-calls={calls}"])
    lines = err.getvalue().splitlines()
    posted = [l.split(": ", 1)[1] for l in lines if l.startswith("posted to ")]
    found[name] = {"code": code, "result": json.loads(out.getvalue()), "posted": posted}
print(json.dumps(found))
"""


def test_each_websocket_sample_runs_with_make_invoke() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _INVOKE_EACH, str(CALL_RECORDS), *WEBSOCKET_SAMPLES],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "JWT_SECRET"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert set(found) == set(WEBSOCKET_SAMPLES) and len(found) == 6
    for name, ran in found.items():
        assert (ran["code"], ran["result"]) == (0, {"statusCode": 200}), name
        if sample_events()[name][0] == "WebSocketFunction":  # it posts its reply
            [message] = [json.loads(text) for text in ran["posted"]]
            assert message["id"] == json.loads(sample_events()[name][1]["body"])["id"]
            assert ("Err" in message) == (name == "ws_default.json"), message


def test_events_folder_is_what_make_events_writes() -> None:
    on_disk = {p.name: json.loads(p.read_text()) for p in (ROOT / "events").glob("*.json")}
    assert on_disk == {name: event for name, (_, event) in sample_events().items()}
