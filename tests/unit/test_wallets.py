"""Server-held wallets: POST/GET/DELETE /wallet, KMS encryption at rest, signing keypairs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from flowdeploy import base58, wallets
from flowdeploy.errors import BadRequest, Conflict, NotFound
from flowdeploy.ids import new_id
from flowdeploy.store.models import WalletItem
from tests.conftest import ROOT, new_user
from tests.unit.api import Api

FIELDS = {"id", "name", "pubkey", "created_at"}


def exported(keypair: Keypair) -> str:
    """What solana-keygen / Phantom export: base58 of secret ‖ public."""
    return base58.encode(bytes(keypair))


def create(api: Api, user: str, **body: Any) -> dict[str, Any]:
    reply = api.call("POST", "/wallet", user=user, json_body={"name": "hot", **body})
    assert reply.status == 201, reply.body
    return dict(reply.body)


def stored(user_id: str, wallet_id: str) -> dict[str, Any]:
    """The raw item, as DynamoDB holds it."""
    item = boto3.client("dynamodb").get_item(
        TableName="WalletsTable", Key={"user_id": {"S": user_id}, "id": {"S": wallet_id}}
    )
    return dict(item["Item"])


# -- The routes ----------------------------------------------------------------


def test_creating_a_wallet_generates_a_keypair_and_shows_no_secret(api: Api) -> None:
    wallet = create(api, new_user(), name="  treasury  ")
    assert set(wallet) == FIELDS
    assert wallet["name"] == "treasury"
    assert base58.is_pubkey(wallet["pubkey"])


def test_importing_a_keypair_keeps_its_public_key(api: Api) -> None:
    keypair = Keypair()
    wallet = create(api, new_user(), keypair=exported(keypair))
    assert wallet["pubkey"] == str(keypair.pubkey())
    assert set(wallet) == FIELDS


def test_each_generated_wallet_has_its_own_keypair(api: Api) -> None:
    user = new_user()
    assert create(api, user)["pubkey"] != create(api, user)["pubkey"]


def test_listing_shows_the_callers_wallets_oldest_first(api: Api) -> None:
    user, other = new_user(), new_user()
    first, second = create(api, user, name="a"), create(api, user, name="b")
    create(api, other)
    listed = api.call("GET", "/wallet", user=user)
    assert listed.status == 200
    assert listed.body == {"wallets": [first, second], "next": None}
    assert api.call("GET", "/wallet", user=new_user()).body["wallets"] == []


def test_deleting_a_wallet_removes_it_and_frees_its_public_key(api: Api) -> None:
    user, keypair = new_user(), Keypair()
    wallet = create(api, user, keypair=exported(keypair))
    deleted = api.call("DELETE", f"/wallet/{wallet['id']}", user=user)
    assert (deleted.status, deleted.body) == (204, None)
    assert api.call("GET", "/wallet", user=user).body["wallets"] == []
    assert api.call("DELETE", f"/wallet/{wallet['id']}", user=user).status == 404
    assert create(api, user, keypair=exported(keypair))["pubkey"] == str(keypair.pubkey())


def test_another_users_wallet_is_not_found(api: Api) -> None:
    owner = new_user()
    wallet = create(api, owner)
    reply = api.call("DELETE", f"/wallet/{wallet['id']}", user=new_user())
    assert reply.status == 404
    assert reply.body == {"error": f"wallet not found: {wallet['id']}"}
    assert api.call("GET", "/wallet", user=owner).body["wallets"] == [wallet]


@pytest.mark.parametrize("wallet_id", ["0194e5ac-9103-7c52-971e-f71f83c5de2e", "not-a-uuid"])
def test_an_unknown_wallet_is_not_found(api: Api, wallet_id: str) -> None:
    reply = api.call("DELETE", f"/wallet/{wallet_id}", user=new_user())
    assert reply.status == 404
    assert reply.body["error"].startswith("wallet not found")


def test_the_same_public_key_twice_is_a_conflict(api: Api) -> None:
    user, keypair = new_user(), Keypair()
    create(api, user, keypair=exported(keypair))
    again = api.call(
        "POST", "/wallet", user=user, json_body={"name": "again", "keypair": exported(keypair)}
    )
    assert again.status == 409
    assert again.body == {"error": f"you already have a wallet with public key {keypair.pubkey()}"}
    assert len(api.call("GET", "/wallet", user=user).body["wallets"]) == 1


def test_two_users_may_import_the_same_keypair(api: Api) -> None:
    keypair = Keypair()
    first = create(api, new_user(), keypair=exported(keypair))
    second = create(api, new_user(), keypair=exported(keypair))
    assert first["pubkey"] == second["pubkey"]


def test_an_api_key_may_manage_wallets(api: Api) -> None:
    user = new_user()
    key = api.call("POST", "/apikey", user=user, json_body={"name": "ci"}).body["key"]
    created = api.call("POST", "/wallet", headers={"x-api-key": key}, json_body={"name": "ci"})
    assert created.status == 201
    assert api.call("GET", "/wallet", user=user).body["wallets"] == [created.body]


KEYPAIR = Keypair()
MISMATCHED = base58.encode(bytes(KEYPAIR)[:32] + bytes(Keypair().pubkey()))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "w", "keypair": "0OIl" + exported(KEYPAIR)[4:]}, "keypair: not base58"),
        ({"name": "w", "keypair": str(KEYPAIR.pubkey())}, "keypair: must be 64 bytes"),
        ({"name": "w", "keypair": "1" * 129}, "keypair: 129 characters is too long"),
        ({"name": "w", "keypair": MISMATCHED}, "keypair: its last 32 bytes are not the public"),
        ({"name": "w", "keypair": " "}, "keypair: must not be empty"),
        ({"name": "w", "keypair": 7}, "keypair: Input should be a valid string"),
        ({"name": "w", "secret": "x"}, "unknown field: secret"),
        ({"name": "   "}, "name: String should have at least 1 character"),
        ({"name": "n" * 101}, "name: String should have at most 100 characters"),
        ({}, "name: Field required"),
    ],
    ids=[
        "bad-base58",
        "32-bytes",
        "too-long",
        "mismatched-halves",
        "empty",
        "not-a-string",
        "unknown-field",
        "blank-name",
        "long-name",
        "no-name",
    ],
)
def test_a_bad_wallet_body_is_a_400_saying_why(
    api: Api, body: dict[str, Any], message: str
) -> None:
    user = new_user()
    reply = api.call("POST", "/wallet", user=user, json_body=body)
    assert reply.status == 400
    assert reply.body["error"].startswith(message), reply.body
    secret = body.get("keypair")
    if isinstance(secret, str) and secret.strip():
        assert secret not in reply.body["error"]
    assert api.call("GET", "/wallet", user=user).body["wallets"] == []


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {KEYPAIR.pubkey()}", "Bearer fr-AaIHUpXQev-hT6DFK01R0m14yiufWU_yJkG0TudlfJN0"],
    ids=["none", "public-key", "run-token"],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/wallet"), ("GET", "/wallet"), ("DELETE", "/wallet/x")]
)
def test_wallets_need_a_user(api: Api, authorization: str | None, method: str, path: str) -> None:
    headers = {"authorization": authorization} if authorization else {}
    reply = api.call(method, path, headers=headers, json_body={"name": "w"})
    assert reply.status == 401


# -- Encryption at rest -----------------------------------------------------------


def test_the_secret_is_stored_only_as_kms_ciphertext_bound_to_its_row(
    aws: dict[str, Any],
) -> None:
    user, keypair = new_user(), Keypair()
    wallet = wallets.create_wallet(user, {"name": "w", "keypair": exported(keypair)})
    item = stored(user, wallet.id)
    assert set(item) == {
        "user_id",
        "id",
        "kind",
        "name",
        "pubkey",
        "encrypted_secret",
        "created_at",
    }
    ciphertext = item["encrypted_secret"]["B"]
    secret = bytes(keypair)
    assert secret not in ciphertext
    assert secret[:32] not in ciphertext
    kms = boto3.client("kms")
    context = {"user_id": user, "wallet_id": wallet.id}
    assert kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=context)["Plaintext"] == secret
    for wrong in (
        {"user_id": new_user(), "wallet_id": wallet.id},
        {"user_id": user, "wallet_id": new_id()},
        {},
    ):
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=wrong)


def test_a_ciphertext_moved_to_another_row_does_not_unlock(aws: dict[str, Any]) -> None:
    user = new_user()
    victim = wallets.create_wallet(user, {"name": "victim"})
    thief = wallets.create_wallet(user, {"name": "thief"})
    item = WalletItem.get(user, thief.id)
    item.encrypted_secret = WalletItem.get(user, victim.id).encrypted_secret
    item.save()
    with pytest.raises(wallets.WalletUnavailable, match="cannot be unlocked: KMS Decrypt failed"):
        wallets.signing_keypair(thief)


def test_the_wallet_key_is_the_templates_kms_key(aws: dict[str, Any]) -> None:
    key = boto3.client("kms").describe_key(KeyId=os.environ["WALLET_KEY_ID"])["KeyMetadata"]
    assert key["Arn"] == aws["WalletKey.Arn"]
    assert boto3.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]


# -- The domain functions the engine calls ---------------------------------------


def test_signing_keypair_signs_for_the_wallets_public_key(aws: dict[str, Any]) -> None:
    wallet = wallets.create_wallet(new_user(), {"name": "signer"})
    keypair = wallets.signing_keypair(wallet)
    assert str(keypair.pubkey()) == wallet.pubkey
    signature = keypair.sign_message(b"flow run 42")
    assert signature.verify(Pubkey.from_string(wallet.pubkey), b"flow run 42")


def test_an_imported_keypair_comes_back_byte_for_byte(aws: dict[str, Any]) -> None:
    keypair = Keypair()
    wallet = wallets.create_wallet(new_user(), {"name": "w", "keypair": exported(keypair)})
    assert bytes(wallets.signing_keypair(wallet)) == bytes(keypair)


def test_a_deleted_wallet_cannot_sign(aws: dict[str, Any]) -> None:
    user = new_user()
    wallet = wallets.create_wallet(user, {"name": "w"})
    wallets.delete_wallet(user, wallet.id)
    with pytest.raises(wallets.WalletUnavailable, match="was deleted") as raised:
        wallets.signing_keypair(wallet)
    assert raised.value.wallet_id == wallet.id


def test_wallets_are_found_by_id_and_by_public_key_for_their_owner_only(
    aws: dict[str, Any],
) -> None:
    user = new_user()
    wallet = wallets.create_wallet(user, wallets.NewWallet(name="w"))
    assert wallets.get_wallet(user, wallet.id) == wallet
    assert wallets.wallet_for_pubkey(user, wallet.pubkey) == wallet
    assert wallets.list_wallets(user) == [wallet]
    stranger = new_user()
    assert wallets.get_wallet(stranger, wallet.id) is None
    assert wallets.wallet_for_pubkey(stranger, wallet.pubkey) is None
    assert wallets.get_wallet(user, "not-a-uuid") is None
    with pytest.raises(NotFound):
        wallets.delete_wallet(stranger, wallet.id)
    wallets.delete_wallet(user, wallet.id)
    assert wallets.wallet_for_pubkey(user, wallet.pubkey) is None


def test_domain_errors_are_the_api_errors(aws: dict[str, Any]) -> None:
    user, keypair = new_user(), Keypair()
    with pytest.raises(BadRequest, match="body must be a JSON object"):
        wallets.create_wallet(user, ["not", "an", "object"])
    wallets.create_wallet(user, {"name": "w", "keypair": exported(keypair)})
    with pytest.raises(Conflict):
        wallets.create_wallet(user, {"name": "w", "keypair": exported(keypair)})


# -- The secret stays secret -------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(record.__dict__))


@pytest.fixture
def logs() -> Iterator[Collect]:
    """Every record of the service's logger, at DEBUG, with its extras and tracebacks."""
    collect = Collect()
    service = logging.getLogger("flowdeploy")
    level = service.level
    service.addHandler(collect)
    service.setLevel(logging.DEBUG)
    yield collect
    service.removeHandler(collect)
    service.setLevel(level)


