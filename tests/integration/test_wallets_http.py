"""Over real HTTP against the local stack: wallets created, imported, listed and deleted,
their secrets encrypted by the stack's own KMS key (moto), as in AWS."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from solders.keypair import Keypair

from flowdeploy import base58
from tests.conftest import Stack, new_user
from tests.integration.test_http import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(stack: Stack) -> Client:
    return Client(stack)


def aws(stack: Stack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_a_wallets_life_over_http(client: Client, stack: Stack) -> None:
    user, keypair = new_user(), Keypair()
    generated = client.request("POST", "/wallet", user=user, json={"name": "hot"})
    assert generated.status_code == 201, generated.text
    imported = client.request(
        "POST",
        "/wallet",
        user=user,
        json={"name": "cold", "keypair": base58.encode(bytes(keypair))},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["pubkey"] == str(keypair.pubkey())
    assert set(imported.json()) == {"id", "name", "pubkey", "created_at"}

    listed = client.request("GET", "/wallet", user=user)
    assert listed.json() == {"wallets": [generated.json(), imported.json()], "next": None}
    duplicate = client.request(
        "POST", "/wallet", user=user, json={"name": "x", "keypair": base58.encode(bytes(keypair))}
    )
    assert duplicate.status_code == 409

    # At rest: KMS ciphertext, bound to this user and wallet, in the stack's moto server.
    wallet_id = imported.json()["id"]
    item = aws(stack, "dynamodb").get_item(
        TableName="WalletsTable", Key={"user_id": {"S": user}, "id": {"S": wallet_id}}
    )["Item"]
    ciphertext = item["encrypted_secret"]["B"]
    assert bytes(keypair) not in ciphertext
    plain = aws(stack, "kms").decrypt(
        CiphertextBlob=ciphertext, EncryptionContext={"user_id": user, "wallet_id": wallet_id}
    )["Plaintext"]
    assert plain == bytes(keypair)

    assert client.request("DELETE", f"/wallet/{wallet_id}", user=new_user()).status_code == 404
    assert client.request("DELETE", f"/wallet/{wallet_id}", user=user).status_code == 204
    assert client.request("GET", "/wallet", user=user).json()["wallets"] == [generated.json()]
    anonymous = {"Authorization": f"Bearer {keypair.pubkey()}"}
    assert client.request("GET", "/wallet", headers=anonymous).status_code == 401


def test_the_openapi_document_describes_the_wallet_routes(client: Client) -> None:
    paths = client.request("GET", "/openapi.json").json()["paths"]
    assert set(paths["/wallet"]) == {"get", "post"}
    assert set(paths["/wallet/{wallet_id}"]) == {"delete"}
