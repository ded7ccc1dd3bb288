"""The local stack's AWS resources and the functions' environments, read from template.yaml.

Tables, queues, buckets, KMS keys and secrets are created in moto as the template declares
them; each function's environment is its own template entry (Globals included) resolved
to them, plus what Lambda's runtime adds. The local stack drifts from AWS only where it
says so here and in `flowdeploy.local.environments` / `event_sources`.
"""

from __future__ import annotations

import os
import secrets
import string
import threading
from pathlib import Path
from typing import Any

from flowdeploy.local import ACCOUNT, DEV_JWT_SECRET, REGION, calls, moto_dynamodb
from flowdeploy.local.iam_requests import LOCAL_WEBSOCKET_API_ID, key_arn, secret_arn
from flowdeploy.local.template import FunctionSpec, Template

STACK_NAME = "flowdeploy"  # what AWS::StackName resolves to locally
# Tags the local KMS keys with their logical id, so provisioning twice creates none twice.
LOGICAL_ID_TAG = "flowdeploy:logical-id"


def fake_credentials() -> None:
    """moto accepts any credentials; make sure no real ones are ever used locally."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts anything
        AWS_SESSION_TOKEN="local",  # noqa: S106
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    os.environ.pop("AWS_PROFILE", None)


def pseudo_parameters() -> dict[str, str]:
    return {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::StackName": STACK_NAME,
        "AWS::URLSuffix": "amazonaws.com",
    }


_request = threading.local()


def isolate_powertools_requests() -> None:
    """Give each thread its own Powertools `current_event` and `lambda_context`.

    Powertools keeps the request being resolved on the `BaseRouter` class: one per
    process, right for Lambda (one request per environment) but shared by every function
    instance here, so two concurrent requests could read each other's event, headers
    included. A metaclass property (for `BaseRouter.x = ...`) and a class descriptor (for
    `app.x`) keep them per thread.
    """
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    if getattr(BaseRouter, "_per_thread", False):
        return

    def get(_: Any, name: str) -> Any:
        return getattr(_request, name, None)

    class PerThread:
        def __init__(self, name: str) -> None:
            self.name = name

        def __get__(self, instance: Any, owner: Any = None) -> Any:
            return get(instance, self.name)

        def __set__(self, instance: Any, value: Any) -> None:
            setattr(_request, self.name, value)

    names = ("current_event", "lambda_context")
    meta = type(BaseRouter)
    PerThreadMeta = type("PerThreadRouterMeta", (meta,), {name: PerThread(name) for name in names})
    for name in names:
        setattr(BaseRouter, name, None)  # drop any class value set before
        type.__setattr__(BaseRouter, name, PerThread(name))
    BaseRouter.__class__ = PerThreadMeta  # type: ignore[method-assign]
    BaseRouter._per_thread = True  # type: ignore[attr-defined]


def provision(template: Template) -> dict[str, Any]:
    """Create the template's tables, queues, buckets, KMS keys and secrets in the current
    endpoint; names for `Template.resolve`.
    """
    import boto3

    moto_dynamodb.patch()
    isolate_powertools_requests()

    dynamodb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    names: dict[str, Any] = {**pseudo_parameters(), **template.parameter_values()}
    existing = set(dynamodb.list_tables()["TableNames"])
    for name, args in template.tables().items():
        if name not in existing:
            dynamodb.create_table(**args)
        names[name] = name
        names[f"{name}.Arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    for name, props in template.queues().items():
        attributes: dict[Any, str] = {}
        for attribute in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if attribute in props:
                attributes[attribute] = str(template.resolve(props[attribute], names))
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            target = template.resolve(policy["deadLetterTargetArn"], names)
            attributes["RedrivePolicy"] = (
                f'{{"deadLetterTargetArn": "{target}", '
                f'"maxReceiveCount": {int(template.resolve(policy["maxReceiveCount"], names))}}}'
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        names[name] = url
        names[f"{name}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        names[f"{name}.QueueName"] = name
    for name in template.of_type("AWS::S3::Bucket"):
        bucket = name.lower()  # S3 names are lower case; AWS would generate one
        boto3.client("s3").create_bucket(Bucket=bucket)
        names[name] = bucket
        names[f"{name}.Arn"] = f"arn:aws:s3:::{bucket}"
    provision_keys(template, names)
    provision_secrets(template, names)
    for name in template.of_type("AWS::ApiGatewayV2::Api"):
        # Management API calls to https://localws.execute-api.…/ws reach moto's mock in-process
        # (make invoke, unit tests); `make dev` points WEBSOCKET_ENDPOINT at its own server.
        names[name] = LOCAL_WEBSOCKET_API_ID
    recording = calls.resource_names()
    if recording is not None:
        recording.aliases.update(canonical_aliases(template, names))
    return names


def provision_keys(template: Template, names: dict[str, Any]) -> None:
    """The template's KMS keys and aliases: moto's KMS really encrypts (AES-GCM), so wallet
    secrets take the same path as in AWS.
    """
    import boto3

    kms = boto3.client("kms")
    existing: dict[str, dict[str, Any]] = {}
    for key in kms.list_keys()["Keys"]:
        tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
        for tag in tags:
            if tag["TagKey"] == LOGICAL_ID_TAG:
                existing[tag["TagValue"]] = key
    for name, resource in template.of_type("AWS::KMS::Key").items():
        props = resource.get("Properties", {})
        key = existing.get(name)
        if key is None:
            metadata = kms.create_key(
                Description=str(props.get("Description", name)),
                KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
                KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
                Tags=[{"TagKey": LOGICAL_ID_TAG, "TagValue": name}],
            )["KeyMetadata"]
            key = {"KeyId": metadata["KeyId"], "KeyArn": metadata["Arn"]}
            if props.get("EnableKeyRotation"):
                kms.enable_key_rotation(KeyId=key["KeyId"])
        names[name] = names[f"{name}.KeyId"] = key["KeyId"]
        names[f"{name}.Arn"] = key["KeyArn"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    for name, resource in template.of_type("AWS::KMS::Alias").items():
        props = resource["Properties"]
        alias = str(template.resolve(props["AliasName"], names))
        if alias not in aliases:
            target = str(template.resolve(props["TargetKeyId"], names))
            kms.create_alias(AliasName=alias, TargetKeyId=target)
        names[name] = alias


def provision_secrets(template: Template, names: dict[str, Any]) -> None:
    """The template's Secrets Manager secrets, generated as GenerateSecretString asks."""
    import boto3

    manager = boto3.client("secretsmanager")
    for name, resource in template.of_type("AWS::SecretsManager::Secret").items():
        props = resource.get("Properties", {})
        try:
            arn = manager.describe_secret(SecretId=name)["ARN"]
        except manager.exceptions.ResourceNotFoundException:
            arn = manager.create_secret(Name=name, SecretString=generated_secret(props))["ARN"]
        names[name] = arn  # Ref of a secret is its ARN