def test_the_secret_never_reaches_logs_errors_or_reprs(api: Api, logs: Collect) -> None:
    user, keypair = new_user(), Keypair()
    secret = exported(keypair)
    created = api.call("POST", "/wallet", user=user, json_body={"name": "w", "keypair": secret})
    conflict = api.call("POST", "/wallet", user=user, json_body={"name": "w", "keypair": secret})
    assert conflict.status == 409
    mismatched = base58.encode(bytes(keypair)[:32] + bytes(Keypair().pubkey()))
    refused = api.call("POST", "/wallet", user=user, json_body={"name": "w", "keypair": mismatched})
    assert refused.status == 400
    wallet = wallets.get_wallet(user, created.body["id"])
    assert wallet is not None
    signed = wallets.signing_keypair(wallet).sign_message(b"m")
    assert signed.verify(keypair.pubkey(), b"m")
    seen = [
        *logs.lines,
        repr(wallet),
        repr(wallets.NewWallet(name="w", keypair=secret)),  # type: ignore[arg-type]
        str(created.body),
        str(conflict.body),
        str(refused.body),
    ]
    assert logs.lines, "the requests were logged"
    for text in seen:
        assert secret not in text
        assert mismatched not in text
        assert keypair.secret().hex() not in text


def test_listing_and_deleting_wallets_does_not_load_solders() -> None:
    """ApiFunction's cold start stays free of solders until a wallet is created."""
    script = (
        "import sys; sys.path.insert(0, 'functions/api'); import app; "
        "from flowdeploy import wallets; "
        "assert not [m for m in sys.modules if m.startswith('solders')], 'solders loaded'"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_public_key_claimed_concurrently_is_written_once(aws: dict[str, Any]) -> None:
    """The check before writing can race; the claim in the same transaction cannot."""
    from flowdeploy.store import wallets as store

    user = new_user()
    wallet = wallets.create_wallet(user, {"name": "first"})
    twin = WalletItem(
        user,
        new_id(),
        name="twin",
        pubkey=wallet.pubkey,
        encrypted_secret=b"x",
        created_at="2025-02-08 13:07:59",
    )
    assert store.insert(twin) is False
    assert wallets.list_wallets(user) == [wallet]
