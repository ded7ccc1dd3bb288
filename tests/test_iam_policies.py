"""IAM proven from recorded calls: every AWS call a function made during this test session —
the handlers in-process, the local stack's execution environments, `make invoke` of every
events/ file — is allowed by that function's role as SAM builds it from template.yaml, and
every grant of those roles is needed by some call.

These run after every other test of the session (tests/conftest.py orders them last): the
other tests make the calls. Set IAM_REPORT=<file> to also write the judged requests there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CALL_RECORDS, ROOT
from tests.iam import (
    RUNTIME_GRANTS,
    Grant,
    Principal,
    Recorded,
    canonical_names,
    grants,
    judge,
    needed_by,
    principals,
    recorded_calls,
    resource_policies,
    template_expressions,
)

pytestmark = pytest.mark.after_everything
OPERATOR = "Operator (make redrive)"
# The integration tests' local stack runs with the trigger queue on: judge that template.
PARAMETERS = {"TriggerQueueEnabled": "true"}


@pytest.fixture(scope="module")
def template() -> Any:
    from flowdeploy.local.template import Template

    return Template(ROOT / "template.yaml", PARAMETERS)


@pytest.fixture(scope="module")
def roles(template: Any) -> dict[str, Principal]:
    found = principals(template)
    found[OPERATOR] = Principal(
        OPERATOR, "arn:aws:iam::123456789012:user/operator", [operator_policy()]
    )
    return found


@pytest.fixture(scope="module")
def calls() -> list[Recorded]:
    found = recorded_calls(CALL_RECORDS)
    if not found:
        pytest.skip("no AWS call was recorded: run these with the tests that make them")
    return found


def operator_policy() -> dict[str, Any]:
    """The operator policy the README documents for `make redrive`, for this test's stack."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- operator policy: make redrive -->\s*```json\n(.*?)```", readme, re.S)
    assert found, "README.md documents the operator policy of make redrive"
    text = found.group(1)
    for placeholder, value in {"REGION": "us-east-1", "ACCOUNT": "123456789012"}.items():
        text = text.replace(f"<{placeholder}>", value)
    return {
        "name": "README operator policy",
        "policy": json.loads(text.replace("<STACK>", "flowdeploy")),
    }


def test_every_recorded_aws_call_is_allowed_by_the_role_of_the_function_that_made_it(
    template: Any, roles: dict[str, Principal], calls: list[Recorded]
) -> None:
    unknown = sorted({c.principal for c in calls} - set(roles))
    assert not unknown, f"calls by principals template.yaml does not define: {unknown}"
    verdicts = judge(calls, roles, resource_policies(template))
    report = os.environ.get("IAM_REPORT")
    if report:
        Path(report).write_text(_report(calls, verdicts))
    expressions = template_expressions(template)
    refused = [
        _refusal(call, verdict, expressions)
        for call, verdict in zip(calls, verdicts, strict=True)
        if verdict["decision"] != "Allowed" or verdict["errors"]
    ]
    assert not refused, "AWS would refuse these calls:\n\n" + "\n\n".join(refused)


def test_every_grant_is_needed_by_a_recorded_call(
    request: pytest.FixtureRequest, roles: dict[str, Principal], calls: list[Recorded]
) -> None:
    ran = {Path(str(item.path)).resolve() for item in request.session.items}
    for listing in CALL_RECORDS.glob("tests-*.txt"):  # `make test`'s earlier sessions
        ran.update(Path(line) for line in listing.read_text().splitlines() if line)
    missing = _test_files() - ran
    if missing:
        pytest.skip(f"judges grants only after the whole suite ({len(missing)} files not run)")
    unused = [
        grant
        for principal in roles.values()
        for grant in grants(principal)
        if grant.action not in RUNTIME_GRANTS and not needed_by(grant, calls)
    ]
    assert not unused, (
        "no recorded call needs these grants; remove them, or keep each with a comment "
        "naming the rare path that needs it and a test that takes that path:\n"
        + "\n".join(
            f"  {g.principal}: {g.policy} {g.sid}: {g.action} on {g.resource}" for g in unused
        )
    )


