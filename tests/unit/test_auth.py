"""Credentials: access tokens, API keys, public keys and run tokens."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from flowdeploy.auth import (
    Caller,
    Credentials,
    hash_api_key,
    issue_run_token,
    new_api_key,
    require_user,
    resolve_caller,
    run_id_of_token,
)
from flowdeploy.errors import Unauthorized
from tests.conftest import JWT_SECRET, token_for

USER = "885623c5-d001-41da-9d34-5577e49df350"
WALLET = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"


def no_keys(_: str) -> str | None:
    return None


def resolve(authorization: str | None = None, api_key: str | None = None) -> Caller | None:
    return resolve_caller(Credentials(authorization, api_key), no_keys)


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": USER, "aud": "authenticated", "exp": now + 3600, **overrides}


def test_an_access_token_identifies_its_user() -> None:
    assert resolve(f"Bearer {token_for(USER)}") == Caller(kind="user", user_id=USER, via="jwt")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (jwt.encode(claims(exp=int(time.time()) - 5), JWT_SECRET), "expired"),
        (jwt.encode(claims(), "another-secret-of-enough-length-123"), "Signature"),
        (jwt.encode(claims(aud="anon"), JWT_SECRET), "audience"),
        (jwt.encode({"sub": USER, "aud": "authenticated"}, JWT_SECRET), "exp"),
        (jwt.encode(claims(sub="not-a-uuid"), JWT_SECRET), "sub must be a user id"),
        (jwt.encode(claims(), None, algorithm="none"), "invalid access token"),
        (jwt.encode(claims(), JWT_SECRET, algorithm="HS512"), "invalid access token"),
    ],
    ids=["expired", "forged", "wrong-audience", "no-exp", "bad-sub", "alg-none", "alg-hs512"],
)
def test_a_bad_access_token_is_refused_not_treated_as_anonymous(token: str, message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        resolve(f"Bearer {token}")


def test_an_api_key_identifies_its_owner() -> None:
    key = new_api_key()
    owners = {hash_api_key(key): USER}
    caller = resolve_caller(Credentials(None, key), owners.get)
    assert caller == Caller(kind="user", user_id=USER, via="api_key")


def test_api_keys_have_the_upstream_shape() -> None:
    key = new_api_key()
    assert key.startswith("b3-")
    assert len(key) == 46


def test_an_unknown_api_key_is_401_even_with_a_public_key_beside_it() -> None:
    with pytest.raises(Unauthorized, match="invalid API key"):
        resolve(f"Bearer {WALLET}", api_key="b3-unknown")


def test_a_base58_public_key_is_an_anonymous_caller() -> None:
    assert resolve(f"Bearer {WALLET}") == Caller(kind="anonymous", pubkey=WALLET, via="pubkey")


def test_the_bearer_scheme_is_optional_for_a_public_key_as_upstream() -> None:
    assert resolve(WALLET) == Caller(kind="anonymous", pubkey=WALLET, via="pubkey")


@pytest.mark.parametrize("value", ["Bearer not-base58-0OIl", "Bearer 1111", "Bearer"])
def test_a_malformed_authorization_header_is_401(value: str) -> None:
    with pytest.raises(Unauthorized):
        resolve(value)


def test_no_credential_is_no_caller() -> None:
    assert resolve() is None


def test_a_run_token_is_not_a_caller() -> None:
    with pytest.raises(Unauthorized, match="run token"):
        resolve(f"Bearer {issue_run_token(str(uuid.uuid4()))}")


def test_routes_for_users_refuse_public_key_callers() -> None:
    with pytest.raises(Unauthorized):
        require_user(Caller(kind="anonymous", pubkey=WALLET))
    with pytest.raises(Unauthorized):
        require_user(None)
    assert require_user(Caller(kind="user", user_id=USER)) == USER


def test_a_run_token_names_its_run_and_has_the_documented_shape() -> None:
    run_id = str(uuid.uuid4())
    token = issue_run_token(run_id)
    assert token.startswith("fr-")
    assert len(token) == 67
    assert run_id_of_token(token) == run_id


def test_a_tampered_run_token_grants_nothing() -> None:
    token = issue_run_token(str(uuid.uuid4()))
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert run_id_of_token(flipped) is None
    assert run_id_of_token("fr-short") is None
    assert run_id_of_token("fr-" + "!" * 64) is None


def test_a_malformed_authorization_header_is_401_even_beside_a_valid_api_key() -> None:
    key = new_api_key()
    owners = {hash_api_key(key): USER}
    with pytest.raises(Unauthorized, match="malformed Authorization"):
        resolve_caller(Credentials("Bearer not-a-credential!!", key), owners.get)


def test_an_api_key_beside_a_public_key_makes_an_authenticated_caller() -> None:
    key = new_api_key()
    owners = {hash_api_key(key): USER}
    caller = resolve_caller(Credentials(f"Bearer {WALLET}", key), owners.get)
    assert caller == Caller(kind="user", user_id=USER, via="api_key")
