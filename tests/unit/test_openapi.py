"""GET /openapi.json: one document for every route of every function, and GET /docs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import TypeAdapter

from flowdeploy.http import openapi
from flowdeploy.local.template import Template
from flowdeploy.store import queue
from tests.conftest import ROOT, new_user
from tests.unit.api import Api, sqs_event
from tests.unit.engine.flows import edge, node
from tests.unit.test_template import NO_CREDENTIALS

TEMPLATE = Template(ROOT / "template.yaml")
WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"


@pytest.fixture
def doc(api: Api) -> dict[str, Any]:
    reply = api.call("GET", "/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    return dict(reply.body)


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }


def test_the_document_is_openapi_3(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == openapi.TITLE


def test_every_route_of_the_template_is_documented_and_nothing_else(doc: dict[str, Any]) -> None:
    # ANY routes only carry other methods to the function that answers 405 for them.
    declared = {(r.method, r.path) for r in TEMPLATE.routes() if r.method != "ANY"}
    assert set(operations(doc)) == declared


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    names = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert names
    assert names <= set(doc["components"]["schemas"])
    assert names == set(doc["components"]["schemas"]), "no unused schemas"


def test_every_operation_documents_its_success_errors_and_credentials(
    doc: dict[str, Any],
) -> None:
    schemes = set(doc["components"]["securitySchemes"])
    for key, operation in operations(doc).items():
        codes = {int(code) for code in operation["responses"]}
        successes = {c for c in codes if c < 300}
        assert len(successes) == 1, key
        (success,) = successes
        if success != 204:
            assert operation["responses"][str(success)]["content"], key
        # Solana Actions answer the specification's ActionError {"message"}, to any wallet.
        action = key[1].startswith(("/action/", "/actions"))
        error_body = "ActionError" if action else "ErrorBody"
        for code in codes - successes - {304}:
            content = operation["responses"][str(code)]["content"]["application/json"]
            assert content["schema"] == {"$ref": f"#/components/schemas/{error_body}"}, key
        security = operation.get("security")
        if key[1] in {"/openapi.json", "/docs", "/"} or action or " ".join(key) in NO_CREDENTIALS:
            assert security is None
        else:
            assert security
            assert {name for alternative in security for name in alternative} <= schemes
            assert 401 in codes, key


@pytest.mark.parametrize(
    ("route", "model"),
    [
        (("POST", "/flow"), "FlowBody"),
        (("PUT", "/flow/{flow_id}"), "FlowBody"),
        (("PATCH", "/deployment/{deployment_id}"), "DeploymentChanges"),
        (("PUT", "/flow/{flow_id}/tags/{tag}"), "TagBody"),
        (("POST", "/deployment/start"), "StartDeploymentParams"),
        (("POST", "/apikey"), "NewApiKey"),
        (("POST", "/wallet"), "NewWallet"),
        (("POST", "/wallets/upsert"), "UpsertWalletBody"),
        (("POST", "/signature/submit"), "SubmitSignatureParams"),
        (("POST", "/flow_run/{run_id}/signature"), "RunSignatureParams"),
        (("POST", "/flow/stop/{run_id}"), "StopFlowParams"),
        (("POST", "/deployment/read"), "ReadDeploymentParams"),
        (("POST", "/auth/init"), "InitAuthParams"),
        (("POST", "/auth/confirm"), "ConfirmAuthParams"),
    ],
)
def test_each_body_is_documented_with_its_model(
    doc: dict[str, Any], route: tuple[str, str], model: str
) -> None:
    body = operations(doc)[route]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{model}"}
    optional = {"/deployment/start", "/flow/stop/{run_id}", "/deployment/read"}
    assert body["required"] is (route[1] not in optional)


def test_the_start_documents_its_query_and_the_idempotency_key(doc: dict[str, Any]) -> None:
    start = operations(doc)[("POST", "/deployment/start")]
    assert [(p["name"], p["in"]) for p in start["parameters"]] == [
        ("id", "query"),
        ("flow", "query"),
        ("tag", "query"),
        ("Idempotency-Key", "header"),
    ]
    assert {"409", "503"} <= set(start["responses"])
    assert {"publicKey": []} in start["security"]


def test_the_patch_body_schema_lists_only_the_customizable_columns(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["DeploymentChanges"]
    assert set(schema["properties"]) == {
        "start_permission",
        "output_instructions",
        "action_identity",
        "fees",
        "solana_network",
        "compute_unit_price",
        "action_title",
        "action_icon",
        "action_description",
        "action_label",
    }
    assert schema["additionalProperties"] is False


def test_the_wallet_body_documents_the_keypair_as_a_write_only_secret(
    doc: dict[str, Any],
) -> None:
    schema = doc["components"]["schemas"]["NewWallet"]
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    keypair = schema["properties"]["keypair"]["anyOf"][0]
    assert (keypair["format"], keypair["writeOnly"]) == ("password", True)


def test_docs_serve_swagger_ui_for_the_document_with_nothing_from_a_cdn(api: Api) -> None:
    reply = api.gateway.handle("GET", "/docs", {"host": "localhost"}, b"")
    status, headers, payload = reply
    page = payload.decode()
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page
    assert '"/deployment/start"' in page
    assert not re.search(r"""<(script|link)[^>]+(src|href)=["']https?://""", page)


