"""Errors a caller can cause, each with the HTTP status it maps to.

The mapping to responses happens once, in `flowdeploy.http`.
"""

from __future__ import annotations

from pydantic import ValidationError


class ApiError(Exception):
    """Base of every caller-visible error; `message` is shown as `{"error": message}`."""

    status = 400
    # Seconds after which repeating the request may succeed (the Retry-After header).
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Response headers that go with the error."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    """Also what a caller gets when it may not see the thing: existence never leaks."""

    status = 404


class MethodNotAllowed(ApiError):
    """The path exists, the method does not: `allowed` are the methods it takes."""

    status = 405

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        self.allowed = ", ".join(allowed)
        super().__init__(f"{method} is not allowed on {path}; allowed: {self.allowed}")

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


class RequestTimeout(ApiError):
    """The request's own work (a read of a deployment) took longer than its budget."""

    status = 408


class Conflict(ApiError):
    status = 409


class ConcurrentChange(Conflict):
    """Another request changed the same thing first; repeating the request is safe."""

    retry_after = 1


class TooManyRequests(ApiError):
    """A limit on what one user may have going at once; retrying later may succeed."""

    status = 429
    retry_after = 5


class Unprocessable(ApiError):
    """Well-formed, but its result cannot be given: the run it asks about failed, was
    stopped or ended without a transaction; the message says why."""

    status = 422


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class GatewayTimeout(ApiError):
    """What the request waits for (a run, its transaction) did not happen within the time
    an HTTP answer may take; the work goes on: ask again."""

    status = 504
    retry_after = 1


class ServiceUnavailable(ApiError):
    """A dependency failed; retrying later may succeed."""

    status = 503
    retry_after = 2


def describe(error: ValidationError) -> str:
    """One line naming each bad field: `action_signer: must be a base58 public key`."""
    parts = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown field: {where}")
        elif item["type"] in {"ivalue", "pubkey"} or not where:
            parts.append(item["msg"])
        else:
            parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
