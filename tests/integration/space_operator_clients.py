"""The Space Operator clients' HTTP side, as they send and judge it, for contract tests.

`V012` sends exactly what `@space-operator/client` v0.12.2 (`src/client.ts`) sends and
accepts only what it accepts: 200 or 201, else `Error(body.error)` when the content type is
exactly `application/json`. `Next` is `@space-operator/client-next`: any 2xx, else
`ApiError(status, body.error)`, and each answer checked against the zod schemas of
`@space-operator/contracts/src/client.ts`, ported below (strict where zod is `.strict()`,
extra fields allowed where it is `.passthrough()`). Requests carry no header the client
would not send (a cleared requests session: Host and Content-Length only, as fetch adds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import requests


class ClientError(Exception):
    """What a client raises; `status` is set by client-next's ApiError."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ContractError(AssertionError):
    """An answer a client-next zod schema would refuse."""


# -- zod schemas of @space-operator/contracts/src/client.ts -------------------------------

IVALUE_STRING_TAGS = ("S", "D", "I", "U", "I1", "U1", "F", "B3", "B6", "BY")


def ivalue(value: Any, path: str = "value") -> None:
    """`iValueSchema`: one key, strict, recursively."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ContractError(f"{path}: not an IValue: {value!r}")
    ((tag, payload),) = value.items()
    if tag in IVALUE_STRING_TAGS and isinstance(payload, str):
        return
    if tag == "B" and isinstance(payload, bool):
        return
    if tag == "N" and payload == 0 and not isinstance(payload, bool):
        return
    if tag == "A" and isinstance(payload, list):
        for index, item in enumerate(payload):
            ivalue(item, f"{path}[{index}]")
        return
    if tag == "M" and isinstance(payload, dict):
        for name, item in payload.items():
            ivalue(item, f"{path}.{name}")
        return
    raise ContractError(f"{path}: not an IValue: {value!r}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require(body: Any, fields: dict[str, Callable[[Any], bool]], strict: bool = False) -> None:
    if not isinstance(body, dict):
        raise ContractError(f"not an object: {body!r}")
    for name, check in fields.items():
        if not check(body.get(name)):
            raise ContractError(f"{name}: {body.get(name)!r} in {body!r}")
    if strict and set(body) - set(fields):
        raise ContractError(f"unknown keys {set(body) - set(fields)} in {body!r}")


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def signature_request(body: Any) -> None:
    """`signatureRequestSchema` (passthrough)."""

    def presigners(value: Any) -> bool:
        return isinstance(value, list) and all(
            isinstance(s, dict) and _string(s.get("pubkey")) and _string(s.get("signature"))
            for s in value
        )

    _require(
        body,
        {
            "id": _number,
            "time": lambda v: _string(v) or _number(v),
            "pubkey": _string,
            "message": _string,
            "timeout": _number,
            "kind": _optional(lambda v: v in {"transaction_message", "message"}),
            "flow_run_id": _optional(_string),
            "signatures": _optional(presigners),
        },
    )


def success(body: Any) -> None:
    _require(body, {"success": lambda v: v is True})


def flow_run_token(body: Any) -> None:
    _require(body, {"flow_run_id": _string, "token": _string})


def auth_init(body: Any) -> None:
    _require(body, {"msg": _string}, strict=True)


def confirm_auth(body: Any) -> None:
    _require(body, {"session": lambda v: isinstance(v, dict), "new_user": _bool})
    _require(body["session"], {"access_token": _string})


def claim_token(body: Any) -> None:
    _require(
        body,
        {
            "user_id": _string,
            "access_token": _string,
            "refresh_token": _string,
            "expires_at": _number,
        },
    )


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


# -- the two clients --------------------------------------------------------------------


def _session() -> requests.Session:
    session = requests.Session()
    session.headers.clear()
    return session


def _credential(token: str) -> dict[str, str]:
    """Both clients: a `b3-` key as x-api-key, anything else as a Bearer token."""
    if token.startswith("b3-"):
        return {"x-api-key": token}
    return {"authorization": token if token.startswith("Bearer ") else f"Bearer {token}"}


class V012:
    """`new Client({host, token, anonKey})` of @space-operator/client v0.12.2."""

    def __init__(self, host: str, token: str | None = None, anon_key: str = "anon") -> None:
        self.host, self.token, self.anon_key = host, token, anon_key
        self.http = _session()

    def _send(self, method: str, url: str, body: Any = None, auth: Any = True) -> Any:
        headers: dict[str, str] = {}
        if body is not None:
            headers |= {"content-type": "application/json", "accept-encoding": "gzip"}
        if auth is True:
            if self.token is None:
                raise ClientError("no authentication token")
            headers |= _credential(self.token)
        elif isinstance(auth, str):
            headers |= _credential(auth)
        data = json.dumps(body) if body is not None else None
        reply = self.http.request(method, url, data=data, headers=headers, timeout=40)
        return self.parse(reply)

    @staticmethod
    def parse(reply: requests.Response) -> Any:
        """`parseResponse`: 200/201 only; the error from JSON only under exactly that type."""
        if reply.status_code not in {200, 201}:
            if reply.headers.get("content-type") == "application/json":
                body = reply.json()
                raise ClientError(body.get("error") or json.dumps(body))
            raise ClientError(reply.text or "An error occurred")
        return reply.json()

    def _post_anon(self, path: str, body: Any) -> Any:
        headers = {
            "content-type": "application/json",
            "accept-encoding": "gzip",
            "apikey": self.anon_key,
        }
        reply = self.http.post(self.host + path, data=json.dumps(body), headers=headers, timeout=40)
        return self.parse(reply)

    def deploy_flow(self, flow_id: int) -> str:
        return str(self._send("POST", f"{self.host}/flow/deploy/{flow_id}", {})["deployment_id"])

    def start_deployment(
        self, spec: dict[str, Any], params: Any = None, token: str | None = None
    ) -> Any:
        query = urlencode({k: spec[k] for k in ("id", "flow", "tag") if spec.get(k) is not None})
        return self._send("POST", f"{self.host}/deployment/start?{query}", params, token or True)

    def get_signature_request(self, run_id: str, token: str | None = None) -> Any:
        url = f"{self.host}/flow/signature_request/{run_id}"
        return self._send("GET", url, None, token or True)

    def submit_signature(self, params: dict[str, Any]) -> Any:
        body = {k: v for k, v in params.items() if v is not None}  # JSON.stringify drops undefined
        return self._send("POST", f"{self.host}/signature/submit", body, auth=False)

    def get_flow_output(self, run_id: str, token: str | None = None) -> Any:
        return self._send("GET", f"{self.host}/flow/output/{run_id}", None, token or True)

    def stop_flow(self, run_id: str, params: dict[str, Any]) -> Any:
        return self._send("POST", f"{self.host}/flow/stop/{run_id}", params)

    def init_auth(self, pubkey: str) -> str:
        return str(self._post_anon("/auth/init", {"pubkey": pubkey})["msg"])

    def confirm_auth(self, msg: str, signature: str) -> Any:
        return self._post_anon("/auth/confirm", {"token": f"{msg}.{signature}"})

    def claim_token(self) -> Any:
        return self._send("POST", f"{self.host}/auth/claim_token")

    def upsert_wallet(self, body: Any) -> Any:
        return self._send("POST", f"{self.host}/wallets/upsert", body)


class Next:
    """`createClient({baseUrl, auth, anonKey})` of @space-operator/client-next."""

    def __init__(self, base_url: str, token: str | None = None, anon_key: str = "anon") -> None:
        self.base_url, self.token, self.anon_key = base_url, token, anon_key
        self.http = _session()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        auth: str | bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = dict(headers or {})
        token = self.token if auth is None else (auth or None)
        if isinstance(token, str):
            sent |= _credential(token)
        data = None
        if body is not None:
            sent["content-type"] = "application/json"
            data = json.dumps(body)
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        reply = self.http.request(method, url, data=data, headers=sent, timeout=40)
        if not 200 <= reply.status_code < 300 and reply.status_code != 304:
            text = reply.text
            message = text
            if "application/json" in reply.headers.get("content-type", "").lower():
                parsed = json.loads(text) if text else None
                if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
                    message = parsed["error"]
            raise ClientError(message or f"{method} {url} failed", reply.status_code)
        return reply

    def contract(self, check: Callable[[Any], None], *args: Any, **kw: Any) -> Any:
        body = self.request(*args, **kw).json()
        check(body)
        return body

    def start(self, spec: dict[str, Any], params: dict[str, Any] | None = None) -> Any:
        """`deployments.start`: always a body, always a tag with a flow."""
        query = {"id": spec["id"]} if "id" in spec else {
            "flow": str(spec["flow"]), "tag": spec.get("tag") or "latest"
        }  # fmt: skip
        return self.contract(
            flow_run_token, "POST", "/deployment/start", query=query, body=params or {}
        )

    def signature_request(self, run_id: str, token: str, timeout: float = 30) -> Any:
        """`handle.signatureRequest()`: re-polls every 250 ms while the answer is 404."""
        started = time.monotonic()
        while True:
            try:
                return self.contract(
                    signature_request, "GET", f"/flow/signature_request/{run_id}", auth=token
                )
            except ClientError as error:
                if error.status != 404 or time.monotonic() - started > timeout:
                    raise
            time.sleep(0.25)

    def submit(self, body: dict[str, Any]) -> Any:
        return self.contract(success, "POST", "/signature/submit", body=body, auth=False)

    def output(self, run_id: str, token: str) -> Any:
        return self.contract(ivalue, "GET", f"/flow/output/{run_id}", auth=token)

    def stop(self, run_id: str, token: str, params: dict[str, Any] | None = None) -> Any:
        return self.contract(success, "POST", f"/flow/stop/{run_id}", body=params or {}, auth=token)

    def read(
        self,
        spec: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        skip_cache: bool = False,
        etag: str | None = None,
    ) -> requests.Response:
        """`deployments.read`: GET with the inputs in the query (≤ 1,500 bytes, not skipping
        the cache, If-None-Match when it holds an ETag), else POST with a body."""
        query = {"id": spec["id"]} if "id" in spec else {
            "flow": str(spec["flow"]), "tag": spec.get("tag") or "latest"
        }  # fmt: skip
        encoded = json.dumps(inputs, separators=(",", ":")) if inputs is not None else None
        if (encoded is None or len(encoded) <= 1500) and not skip_cache:
            if encoded is not None:
                query["inputs"] = encoded
            headers = {"If-None-Match": etag} if etag else None
            reply = self.request("GET", "/deployment/read", query=query, headers=headers)
        else:
            body: dict[str, Any] = {"skip_cache": skip_cache}
            if inputs is not None:
                body["inputs"] = inputs
            reply = self.request("POST", "/deployment/read", query=query, body=body)
        if reply.status_code != 304:
            ivalue(reply.json())
        return reply

    def login_with_signature(self, pubkey: str, sign: Callable[[str], str]) -> Any:
        anon = {"apikey": self.anon_key}
        init = self.contract(
            auth_init, "POST", "/auth/init", body={"pubkey": pubkey}, auth=False, headers=anon
        )
        token = f"{init['msg']}.{sign(init['msg'])}"
        return self.contract(
            confirm_auth, "POST", "/auth/confirm", body={"token": token}, auth=False, headers=anon
        )

    def claim_token(self) -> Any:
        return self.contract(claim_token, "POST", "/auth/claim_token")

    def upsert_wallet(self, body: dict[str, Any]) -> Any:
        return self.request("POST", "/wallets/upsert", body=body).json()
