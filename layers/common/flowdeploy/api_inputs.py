"""api_input: a run pauses until a value is POSTed to a URL it publishes (upstream's
`POST /flow/submit/{key}`); `DELETE` of the URL cancels the wait.

The key is the capability, as upstream's is: 64 hex characters, the run id then a random
token that only the run item holds, so the route needs no credential and a guessed key
finds nothing. The request lives on the run item while the node waits; the node polls it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

from flowdeploy.errors import BadRequest, NotFound
from flowdeploy.ids import timestamp
from flowdeploy.live.events import API_INPUT
from flowdeploy.settings import settings
from flowdeploy.store import runs as store
from flowdeploy.store.models import FlowRunItem
from flowdeploy.values import IValue, IValueError

if TYPE_CHECKING:
    from flowdeploy.live.run_stream import RunStream

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
KEY = re.compile(r"[0-9a-f]{64}")
SUBMIT_PATH = "/flow/submit/"
TIMEOUT, CANCELED = "timeout", "canceled by user"


def new_key(run_id: str) -> tuple[str, str]:
    """(key, token): the key is the run id's 32 hex digits and a fresh 32-hex token."""
    token = secrets.token_hex(16)
    return uuid.UUID(run_id).hex + token, token


def parse_key(key: str) -> tuple[str, str]:
    """(run id, token) of a submit key; 404 for anything that is not one."""
    if not KEY.fullmatch(key):
        raise NotFound("no API input is waiting at this URL")
    return str(uuid.UUID(key[:32])), key[32:]


def submit_url(key: str) -> str:
    return f"{settings().api_url}{SUBMIT_PATH}{key}"


class SubmitBody(BaseModel):
    """`POST /flow/submit/{key}`: the value the waiting node outputs."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    value: Any

    @field_validator("value")
    @classmethod
    def _ivalue(cls, value: Any) -> Any:
        try:
            IValue.from_json(value, "value")
        except IValueError as error:
            raise ValueError(str(error)) from None
        return value


def answer(key: str, value: IValue | None) -> None:
    """Give the waiting node `value`, or cancel its wait (None); 404 if none is waiting."""
    run_id, token = parse_key(key)
    if value is None:
        done = store.answer_api_input(run_id, token, store.CANCELED)
    else:
        text = json.dumps(value.to_json(), separators=(",", ":"))
        done = store.answer_api_input(run_id, token, store.SUBMITTED, text)
    if not done:
        raise NotFound("no API input is waiting at this URL")


def waiting(run: FlowRunItem) -> list[dict[str, Any]]:
    """The run's api_input nodes waiting now, oldest first: node, times, url, expiry."""
    entries = [
        {name: entry[name] for name in ("node_id", "times", "url", "created_at", "expires_at")}
        for entry in store.api_inputs_of(run).values()
        if entry.get("state") == store.WAITING
    ]
    return sorted(entries, key=lambda entry: str(entry["created_at"]))


def parse_submitted(body: SubmitBody) -> IValue:
    try:
        return IValue.from_json(body.value, "value")
    except IValueError as error:  # checked by the model already
        raise BadRequest(str(error)) from None


class StoredApiInputs:
    """The engine's ApiInputs for one run in RunFunction; each wait is announced to the
    run's live subscribers as upstream's `ApiInput` event (`{"url"}`)."""

    def __init__(self, run_id: str, stream: RunStream | None = None) -> None:
        self.run_id = run_id
        self.stream = stream

    async def wait(self, request: Any) -> IValue:
        from flowdeploy.engine.services import ApiInputFailed

        key, token = new_key(self.run_id)
        url = submit_url(key)
        created = datetime.now(UTC)
        entry = {
            "node_id": request.node_id,
            "times": request.times,
            "url": url,
            "created_at": timestamp(created),
            "expires_at": timestamp(created + timedelta(seconds=request.timeout)),
        }
        if not await asyncio.to_thread(store.open_api_input, self.run_id, token, entry):
            raise ApiInputFailed("the run is no longer running")
        if self.stream is not None:
            self.stream.publish(API_INPUT, {"url": url})
        try:
            if request.webhook_url:
                await self._call_webhook(request, url)
            return await self._poll(token, request.timeout)
        finally:
            try:
                await asyncio.to_thread(store.close_api_input, self.run_id, token)
            except Exception:  # the entry only lingers on the finished run
                logger.warning("could not close an api_input of run %s", self.run_id)

    async def _poll(self, token: str, timeout: float) -> IValue:
        from flowdeploy.engine.services import ApiInputFailed

        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while True:
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, until - loop.time())))
            try:
                run = await asyncio.to_thread(store.get, self.run_id)
            except Exception:  # a failed poll only delays the answer
                logger.warning("could not poll run %s for an api_input", self.run_id)
                run = None
            entry = store.api_inputs_of(run).get(token) if run is not None else None
            if entry is not None and entry.get("state") == store.SUBMITTED:
                return IValue.from_json(json.loads(str(entry["value"])))
            if entry is not None and entry.get("state") == store.CANCELED:
                raise ApiInputFailed(CANCELED)
            if loop.time() >= until:
                raise ApiInputFailed(TIMEOUT)

    async def _call_webhook(self, request: Any, url: str) -> None:
        """Tell the webhook where to POST the value (upstream's WebHookPostBody); a failure
        is logged, the wait goes on, as upstream does."""
        from flowdeploy.engine import http_client
        from flowdeploy.engine.convert import to_plain

        body = {
            "url": url,
            "flow_run_id": self.run_id,
            "node_id": request.node_id,
            "times": request.times,
            "timeout": request.timeout,
            "extra": to_plain(request.extra) if request.extra is not None else None,
        }
        headers = {"Content-Type": "application/json", **request.webhook_headers}
        outgoing = http_client.Request(
            "POST", request.webhook_url, headers, json.dumps(body).encode(), 64 * 1024
        )
        loop = asyncio.get_running_loop()
        try:
            reply = await loop.run_in_executor(
                http_client.executor,
                http_client.send,
                outgoing,
                10.0,
                settings().http_allow_private,
            )
        except http_client.RequestFailed as error:
            problem = f"failed: {error}"
        else:
            if 200 <= reply.status < 300:
                return
            problem = f"answered HTTP {reply.status}"
        logger.warning("api_input webhook %s", problem)
        if request.log is not None:  # the run's log says it too: the wait goes on regardless
            request.log("warn", f"api_input webhook {problem}; still waiting for the value")
