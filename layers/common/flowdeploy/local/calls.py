"""Count and record AWS calls, with botocore's event hooks.

Counting: the round-trip tests and `make bench`. Recording: which function made which call,
as the IAM requests AWS would authorize (tests/test_iam_policies.py judges them against
template.yaml's policies).

Every botocore session registers `botocore.handlers.BUILTIN_HANDLERS` when it is created,
so hooks added there see every API call of every client made later, whichever session made
it (boto3's default one, pynamodb's per-thread ones). A call is counted once however often
botocore retries it. `install()` must therefore run before the first client exists.

A call belongs to the function whose handler made it: the execution environment's own
function (a worker process of the local stack), or, in one process running several
(the unit tests' in-process stack), the function `acting_as` names for the current thread
and the asyncio tasks and `to_thread` calls it starts.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from botocore import handlers

from flowdeploy.local.iam_requests import (
    MANAGEMENT_SERVICE,
    IamRequest,
    Names,
    management_requests,
    requests_for,
)

_COUNT_EVENT = "before-call"
_RECORD_EVENT = "before-parameter-build"
# The management API's resource is in the URL, known once the request is built.
_RECORD_URL_EVENT = f"before-call.{MANAGEMENT_SERVICE}"
_active: list[Counter[str]] = []
_lock = threading.Lock()

_acting: ContextVar[str | None] = ContextVar("flowdeploy_acting_function", default=None)
_process_principal: str | None = None


class _Recorder:
    """Appends each distinct (principal, action, resource, context keys) once, as JSON lines."""

    def __init__(self, directory: Path, names: Names) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"calls-{os.getpid()}.jsonl"
        self.names = names
        self.seen: set[tuple[str, str, str, tuple[str, ...]]] = set()

    def record(
        self, principal: str, service: str, operation: str, requests: list[IamRequest]
    ) -> None:
        lines = []
        for request in requests:
            key = (principal, request.action, request.resource, tuple(sorted(request.context)))
            with _lock:
                if key in self.seen:
                    continue
                self.seen.add(key)
            lines.append(
                json.dumps(
                    {
                        "principal": principal,
                        "call": f"{service}:{operation}",
                        "action": request.action,
                        "resource": request.resource,
                        "context": request.context,
                    }
                )
            )
        if lines:
            with _lock, self.path.open("a") as sink:
                sink.write("".join(f"{line}\n" for line in lines))


_recorder: _Recorder | None = None


def _count(model: Any, **_: Any) -> None:
    if _active:
        name = f"{model.service_model.service_name}:{model.name}"
        with _lock:
            for counter in _active:
                counter[name] += 1


def _record(model: Any, params: Any, **_: Any) -> None:
    recorder = _recorder
    principal = _acting.get() or _process_principal
    service = model.service_model.service_name
    if recorder is None or principal is None or service == MANAGEMENT_SERVICE:
        return
    requests = requests_for(service, model.name, params, recorder.names)
    recorder.record(principal, service, model.name, requests)


def _record_by_url(model: Any, params: Any, **_: Any) -> None:
    """A management API call, judged by the URL and method of the request botocore built."""
    recorder = _recorder
    principal = _acting.get() or _process_principal
    if recorder is None or principal is None:
        return
    requests = management_requests(params["url"], params["method"], recorder.names)
    recorder.record(principal, MANAGEMENT_SERVICE, model.name, requests)


def install() -> None:
    """Hook every botocore session created from now on (idempotent)."""
    for hook in (
        (_COUNT_EVENT, _count),
        (_RECORD_EVENT, _record),
        (_RECORD_URL_EVENT, _record_by_url),
    ):
        if hook not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(hook)


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """AWS calls made inside the block, as `{"dynamodb:GetItem": 1, "sqs:SendMessage": 1}`."""
    install()
    counter: Counter[str] = Counter()
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)


def record_to(directory: Path, names: Names | None = None) -> Names:
    """Record attributed calls into `directory` from now on; the resource names to extend."""
    global _recorder  # noqa: PLW0603
    install()
    _recorder = _Recorder(directory, names or Names())
    return _recorder.names


def resource_names() -> Names | None:
    """The names of the recording in progress (provisioning adds to them), if any."""
    return _recorder.names if _recorder else None


def act_as_process(principal: str) -> None:
    """Every call of this process is `principal`'s (a worker: one execution environment)."""
    global _process_principal  # noqa: PLW0603
    _process_principal = principal


@contextmanager
def acting_as(principal: str) -> Iterator[None]:
    """Calls made inside the block, and by tasks and threads it starts, are `principal`'s."""
    token = _acting.set(principal)
    try:
        yield
    finally:
        _acting.reset(token)