def test_the_evaluator_refuses_what_the_template_does_not_grant(
    template: Any, roles: dict[str, Principal]
) -> None:
    """The check can fail: calls no statement allows, or allows without the KMS context."""
    names = canonical_names(template)
    wallet_key = names["WalletKey.Arn"]
    refused = [
        Recorded(
            "DocsFunction", "dynamodb:GetItem", "dynamodb:GetItem", names["FlowsTable.Arn"], ()
        ),
        Recorded("RunFunction", "kms:Encrypt", "kms:Encrypt", wallet_key, ()),
        Recorded(
            "RunFunction",
            "kms:Decrypt",
            "kms:Decrypt",
            wallet_key,
            (("kms:EncryptionContext:user_id", "u"),),
        ),
        Recorded(
            "StartFunction",
            "sqs:SendMessage",
            "sqs:SendMessage",
            names["FlowRunDeadLetterQueue.Arn"],
            (),
        ),
    ]
    allowed = Recorded(
        "RunFunction",
        "kms:Decrypt",
        "kms:Decrypt",
        wallet_key,
        (("kms:EncryptionContext:user_id", "u"), ("kms:EncryptionContext:wallet_id", "w")),
    )
    verdicts = judge([*refused, allowed], roles, resource_policies(template))
    assert [v["decision"] for v in verdicts] == ["ImplicitlyDenied"] * 4 + ["Allowed"]


def _test_files() -> set[Path]:
    return {
        p.resolve() for p in (ROOT / "tests").rglob("test_*.py") if "node_modules" not in p.parts
    }


def _refusal(call: Recorded, verdict: dict[str, Any], expressions: dict[str, str]) -> str:
    lines = [
        f"{call.principal}: {call.action} on {call.resource} ({verdict['decision']}; "
        f"made by {call.call}, context {call.context_dict or 'none'})"
    ]
    if verdict["errors"]:
        lines.append(f"  the evaluator found the request invalid: {verdict['errors']}")
    if verdict["nearMisses"]:
        lines.append(
            f"  statements of this action and resource whose condition failed: "
            f"{verdict['nearMisses']}"
        )
    resource = expressions.get(call.resource, json.dumps(call.resource))
    lines.append(
        f"  missing statement, in {call.principal}'s Policies of template.yaml:\n"
        f"    - Effect: Allow\n      Action: [{call.action}]\n      Resource: {resource}"
    )
    return "\n".join(lines)


def _report(calls: list[Recorded], verdicts: list[dict[str, Any]]) -> str:
    rows = [
        "| function | action | resource | context keys | decision | allowed by |",
        "|---|---|---|---|---|---|",
    ]
    for call, verdict in zip(calls, verdicts, strict=True):
        resource = call.resource.split(":", 5)[-1]
        keys = ", ".join(k for k, _ in call.context) or "—"
        rows.append(
            f"| {call.principal} | {call.action} | {resource} | {keys} | {verdict['decision']} "
            f"| {', '.join(verdict['allowedBy']) or '—'} |"
        )
    return "\n".join(rows) + "\n"


def test_a_grant_is_needed_only_by_a_call_of_its_own_principal_under_its_patterns() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/DeploymentsTable"
    call = Recorded("ApiFunction", "dynamodb:Query", "dynamodb:Query", f"{table}/index/X", ())
    index_grant = Grant("ApiFunction", "p", "s", "dynamodb:query", f"{table}/index/*")
    assert needed_by(index_grant, [call])
    assert not needed_by(Grant("ApiFunction", "p", "s", "dynamodb:Query", table), [call])
    assert not needed_by(Grant("RunFunction", "p", "s", "dynamodb:Query", f"{table}/*"), [call])
