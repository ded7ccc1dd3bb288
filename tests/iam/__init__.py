"""template.yaml's IAM, as AWS sees it, against the AWS calls each function was seen to make.

The template is translated by the SAM translator (the roles SAM generates, with their inline
and managed policies), its references resolved to the same ARNs the recorded calls name
(flowdeploy.local.iam_requests), and each recorded request judged by a real IAM evaluator
(@cloud-copilot/iam-simulate, tests/iam/simulate.mjs) with the KMS key policies as resource
policies. `make test` installs the evaluator (npm ci in tests/iam).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flowdeploy.local import ACCOUNT, REGION
from flowdeploy.local.iam_requests import key_arn, queue_arn, secret_arn, table_arn
from flowdeploy.local.template import Template, resolve

HERE = Path(__file__).resolve().parent
SIMULATOR = HERE / "simulate.mjs"
INSTALLED = HERE / "node_modules" / "@cloud-copilot" / "iam-simulate"
STACK = "flowdeploy"

# The Lambda runtime, not the function's code, uses these: no recorded call can need them.
RUNTIME_GRANTS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


@dataclass(frozen=True)
class Recorded:
    principal: str
    call: str
    action: str
    resource: str
    context: tuple[tuple[str, Any], ...]

    @property
    def context_dict(self) -> dict[str, Any]:
        return dict(self.context)


@dataclass(frozen=True)
class Grant:
    principal: str
    policy: str
    sid: str
    action: str
    resource: str


@dataclass
class Principal:
    name: str
    arn: str
    policies: list[dict[str, Any]]  # [{"name", "policy"}]


def recorded_calls(directory: Path) -> list[Recorded]:
    """Every distinct (principal, action, resource, context keys) the processes recorded."""
    found: dict[tuple[Any, ...], Recorded] = {}
    for path in sorted(directory.glob("calls-*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            context = tuple(sorted((k, _freeze(v)) for k, v in raw["context"].items()))
            key = (raw["principal"], raw["action"], raw["resource"], tuple(k for k, _ in context))
            found.setdefault(
                key,
                Recorded(raw["principal"], raw["call"], raw["action"], raw["resource"], context),
            )
    return sorted(found.values(), key=lambda r: (r.principal, r.action, r.resource))


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# -- template.yaml as AWS sees it ------------------------------------------------------------


def canonical_names(template: Template) -> dict[str, Any]:
    """Ref / GetAtt values of the template's resources, named as the recorded calls name them."""
    names: dict[str, Any] = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
        **template.parameter_values(),
    }
    for name, resource in template.doc["Resources"].items():
        kind = resource["Type"]
        names[name] = name
        if kind == "AWS::DynamoDB::Table":
            names[f"{name}.Arn"] = table_arn(name)
        elif kind == "AWS::SQS::Queue":
            names[f"{name}.Arn"] = queue_arn(name)
            names[f"{name}.QueueName"] = name
            names[name] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        elif kind == "AWS::KMS::Key":
            names[f"{name}.Arn"] = key_arn(name)
        elif kind == "AWS::SecretsManager::Secret":
            names[name] = secret_arn(name)
        elif kind == "AWS::S3::Bucket":
            names[name] = name.lower()  # the local stack's bucket name (provision)
            names[f"{name}.Arn"] = f"arn:aws:s3:::{name.lower()}"
        elif kind in {"AWS::Serverless::Function", "AWS::Lambda::Function"}:
            names[f"{name}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        else:
            names[f"{name}.Arn"] = f"arn:aws:{kind.split('::')[1].lower()}:::{name}"
    return names


def template_expressions(template: Template) -> dict[str, str]:
    """Canonical ARN → how template.yaml writes it (for the message of a missing grant)."""
    names = canonical_names(template)
    found = {}
    for name, resource in template.doc["Resources"].items():
        if resource["Type"] == "AWS::SecretsManager::Secret":
            found[names[name]] = f"!Ref {name}"
        elif f"{name}.Arn" in names:
            found[names[f"{name}.Arn"]] = f"!GetAtt {name}.Arn"
            for index in resource.get("Properties", {}).get("GlobalSecondaryIndexes", []):
                arn = f"{names[f'{name}.Arn']}/index/{index['IndexName']}"
                found[arn] = f'!Sub "${{{name}.Arn}}/index/{index["IndexName"]}"'
    return found


def translated(template: Template) -> dict[str, Any]:
    """The CloudFormation SAM makes of the template (roles and their policies included)."""
    import os

    from samtranslator.translator.transform import transform

    document = copy.deepcopy(template.doc)
    for resource in document["Resources"].values():
        # SAM wants the S3 location `sam build` uploads to; the code does not matter here.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"

    class NoAccountLookups:
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    result: dict[str, Any] = transform(document, dict(template.overrides), NoAccountLookups())
    return result


@cache
def _managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data: dict[str, Any] = json.loads(aws_managed_policies_data)
    return data


def managed_policy(arn: str) -> dict[str, Any]:
    """An AWS managed policy's document (moto ships their current versions)."""
    name = arn.rsplit("/", 1)[-1]
    data = _managed_policies()[name]
    document: dict[str, Any] = data["Document"]
    return document


def principals(template: Template) -> dict[str, Principal]:
    """Each function's role, as the principal its calls are made as."""
    cloudformation = translated(template)
    names = canonical_names(template)

    def value(expression: Any) -> Any:
        return resolve(expression, names, template.conditions, template.mappings)

    found = {}
    for name, resource in cloudformation["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        if resource.get("Condition") and not template.conditions[resource["Condition"]]:
            continue
        role_name = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        role = cloudformation["Resources"][role_name]["Properties"]
        policies = [
            {"name": f"{role_name}/{p['PolicyName']}", "policy": value(p["PolicyDocument"])}
            for p in role.get("Policies", [])
        ]
        policies += [
            {"name": arn.rsplit("/", 1)[-1], "policy": managed_policy(arn)}
            for arn in value(role.get("ManagedPolicyArns", []))
        ]
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
        found[name] = Principal(name, arn, policies)
    return found


def resource_policies(template: Template) -> dict[str, dict[str, Any]]:
    """Resource ARN → its resource policy (the KMS key policies)."""
    names = canonical_names(template)
    return {
        key_arn(name): {
            "name": f"{name} key policy",
            "policy": resolve(
                resource["Properties"]["KeyPolicy"], names, template.conditions, template.mappings
            ),
        }
        for name, resource in template.resources.items()
        if resource["Type"] == "AWS::KMS::Key"
    }


# -- judging ---------------------------------------------------------------------------------


def simulator_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (Node 20: see the README)"
    if not INSTALLED.exists():
        return "the IAM evaluator is not installed: run `make test` (it runs npm ci in tests/iam)"
    return None


def judge(
    requests: list[Recorded],
    who: dict[str, Principal],
    policies_of_resources: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """The evaluator's verdict on each request, in order."""
    payload = {
        "principals": {name: {"arn": p.arn, "policies": p.policies} for name, p in who.items()},
        "resourcePolicies": policies_of_resources,
        "requests": [
            {
                "principal": r.principal,
                "action": r.action,
                "resource": r.resource,
                "context": {k: list(v) if isinstance(v, tuple) else v for k, v in r.context},
            }
            for r in requests
        ],
    }
    done = subprocess.run(
        ["node", str(SIMULATOR)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the IAM evaluator failed:\n{done.stderr}")
    verdicts: list[dict[str, Any]] = json.loads(done.stdout)
    return verdicts


def grants(principal: Principal) -> list[Grant]:
    """Every (action, resource) an Allow statement of the principal names."""
    found = []
    for entry in principal.policies:
        statements = entry["policy"]["Statement"]
        for number, statement in enumerate(
            statements if isinstance(statements, list) else [statements]
        ):
            if statement.get("Effect") != "Allow":
                continue
            for action in _listed(statement.get("Action")):
                for resource in _listed(statement.get("Resource")):
                    sid = statement.get("Sid") or f"#{number}"
                    found.append(Grant(principal.name, entry["name"], sid, action, resource))
    return found


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def needed_by(grant: Grant, calls: Iterable[Recorded]) -> bool:
    """Whether some recorded call of the grant's principal falls under it."""
    return any(
        call.principal == grant.principal
        and _matches(grant.action, call.action, ignore_case=True)
        and _matches(grant.resource, call.resource, ignore_case=False)
        for call in calls
    )


def _matches(pattern: str, value: str, *, ignore_case: bool) -> bool:
    """IAM's wildcards (* and ?); actions ignore case, resources do not."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)
