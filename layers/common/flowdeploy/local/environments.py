"""Lambda's side of the local stack: execution environments that invoke the real handlers.

`make dev` runs each environment in its own process (`flowdeploy.local.worker`), with only
its function's environment variables and caches, stops a handler that overruns its
timeout, and refuses a response over Lambda's 6 MB, each as Lambda does. The unit tests run
handlers in their own process instead (`in_process=True`), against moto in memory; there
the environment and caches are the test process's, and a timeout is not enforced.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import multiprocessing
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from pathlib import Path
from types import ModuleType
from typing import Any

from flowdeploy.local import ACCOUNT, REGION, calls
from flowdeploy.local.template import FunctionSpec

log = logging.getLogger("flowdeploy.local")

# Lambda refuses a synchronous response larger than this ("6 MB"), whatever the handler did.
MAX_RESPONSE_BYTES = 6_291_556
# Per function, when the template reserves no concurrency for it. Each environment process
# holds 60-90 MB of its own: a bound for a laptop (AWS scales each function to 1,000).
MAX_INSTANCES = 10
# Execution environments idle longer than this are stopped, as Lambda recycles them (later).
IDLE_ENVIRONMENT_SECONDS = 60.0
INIT_TIMEOUT_SECONDS = 60.0  # generous: imports on a busy machine; Lambda allows 10 s


class LambdaError(Exception):
    """The invocation failed as Lambda reports it: API Gateway answers 500 for these."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.payload = {"errorType": error_type, "errorMessage": message}


@dataclass
class LocalContext:
    """What Lambda passes as `context`, enough for Powertools."""

    function_name: str
    memory_limit_in_mb: int
    timeout: float
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


def load_handler(
    code_uri: Path, handler: str, function: str, instance: int = 0
) -> Callable[[dict[str, Any], Any], Any]:
    """Import the function's module afresh, as a new Lambda execution environment does."""
    module_name, _, attribute = handler.rpartition(".")
    path = code_uri / f"{module_name.replace('.', '/')}.py"
    loader = importlib.util.spec_from_file_location(f"_lambda_{function}_{instance}", path)
    if loader is None or loader.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    found: Callable[[dict[str, Any], Any], Any] = getattr(module, attribute)
    return found


def checked_response(payload: str) -> Any:
    """The handler's JSON response, or Lambda's error when it is too large to return."""
    size = len(payload.encode())
    if size > MAX_RESPONSE_BYTES:
        raise LambdaError(
            "Function.ResponseSizeTooLarge",
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes).",
        )
    return json.loads(payload)


class InProcessPool:
    """Environments of one function inside this process (the unit tests' stack)."""

    def __init__(self, spec: FunctionSpec, max_instances: int) -> None:
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
                handler = load_handler(
                    self.spec.code_uri, self.spec.handler, self.spec.name, instance
                )
            try:
                context = LocalContext(self.spec.name, self.spec.memory, self.spec.timeout)
                with calls.acting_as(self.spec.name):
                    result = handler(event, context)
            except Exception as error:
                log.exception("%s raised", self.spec.name)
                raise LambdaError(type(error).__name__, str(error)) from error
            finally:
                self._idle.put(handler)
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as error:
            raise LambdaError(
                "Runtime.MarshalError", f"Unable to marshal response: {error}"
            ) from error
        return checked_response(payload)

    def close(self) -> None:
        return None