def test_the_pages_json_link_answers_the_document(api: Api, doc: dict[str, Any]) -> None:
    _, _, page = api.gateway.handle("GET", "/docs", {"host": "localhost"}, b"")
    assert '"?format=json"' in page.decode(), "the link Swagger UI shows"
    reply = api.call("GET", "/docs?format=json")
    assert (reply.status, reply.headers["content-type"]) == (200, "application/json")
    assert reply.body == doc
    assert api.call("GET", "/docs?format=yaml").status == 400


def test_the_root_is_an_index_with_the_docs_link_and_every_route(
    api: Api, doc: dict[str, Any]
) -> None:
    reply = api.call("GET", "/", headers={"host": "api.example.com", "x-forwarded-proto": "https"})
    assert reply.status == 200
    assert reply.body["docs"] == "https://api.example.com/docs"
    assert reply.body["openapi"] == "https://api.example.com/openapi.json"
    assert set(reply.body["routes"]) == {f"{m} {p}" for m, p in operations(doc)}
    assert "POST /deployment/start" in reply.body["routes"]
    assert api.call("POST", "/").status == 405


def validate(model: Any, body: Any) -> None:
    TypeAdapter(model).validate_python(body, strict=False)


def test_real_responses_have_exactly_the_documented_shapes(api: Api) -> None:
    """Each documented model forbids extra fields, so a drift between code and document fails."""
    owner = new_user()
    created = api.call("POST", "/flow", user=owner, json_body={"name": "shapes"})
    validate(openapi.FlowCreated, created.body)
    flow_id = created.body["flow_id"]
    validate(openapi.Flow, api.call("GET", f"/flow/{flow_id}", user=owner).body)
    deployed = api.call("POST", f"/flow/deploy/{flow_id}", user=owner)
    validate(openapi.DeploymentCreated, deployed.body)
    deployment_id = deployed.body["deployment_id"]
    validate(openapi.Deployment, api.call("GET", f"/deployment/{deployment_id}", user=owner).body)
    patched = api.call(
        "PATCH", f"/deployment/{deployment_id}", user=owner, json_body={"fees": [[WALLET, 1]]}
    )
    validate(openapi.Deployment, patched.body)
    listed = api.call("GET", f"/flow/{flow_id}/deployments", user=owner).body
    validate(openapi.DeploymentPage, listed)
    tag = api.call(
        "PUT", f"/flow/{flow_id}/tags/v1", user=owner, json_body={"deployment_id": deployment_id}
    )
    validate(openapi.Tag, tag.body)
    validate(openapi.TagPage, api.call("GET", f"/flow/{flow_id}/tags", user=owner).body)
    started = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner)
    validate(openapi.StartedRun, started.body)
    run = api.call("GET", f"/flow_run/{started.body['flow_run_id']}", user=owner)
    validate(openapi.FlowRun, run.body)
    runs = api.call("GET", f"/deployment/{deployment_id}/flow_runs", user=owner).body
    validate(openapi.FlowRunPage, runs)
    key = api.call("POST", "/apikey", user=owner, json_body={"name": "k"})
    validate(openapi.CreatedApiKey, key.body)
    validate(openapi.ApiKeyPage, api.call("GET", "/apikey", user=owner).body)
    validate(openapi.Wallet, api.call("POST", "/wallet", user=owner, json_body={"name": "w"}).body)
    validate(openapi.WalletPage, api.call("GET", "/wallet", user=owner).body)
    validate(openapi.FlowPage, api.call("GET", "/flow", user=owner).body)
    validate(openapi.ErrorBody, api.call("GET", "/flow/99", user=owner).body)


def test_run_records_have_exactly_the_documented_shapes(api: Api) -> None:
    owner = new_user()
    nodes = [node("c", "const", value=1), node("l", "log"), node("bad", "div", a=1, b=0)]
    flow_id = api.create_flow(owner, nodes=nodes, edges=[edge("c", "l", into="message")])
    deployment_id = api.deploy(owner, flow_id)
    run_id = api.call("POST", f"/deployment/start?id={deployment_id}", user=owner).body[
        "flow_run_id"
    ]
    api.functions.invoke("RunFunction", sqs_event(queue.message_body(run_id)))
    page = api.call("GET", f"/flow_run/{run_id}/nodes", user=owner).body
    assert page["nodes"]
    validate(openapi.NodeRunPage, page)
    logs = api.call("GET", f"/flow_run/{run_id}/logs", user=owner).body
    assert logs["logs"]
    validate(openapi.RunLogPage, logs)
    stopped = api.call("POST", f"/flow_run/{run_id}/stop", user=owner)
    assert stopped.status == 409
    validate(openapi.ErrorBody, stopped.body)


def test_every_documented_shape_refuses_fields_it_does_not_name() -> None:
    shapes = [
        openapi.FlowCreated,
        openapi.Flow,
        openapi.DeploymentCreated,
        openapi.Deployment,
        openapi.Tag,
        openapi.StartedRun,
        openapi.FlowRun,
        openapi.NodeRun,
        openapi.NodeRunPage,
        openapi.RunLogLine,
        openapi.RunLogPage,
        openapi.ApiKey,
        openapi.CreatedApiKey,
        openapi.Wallet,
        openapi.SignatureRequest,
        openapi.Presigner,
        openapi.SignatureAccepted,
        openapi.Success,
        openapi.AuthMessage,
        openapi.Session,
        openapi.SessionUser,
        openapi.ConfirmedAuth,
        openapi.ClaimedToken,
        openapi.WalletRow,
    ]
    for shape in shapes:
        assert shape.model_config.get("extra") == "forbid", shape
