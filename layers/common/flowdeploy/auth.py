"""Who is calling: access tokens, API keys, bare public keys and `fr-` run tokens.

Precedence follows the backend: a JWT in `Authorization`, then `x-api-key`, then a
base58 public key in `Authorization` (an unauthenticated caller). A credential
that is present but bad is a 401; it never degrades to a weaker kind of caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import jwt

from flowdeploy import base58
from flowdeploy.errors import Unauthorized
from flowdeploy.ids import parse_uuid
from flowdeploy.settings import jwt_secret, run_token_secret

JWT_AUDIENCE = "authenticated"
API_KEY_PREFIX = "b3-"
RUN_TOKEN_PREFIX = "fr-"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated user (`user_id` set), an anonymous wallet (`pubkey` only), or the
    AWS account the service runs in (an event trigger: `via` names its origin).
    """

    kind: Literal["user", "anonymous", "account"]
    user_id: str | None = None
    pubkey: str | None = None
    via: Literal["jwt", "api_key", "pubkey", "eventbridge", "schedule", "sqs", "s3"] = "jwt"

    @property
    def authenticated(self) -> bool:
        return self.kind == "user"

    def record(self) -> dict[str, str | None]:
        """What a run stores about who started it (never the credential)."""
        return {"kind": self.kind, "user_id": self.user_id, "pubkey": self.pubkey, "via": self.via}


@dataclass(frozen=True, slots=True)
class Credentials:
    """The raw credential headers of one request."""

    authorization: str | None
    api_key: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Credentials:
        lowered = {k.lower(): v for k, v in headers.items()}
        return cls(lowered.get("authorization"), lowered.get("x-api-key"))

    @property
    def bearer(self) -> str | None:
        """The token of `Authorization: Bearer <token>` (the scheme is optional, as upstream)."""
        if self.authorization is None:
            return None
        value = self.authorization.strip()
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() == "bearer":
            value = rest.strip()
        return value or None


ApiKeyLookup = Callable[[str], str | None]
"""Maps an API key's hash to its owner's user id (None when unknown)."""


def resolve_caller(credentials: Credentials, lookup_api_key: ApiKeyLookup) -> Caller | None:
    """The caller these credentials prove, or None when none were sent; 401 if any is bad."""
    token = credentials.bearer
    if token is not None and token.startswith(RUN_TOKEN_PREFIX):
        raise Unauthorized("a run token only grants access to its own flow run")
    if token is not None and token.count(".") == 2:
        return Caller(kind="user", user_id=verify_access_token(token), via="jwt")
    if token is not None and not base58.is_pubkey(token):
        raise Unauthorized(
            "malformed Authorization header: expected Bearer <access token> "
            "or Bearer <base58 public key>"
        )
    if credentials.api_key is not None:
        user_id = lookup_api_key(hash_api_key(credentials.api_key.strip()))
        if user_id is None:
            raise Unauthorized("invalid API key")
        return Caller(kind="user", user_id=user_id, via="api_key")
    if token is not None:
        return Caller(kind="anonymous", pubkey=token, via="pubkey")
    return None


def verify_access_token(token: str) -> str:
    """The user id (`sub`) of a valid HS256 access token; 401 otherwise."""
    try:
        claims = jwt.decode(
            token,
            jwt_secret(),
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"access token audience must be {JWT_AUDIENCE!r}") from None
    except jwt.PyJWTError as error:
        raise Unauthorized(f"invalid access token: {error}") from None
    user_id = parse_uuid(str(claims["sub"]))
    if user_id is None:
        raise Unauthorized("invalid access token: sub must be a user id (UUID)")
    return user_id


def issue_access_token(user_id: str, secret: bytes, lifetime_seconds: int) -> str:
    """An access token like Supabase's (used by the local stack and the tests)."""
    import time

    now = int(time.time())
    claims = {
        "sub": user_id,
        "aud": JWT_AUDIENCE,
        "role": JWT_AUDIENCE,
        "iat": now,
        "exp": now + lifetime_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


# -- API keys ----------------------------------------------------------------


def new_api_key() -> str:
    """`b3-` + 32 random bytes, base64url: shown to its owner once, never stored."""
    return API_KEY_PREFIX + _b64url(secrets.token_bytes(32))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def trim_api_key(key: str) -> str:
    return "*****" + key[-5:]


# -- Run tokens --------------------------------------------------------------


def issue_run_token(run_id: str) -> str:
    """`fr-` + base64url(run id ‖ HMAC-SHA256(secret, run id)): self-verifying, 67 chars."""
    raw = uuid.UUID(run_id).bytes
    return RUN_TOKEN_PREFIX + _b64url(raw + _run_mac(raw))


def run_id_of_token(token: str) -> str | None:
    """The run a genuine `fr-` token grants access to, or None for anything else."""
    if not token.startswith(RUN_TOKEN_PREFIX) or len(token) != 67:
        return None
    try:
        raw = base64.urlsafe_b64decode(token[len(RUN_TOKEN_PREFIX) :] + "==")
    except ValueError:
        return None
    if len(raw) != 48 or not hmac.compare_digest(raw[16:], _run_mac(raw[:16])):
        return None
    return str(uuid.UUID(bytes=raw[:16]))


def _run_mac(run_id_bytes: bytes) -> bytes:
    return hmac.new(run_token_secret(), b"flow-run:" + run_id_bytes, hashlib.sha256).digest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def require_user(caller: Caller | None) -> str:
    """The user id of an authenticated caller; 401 for no credential or a bare public key."""
    if caller is None:
        raise Unauthorized(
            "unauthenticated: send Authorization: Bearer <access token> or x-api-key"
        )
    if caller.user_id is None:
        raise Unauthorized("this route needs an access token or an API key, not a public key")
    return caller.user_id