class _Worker:
    """One execution environment process and the pipe to it."""

    def __init__(self, context: ForkServerContext, config: Any) -> None:
        from flowdeploy.local import worker

        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=worker.serve, args=(child, config), name=config.function, daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False
        self.idle_since = time.monotonic()

    def start(self) -> None:
        """Wait for the init phase; LambdaError if it failed."""
        if not self.connection.poll(INIT_TIMEOUT_SECONDS):
            self.stop()
            raise LambdaError("Runtime.InitTimeout", "the function did not finish its init")
        kind, detail = self.connection.recv()
        if kind != "ready":
            self.stop()
            raise LambdaError(detail["errorType"], detail["errorMessage"])
        self.ready = True

    def invoke(self, event: dict[str, Any], timeout: float) -> tuple[str, Any]:
        request_id = str(uuid.uuid4())
        self.connection.send(("invoke", event, request_id, timeout))
        if not self.connection.poll(timeout):
            self.stop()
            raise LambdaError(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            )
        try:
            reply = self.connection.recv()
        except EOFError:
            self.stop()
            raise LambdaError(
                "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited"
            ) from None
        return reply[0], reply[1]

    def stop(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class ProcessPool:
    """Environments of one function, each its own process (`make dev`)."""

    def __init__(
        self,
        spec: FunctionSpec,
        max_instances: int,
        context: ForkServerContext,
        config: Callable[[], Any],
    ) -> None:
        self.spec = spec
        self._context = context
        self._config = config
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(max_instances)
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._slots:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self._context, self._config())
                worker.start()
            kind, detail = worker.invoke(event, float(self.spec.timeout))
            worker.idle_since = time.monotonic()
            with self._lock:
                self._idle.append(worker)
        if kind == "error":
            log.error(
                "%s failed: %s: %s", self.spec.name, detail["errorType"], detail["errorMessage"]
            )
            raise LambdaError(detail["errorType"], detail["errorMessage"])
        return checked_response(detail)

    def retire_idle(self, longer_than: float) -> int:
        """Stop environments idle for longer than `longer_than` seconds, as Lambda does."""
        now = time.monotonic()
        with self._lock:
            stale = [w for w in self._idle if now - w.idle_since > longer_than]
            self._idle = [w for w in self._idle if w not in stale]
        for worker in stale:
            worker.stop()
        return len(stale)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


def fork_server() -> ForkServerContext:
    """The fork server every environment process starts from (started on first use)."""
    from flowdeploy.local import worker

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*worker.PRELOAD, "flowdeploy.local.worker"])
    return context


def _start_fork_server() -> None:
    from multiprocessing import forkserver

    forkserver.ensure_running()


class Functions:
    """Every function of the template, ready to invoke by name.

    `environments` maps a function to its environment variables: given, each invocation
    runs in a process of its own with exactly those; absent, in this process.
    """

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        environments: Mapping[str, dict[str, str]] | None = None,
        record_calls: Path | None = None,
        resource_aliases: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.specs = dict(specs)
        self.pools: dict[str, InProcessPool | ProcessPool] = {}
        self._closed = threading.Event()
        context = fork_server() if environments is not None else None
        if context is not None:
            threading.Thread(target=self._recycle, daemon=True, name="recycle").start()
            # Its imports take seconds: start it now, not on the first request.
            threading.Thread(target=_start_fork_server, daemon=True).start()
        for name, spec in self.specs.items():
            limit = min(MAX_INSTANCES, spec.reserved_concurrency or MAX_INSTANCES)
            if context is None or environments is None:
                self.pools[name] = InProcessPool(spec, limit)
                continue
            self.pools[name] = ProcessPool(
                spec,
                limit,
                context,
                _configure(spec, environments[name], record_calls, resource_aliases),
            )

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        return self.pools[name].invoke(event)

    def _recycle(self) -> None:
        while not self._closed.wait(IDLE_ENVIRONMENT_SECONDS / 4):
            for pool in list(self.pools.values()):
                if isinstance(pool, ProcessPool):
                    pool.retire_idle(IDLE_ENVIRONMENT_SECONDS)

    def close(self) -> None:
        self._closed.set()
        for pool in self.pools.values():
            pool.close()


def _configure(
    spec: FunctionSpec,
    environment: dict[str, str],
    record_calls: Path | None,
    resource_aliases: Callable[[], dict[str, str]] | None,
) -> Callable[[], Any]:
    from flowdeploy.local.worker import WorkerConfig

    def config() -> WorkerConfig:
        return WorkerConfig(
            function=spec.name,
            code_uri=spec.code_uri,
            handler=spec.handler,
            memory=spec.memory,
            environment=environment,
            record_calls=record_calls,
            resource_aliases=resource_aliases() if resource_aliases else None,
        )

    return config
