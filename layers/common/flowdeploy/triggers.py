"""Starts from inside the AWS account: EventBridge events and schedules, SQS messages, S3 objects.

They need no credential: whoever can put an event on the bus, send to the trigger
queue or write to the mapped bucket is trusted by the account's IAM, so these starts
act as the deployment's owner (the permission rule in `deployments.admits`). The run
records where it came from in `origin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import Field, StrictInt, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from flowdeploy import strict_json
from flowdeploy.auth import Caller
from flowdeploy.deployments import LATEST, DeploymentRef, parse_flow_id, parse_tag
from flowdeploy.errors import BadRequest, describe
from flowdeploy.flow_runs import StartDeploymentParams, queue_run
from flowdeploy.ids import parse_uuid

Origin = Literal["eventbridge", "schedule", "sqs", "s3"]
MAX_MESSAGE_BYTES = 262_144  # SQS's and EventBridge's own limit


class TriggerStart(StartDeploymentParams):
    """An event's `detail` or a message's body: which deployment, and the start body.

    `{"deployment_id": "<id>", "inputs": {...}}` or `{"flow": 3675, "tag": "v1", "inputs": ...}`
    (tag defaults to latest), plus the start body's `action_signer` / `output_instructions`.
    """

    deployment_id: str | None = None
    flow: Annotated[StrictInt, Field(ge=1, lt=10**18)] | None = None
    tag: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.deployment_id is None) == (self.flow is None):
            raise PydanticCustomError(
                "target", "name the deployment: deployment_id, or flow (and optionally tag)"
            )
        if self.tag is not None and self.flow is None:
            raise PydanticCustomError("target", "tag needs flow")
        return self

    def ref(self) -> DeploymentRef:
        if self.flow is not None:
            return DeploymentRef(flow=self.flow, tag=parse_tag(self.tag or LATEST))
        deployment_id = parse_uuid(self.deployment_id or "")
        if deployment_id is None:
            raise BadRequest(f"deployment_id must be a UUID, got {self.deployment_id!r}")
        return DeploymentRef(id=deployment_id)

    def params(self) -> StartDeploymentParams:
        return StartDeploymentParams(
            inputs=self.inputs,
            action_signer=self.action_signer,
            output_instructions=self.output_instructions,
        )


def start(detail: Any, origin: Origin) -> str:
    """Queue a run from an event's detail or a message's body; the run id. 400/404 if bad."""
    if not isinstance(detail, Mapping):
        raise BadRequest("the event detail / message body must be a JSON object")
    try:
        request = TriggerStart.model_validate(detail)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None
    return queue_run(request.ref(), request.params(), Caller(kind="account", via=origin), origin)


def start_from_message(body: str, origin: Origin = "sqs") -> str:
    """A queue message whose body is the JSON of `TriggerStart`."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise BadRequest(f"message is larger than {MAX_MESSAGE_BYTES} bytes")
    return start(strict_json.load(body, "message body", strict_json.MAX_DEPTH), origin)


def parse_target(text: str) -> DeploymentRef:
    """`<deployment id>`, `<flow id>` (its latest) or `<flow id>:<tag>`, as configured."""
    deployment_id = parse_uuid(text)
    if deployment_id is not None:
        return DeploymentRef(id=deployment_id)
    flow, _, tag = text.partition(":")
    return DeploymentRef(flow=parse_flow_id(flow, "flow"), tag=parse_tag(tag or LATEST))


def start_for_object(bucket: str, key: str, size: int, targets: Mapping[str, str]) -> str:
    """Queue a run of the deployment `bucket` is mapped to, with inputs bucket, key and size."""
    target = targets.get(bucket)
    if target is None:
        raise BadRequest(f"bucket {bucket!r} is not mapped to a deployment (S3_TRIGGER_TARGETS)")
    inputs = {"bucket": {"S": bucket}, "key": {"S": key}, "size": {"U": str(size)}}
    params = StartDeploymentParams.model_validate({"inputs": inputs})
    return queue_run(parse_target(target), params, Caller(kind="account", via="s3"), "s3")
