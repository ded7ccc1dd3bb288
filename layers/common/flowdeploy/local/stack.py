"""The local stack: moto's DynamoDB and SQS, the real handlers, and SQS-to-Lambda polling.

Everything is read from template.yaml: tables, queues, function environments and
event sources, so the local stack drifts from AWS only where it says so here.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from flowdeploy.local import DEV_JWT_SECRET, REGION
from flowdeploy.local.template import FunctionSpec, Template, resolve

log = logging.getLogger("flowdeploy.local")

ACCOUNT = "123456789012"
STACK_NAME = "flowdeploy"  # what AWS::StackName resolves to locally
# Tags the local KMS keys with their logical id, so provisioning twice creates none twice.
LOGICAL_ID_TAG = "flowdeploy:logical-id"
# Locally a failed SQS record comes back after this, not after the queue's visibility
# timeout (30 minutes in AWS), so retries and the dead-letter queue can be watched.
LOCAL_RETRY_SECONDS = 2


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


_moto_writes = threading.RLock()


def isolate_moto_transactions() -> None:
    """Make moto's DynamoDB writes one at a time, as DynamoDB isolates transactions.

    moto runs a TransactWriteItems on a deep copy of each table it touches and, when a
    condition fails, puts that copy back: every write other threads committed meanwhile
    is lost. Under concurrent deploys that erased whole deployments (and flaked the
    concurrent-deploy test). Holding one lock around each write makes the rollback exact.
    """
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_isolated", False):
            continue

        def isolated(*args: Any, _method: Callable[..., Any] = method, **kw: Any) -> Any:
            with _moto_writes:
                return _method(*args, **kw)

        isolated._isolated = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, isolated)


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
    """Create the template's tables, queues, buckets and KMS keys in the current endpoint;
    names for `resolve`.
    """
    import boto3

    isolate_moto_transactions()
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
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            target = resolve(policy["deadLetterTargetArn"], names)
            attributes["RedrivePolicy"] = (
                f'{{"deadLetterTargetArn": "{target}", '
                f'"maxReceiveCount": {int(resolve(policy["maxReceiveCount"], names))}}}'
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
        alias = str(resolve(props["AliasName"], names))
        if alias not in aliases:
            kms.create_alias(AliasName=alias, TargetKeyId=str(resolve(props["TargetKeyId"], names)))
        names[name] = alias


def function_environment(template: Template, names: dict[str, Any]) -> dict[str, str]:
    """The functions' environment variables, resolved to local resources.

    Secrets come from env values here instead of SSM / Secrets Manager.
    """
    env: dict[str, str] = {}
    for spec in template.functions().values():
        for key, value in spec.environment.items():
            try:
                env[key] = str(resolve(value, names, template.conditions))
            except KeyError:
                continue  # a secret's ARN: replaced by its value below
    env["JWT_SECRET"] = os.environ.get("JWT_SECRET", DEV_JWT_SECRET)
    env["RUN_TOKEN_SECRET"] = os.environ.get("RUN_TOKEN_SECRET") or secrets.token_urlsafe(32)
    env.pop("JWT_SECRET_PARAMETER", None)
    env.pop("RUN_TOKEN_SECRET_ARN", None)
    # Local flows may call local services; on AWS http_request refuses private addresses.
    if "DENO_PATH" in env:  # the layer's /opt/bin/deno on AWS; here the one `make` installs
        env["DENO_PATH"] = os.environ.get("DENO_PATH") or str(
            repository_root() / ".tools" / "deno" / "deno"
        )
    env.setdefault("HTTP_ALLOW_PRIVATE", "true")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "flowdeploy")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "flowdeploy")
    return env


@dataclass
class LocalContext:
    """What Lambda passes as `context`, enough for Powertools."""

    function_name: str
    memory_limit_in_mb: int
    timeout: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: FunctionSpec, instance: int) -> Callable[[dict[str, Any], Any], Any]:
    """Import the function's module afresh, like a new Lambda execution environment."""
    module_name, _, attribute = spec.handler.rpartition(".")
    path = spec.code_uri / f"{module_name.replace('.', '/')}.py"
    unique = f"_lambda_{spec.name}_{instance}"
    loader = importlib.util.spec_from_file_location(unique, path)
    if loader is None or loader.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], Any] = getattr(module, attribute)
    return handler


class FunctionPool:
    """Execution environments of one function: each serves one event at a time."""

    def __init__(self, spec: FunctionSpec, max_instances: int = 16) -> None:
        self.spec = spec
        self._idle: queue.LifoQueue[Callable[[dict[str, Any], Any], Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_instances)
        self._count = 0
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._slots:
            try:
                handler = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:
                    self._count += 1
                    instance = self._count
                handler = load_handler(self.spec, instance)
            try:
                context = LocalContext(self.spec.name, self.spec.memory, self.spec.timeout)
                return handler(event, context)
            finally:
                self._idle.put(handler)


class Functions:
    """Every function of the template, ready to invoke by name."""

    def __init__(self, template: Template) -> None:
        self.specs = template.functions()
        self.pools = {name: FunctionPool(spec) for name, spec in self.specs.items()}

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        return self.pools[name].invoke(event)


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Messages as Lambda's SQS event source hands them to a function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class QueuePoller(threading.Thread):
    """Lambda's SQS event source mapping: poll, invoke, delete what succeeded."""

    def __init__(
        self, functions: Functions, function: str, queue_url: str, queue_arn: str, batch: int
    ) -> None:
        super().__init__(daemon=True, name=f"poll-{function}")
        import boto3

        self.sqs = boto3.client("sqs")
        self.functions = functions
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch = batch
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                log.exception("polling %s failed", self.queue_url)
                time.sleep(1)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One receive → invoke → delete cycle; the number of messages handled."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        try:
            result = self.functions.invoke(self.function, sqs_event(messages, self.queue_arn))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:
            log.exception("%s raised; the whole batch will be retried", self.function)
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=LOCAL_RETRY_SECONDS,
                )
            else:
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return len(messages)


def scheduled_event(function: str) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function}Schedule"],
        "detail": {},
    }


class Schedule(threading.Thread):
    """An EventBridge `rate()` schedule: invokes its function every `seconds`."""

    def __init__(self, functions: Functions, function: str, seconds: float) -> None:
        super().__init__(daemon=True, name=f"schedule-{function}")
        self.functions = functions
        self.function = function
        self.seconds = seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.seconds):
            try:
                self.functions.invoke(self.function, scheduled_event(self.function))
            except Exception:
                log.exception("scheduled %s failed", self.function)


def schedules(template: Template, functions: Functions) -> list[Schedule]:
    return [
        Schedule(functions, spec.name, seconds)
        for spec in template.functions().values()
        for seconds in spec.schedules
    ]


def pollers(
    template: Template, functions: Functions, names: dict[str, Any], per_queue: int = 2
) -> list[QueuePoller]:
    found = []
    for spec in template.functions().values():
        for queue_id, batch in spec.sqs_queues:
            for _ in range(per_queue):
                found.append(
                    QueuePoller(
                        functions, spec.name, names[queue_id], names[f"{queue_id}.Arn"], batch
                    )
                )
    return found


def repository_root() -> Path:
    """The checkout holding template.yaml (this file is layers/common/flowdeploy/local/)."""
    return Path(__file__).resolve().parents[4]
