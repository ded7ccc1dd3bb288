"""The KMS key that encrypts wallets' secret keys (WalletKey in template.yaml).

Each ciphertext is bound to its row by the encryption context, so it decrypts
only for the user and wallet it was made for. ApiFunction may only encrypt,
RunFunction may only decrypt.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from flowdeploy.settings import settings


class KeyUnavailable(RuntimeError):
    """KMS refused or failed; the message names the KMS error, never the data."""


@cache
def _kms() -> Any:
    return boto3.client("kms")


def _refused(action: str, error: BotoCoreError | ClientError) -> KeyUnavailable:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "ClientError")
    else:
        code = type(error).__name__
    return KeyUnavailable(f"KMS {action} failed: {code}")


def encrypt(plaintext: bytes, context: dict[str, str]) -> bytes:
    try:
        reply = _kms().encrypt(
            KeyId=settings().wallet_key_id, Plaintext=plaintext, EncryptionContext=context
        )
    except (BotoCoreError, ClientError) as error:
        raise _refused("Encrypt", error) from None
    return bytes(reply["CiphertextBlob"])


def decrypt(ciphertext: bytes, context: dict[str, str]) -> bytes:
    """The plaintext; KeyUnavailable if the context or the key does not match."""
    try:
        reply = _kms().decrypt(
            KeyId=settings().wallet_key_id, CiphertextBlob=ciphertext, EncryptionContext=context
        )
    except (BotoCoreError, ClientError) as error:
        raise _refused("Decrypt", error) from None
    return bytes(reply["Plaintext"])