def generated_secret(props: dict[str, Any]) -> str:
    if "SecretString" in props:
        return str(props["SecretString"])
    spec = props.get("GenerateSecretString", {})
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def provision_jwt_parameter(template: Template) -> None:
    """README "Deploy to AWS" step 1, locally: the SecureString that signs access tokens.

    Only `make dev` does this: moto's SSM takes seconds to load, too long for every unit
    test and `make invoke`, which read the secret from JWT_SECRET instead.
    """
    import boto3

    name = template.parameter_values().get("JwtSecretParameterName")
    if name:
        boto3.client("ssm").put_parameter(
            Name=str(name),
            Type="SecureString",
            Value=os.environ.get("JWT_SECRET") or DEV_JWT_SECRET,
            Overwrite=True,
        )


def canonical_aliases(template: Template, names: dict[str, Any]) -> dict[str, str]:
    """Local ARNs (random key ids, secret suffixes) and ids → what a policy statement names.

    Tables and queues already carry their logical id as their name; keys and secrets are
    named by it here, so a recorded call and a statement of template.yaml meet.
    """
    aliases = {}
    for name in template.of_type("AWS::KMS::Key"):
        canonical = key_arn(name)
        aliases[names[name]] = aliases[names[f"{name}.Arn"]] = canonical
        for alias_id, alias in template.of_type("AWS::KMS::Alias").items():
            target = alias["Properties"]["TargetKeyId"]
            if target in ({"Ref": name}, {"Fn::GetAtt": [name, "Arn"]}):
                aliases[names[alias_id]] = canonical
                aliases[f"arn:aws:kms:{REGION}:{ACCOUNT}:{names[alias_id]}"] = canonical
    for name in template.of_type("AWS::SecretsManager::Secret"):
        aliases[names[name]] = aliases[name] = secret_arn(name)
    for name in template.of_type("AWS::ApiGatewayV2::Api"):
        aliases[names[name]] = name  # the API's id in execute-api ARNs
    return aliases


# What Lambda's runtime adds to every function's own variables; the local stack adds its
# own on top (`added` in `function_environment`: the moto endpoint, the local Solana RPC).
def runtime_variables(spec: FunctionSpec) -> dict[str, str]:
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        # The function's role's credentials in AWS; moto accepts any.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        # No ~/.aws of the developer's: Lambda has none.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def local_replacements(api_url: str, websocket_endpoint: str = "") -> dict[str, str]:
    """Values only AWS has, and what stands in for them locally, for the functions whose
    template variables name them."""
    deno = repository_root() / ".tools" / "deno" / "deno"  # the layer's /opt/bin/deno on AWS
    found = {
        # api_input nodes publish URLs under the API's address: API Gateway's on AWS.
        "API_URL": api_url,
        "DENO_PATH": os.environ.get("DENO_PATH") or str(deno),
    }
    if websocket_endpoint:
        # The WebSocket API's stage, whose management API (post_to_connection) the local
        # server answers; without one (make invoke) moto's mock answers the template's URL.
        found["WEBSOCKET_ENDPOINT"] = websocket_endpoint
    return found


def function_environment(
    template: Template,
    spec: FunctionSpec,
    names: dict[str, Any],
    added: dict[str, str],
    replaced: dict[str, str] | None = None,
) -> dict[str, str]:
    """Exactly what the function's execution environment sees: its template variables
    resolved to the local resources (or `replaced`), the runtime's, and the local stack's
    `added` ones.
    """
    stand_ins = replaced or {}
    own = {
        key: stand_ins[key] if key in stand_ins else str(template.resolve(value, names))
        for key, value in spec.environment.items()
    }
    return {**runtime_variables(spec), **own, **added}


def repository_root() -> Path:
    """The checkout holding template.yaml (this file is layers/common/flowdeploy/local/)."""
    return Path(__file__).resolve().parents[4]
