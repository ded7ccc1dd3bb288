"""Base58 with the Bitcoin alphabet, as used for Solana public keys and signatures.

Standard library only: this module sits on Lambda cold-start paths.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ALPHABET", "MAX_TEXT_LENGTH", "decode", "decode_pubkey", "encode", "is_pubkey"]

ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# Decoding is quadratic in the length of the text, so hostile input is refused before any
# arithmetic. A 64-byte value (signature, keypair) needs at most 88 characters.
MAX_TEXT_LENGTH: Final = 128

PUBKEY_LENGTH: Final = 32

_DIGITS: Final = {char: digit for digit, char in enumerate(ALPHABET)}


def encode(data: bytes) -> str:
    """Base58 text of `data`; each leading zero byte becomes a leading '1' (b"" gives "")."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(ALPHABET[digit])
    return "1" * zeros + "".join(reversed(digits))


def decode(text: str, *, max_length: int = MAX_TEXT_LENGTH) -> bytes:
    """Bytes of base58 `text`; ValueError if empty, longer than `max_length` or not in the
    alphabet."""
    if not text:
        raise ValueError("base58 string is empty")
    if len(text) > max_length:
        raise ValueError(
            f"base58 string is {len(text)} characters long; at most {max_length} are accepted"
        )
    number = 0
    for position, char in enumerate(text):
        digit = _DIGITS.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {char!r} at position {position}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def decode_pubkey(text: str) -> bytes:
    """The 32 bytes of a base58 public key; ValueError if invalid or of another length."""
    data = decode(text)
    if len(data) != PUBKEY_LENGTH:
        raise ValueError(f"a public key is {PUBKEY_LENGTH} bytes, got {len(data)} bytes")
    return data


def is_pubkey(text: str) -> bool:
    """Whether `text` is a string of base58 for exactly 32 bytes."""
    if not isinstance(text, str):
        return False
    try:
        decode_pubkey(text)
    except ValueError:
        return False
    return True
