"""What IAM checks for one AWS API call: (action, resource ARN, condition context) triples.

Most calls are one action on one resource, named after the operation. The exceptions are
the ones that matter for least privilege: a TransactWriteItems is checked as PutItem,
UpdateItem, DeleteItem or ConditionCheckItem per item, batch calls once per table, a
Query on an index against the index's ARN, the SQS batch calls as their single forms,
and KMS calls carry the encryption context as condition keys. The management API of a
WebSocket API (`post_to_connection`) names no resource in its parameters: it is judged by the
request's URL, the stage and connection it goes to (`management_requests`).

Resources are named by their template identity (`Names`), so a call recorded on the local
stack and a policy statement from template.yaml name the same ARN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from flowdeploy.local import ACCOUNT, REGION


@dataclass(frozen=True)
class IamRequest:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Names:
    """Physical resource names and ARNs seen locally → their canonical ARN."""

    aliases: dict[str, str] = field(default_factory=dict)

    def canonical(self, physical: str) -> str:
        return self.aliases.get(physical, physical)


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def key_arn(key_id: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}"


def parameter_arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.lstrip('/')}"


def connection_arn(api_id: str, stage: str, method: str, connection: str) -> str:
    api = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}"
    return f"{api}/{stage}/{method}/@connections/{connection}"


# The one WebSocket API the local stack serves on its own host (127.0.0.1:<port>/<stage>);
# on AWS, and with moto's mock, the API's id is the first label of its execute-api host.
LOCAL_WEBSOCKET_API_ID = "localws"
MANAGEMENT_SERVICE = "apigatewaymanagementapi"


def management_requests(url: str, method: str, names: Names) -> list[IamRequest]:
    """A management API request (POST, GET or DELETE on <stage>/@connections/<id>) as IAM
    authorizes it: execute-api:ManageConnections on that stage, method and connection."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    api = host.split(".", 1)[0] if ".execute-api." in host else LOCAL_WEBSOCKET_API_ID
    stage, _, connection = parts.path.lstrip("/").partition("/@connections/")
    arn = connection_arn(names.canonical(api), stage, method.upper(), unquote(connection))
    return [IamRequest("execute-api:ManageConnections", arn)]


UNKNOWN_STACK_ID = "00000000-0000-0000-0000-000000000000"


def stack_arn(name: str) -> str:
    """A stack named in a call: its id (the ARN's last part) is unknown there, so a zero one."""
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{UNKNOWN_STACK_ID}"


_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_SQS_SINGLE = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def requests_for(
    service: str, operation: str, params: Mapping[str, Any], names: Names
) -> list[IamRequest]:
    """The IAM requests AWS authorizes for `operation` with `params` (never empty)."""
    translate = _SERVICES.get(service)
    found = translate(operation, params, names) if translate else None
    # Unknown here: judged against "*", so it only passes where a policy allows it anywhere.
    return found or [IamRequest(f"{service}:{operation}", "*")]


def _one(prefix: str, parameter: str, arn: Any) -> Any:
    """A service whose calls name their one resource in `parameter`."""

    def translate(operation: str, params: Mapping[str, Any], names: Names) -> list[IamRequest]:
        if parameter not in params:
            return []
        return [IamRequest(f"{prefix}:{operation}", names.canonical(arn(str(params[parameter]))))]

    return translate


def _dynamodb(operation: str, params: Mapping[str, Any], names: Names) -> list[IamRequest]:
    def table(name: str, index: str | None = None) -> str:
        arn = names.canonical(table_arn(name))
        return f"{arn}/index/{index}" if index else arn

    if operation in {"BatchGetItem", "BatchWriteItem"}:
        return [IamRequest(f"dynamodb:{operation}", table(t)) for t in params["RequestItems"]]
    if operation == "TransactWriteItems":
        found = []
        for item in params["TransactItems"]:
            ((kind, detail),) = item.items()
            found.append(
                IamRequest(f"dynamodb:{_TRANSACT_WRITE[kind]}", table(detail["TableName"]))
            )
        return found
    if operation == "TransactGetItems":
        return [
            IamRequest("dynamodb:GetItem", table(item["Get"]["TableName"]))
            for item in params["TransactItems"]
        ]
    return [
        IamRequest(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")))
    ]


def _sqs(operation: str, params: Mapping[str, Any], names: Names) -> list[IamRequest]:
    if operation == "StartMessageMoveTask":
        # SQS moves the messages with the caller's permissions (SQS developer guide,
        # "dead-letter queue redrive"): receive and delete on the source, send to the target.
        source = names.canonical(str(params["SourceArn"]))
        found = [
            IamRequest(f"sqs:{action}", source)
            for action in (
                "StartMessageMoveTask",
                "ReceiveMessage",
                "DeleteMessage",
                "GetQueueAttributes",
            )
        ]
        if "DestinationArn" in params:
            found.append(
                IamRequest("sqs:SendMessage", names.canonical(str(params["DestinationArn"])))
            )
        return found
    action = f"sqs:{_SQS_SINGLE.get(operation, operation)}"
    if "QueueUrl" in params:
        name = urlsplit(str(params["QueueUrl"])).path.rstrip("/").rsplit("/", 1)[-1]
        return [IamRequest(action, names.canonical(queue_arn(name)))]
    if "QueueName" in params:
        return [IamRequest(action, names.canonical(queue_arn(str(params["QueueName"]))))]
    if "SourceArn" in params:
        return [IamRequest(action, names.canonical(str(params["SourceArn"])))]
    return [IamRequest(action, "*")]


def _kms(operation: str, params: Mapping[str, Any], names: Names) -> list[IamRequest]:
    key = str(params.get("KeyId", "*"))
    context: dict[str, Any] = {"kms:CallerAccount": ACCOUNT}
    if key.startswith("alias/") or ":alias/" in key:
        context["kms:RequestAlias"] = key.split(":", 5)[-1]
    encryption_context = params.get("EncryptionContext") or {}
    for name, value in encryption_context.items():
        context[f"kms:EncryptionContext:{name}"] = value
    if encryption_context:
        context["kms:EncryptionContextKeys"] = sorted(encryption_context)
    if "EncryptionAlgorithm" in params:
        context["kms:EncryptionAlgorithm"] = params["EncryptionAlgorithm"]
    return [IamRequest(f"kms:{operation}", names.canonical(key), context)]


# S3 operations whose IAM action is not named after them.
_S3_ACTIONS = {
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "DeleteObjects": "DeleteObject",
}


def _s3(operation: str, params: Mapping[str, Any], names: Names) -> list[IamRequest]:
    if "Bucket" not in params:
        return []
    arn = names.canonical(f"arn:aws:s3:::{params['Bucket']}")
    if "Key" in params:
        arn = f"{arn}/{params['Key']}"
    elif operation == "DeleteObjects":
        return [
            IamRequest("s3:DeleteObject", f"{arn}/{item['Key']}")
            for item in params.get("Delete", {}).get("Objects", [])
        ]
    return [IamRequest(f"s3:{_S3_ACTIONS.get(operation, operation)}", arn)]


_SERVICES: dict[str, Any] = {
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "kms": _kms,
    "ssm": _one("ssm", "Name", parameter_arn),
    "secretsmanager": _one("secretsmanager", "SecretId", lambda arn: arn),
    "cloudformation": _one("cloudformation", "StackName", stack_arn),
    "s3": _s3,
}
