"""SPL Token and Token-2022: mints, associated token accounts and amounts.

Instructions come from solana-py's `spl.token.instructions`, which builds each with its
program's own layout (no byte packing here); accounts are read with solders' `Mint` and
`TokenAccount`. Which program a mint belongs to is read from the chain (its owner), so
every operation works for both programs. Amounts are UI amounts (decimals of the mint):
precision the mint does not have is refused, never rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount
from spl.token import instructions as spl
from spl.token import models
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "SPL Token", TOKEN_2022_PROGRAM_ID: "Token-2022"}
MINT_SIZE = 82  # the base Mint layout: Token-2022 mints without extensions too
ACCOUNT_SIZE = 165  # the base Account layout; Token-2022 adds extensions after it
ACCOUNT_TYPE_ACCOUNT = 2  # Token-2022's AccountType byte after the base layout
MAX_DECIMALS = 255
MAX_UNITS = 2**64 - 1


class TokenError(ValueError):
    """A token operation cannot be built; the message says why, in the user's terms."""


@dataclass(frozen=True, slots=True)
class MintInfo:
    address: Pubkey
    program: Pubkey
    decimals: int
    supply: int
    mint_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class TokenAccountInfo:
    address: Pubkey
    program: Pubkey
    mint: Pubkey
    owner: Pubkey
    amount: int


def token_program(value: Pubkey | None) -> Pubkey:
    """SPL Token unless `value` names Token-2022; TokenError for any other program."""
    program = value or TOKEN_PROGRAM_ID
    if program not in TOKEN_PROGRAMS:
        raise TokenError(
            f"{program} is not a token program (SPL Token {TOKEN_PROGRAM_ID} or Token-2022 "
            f"{TOKEN_2022_PROGRAM_ID})"
        )
    return program


def read_mint(address: Pubkey, account: dict[str, Any] | None) -> MintInfo:
    """The mint at `address` from its getAccountInfo; TokenError if there is none."""
    if account is None:
        raise TokenError(f"mint {address} does not exist on this cluster")
    program = account["owner"]
    data: bytes = account["data"]
    if program not in TOKEN_PROGRAMS or len(data) < MINT_SIZE or len(data) == ACCOUNT_SIZE:
        raise TokenError(f"{address} is not a token mint")
    try:
        mint = Mint.from_bytes(data[:MINT_SIZE])
    except ValueError:
        raise TokenError(f"{address} is not a token mint") from None
    if not mint.is_initialized:
        raise TokenError(f"mint {address} is not initialized")
    return MintInfo(address, program, mint.decimals, mint.supply, mint.mint_authority)


def read_token_account(address: Pubkey, account: dict[str, Any] | None) -> TokenAccountInfo | None:
    """The token account at `address`, None if nothing is there; TokenError if something
    else is."""
    if account is None:
        return None
    program = account["owner"]
    data: bytes = account["data"]
    is_account = len(data) == ACCOUNT_SIZE or (
        len(data) > ACCOUNT_SIZE and data[ACCOUNT_SIZE] == ACCOUNT_TYPE_ACCOUNT
    )
    if program not in TOKEN_PROGRAMS or not is_account:
        raise TokenError(f"{address} is not a token account")
    parsed = TokenAccount.from_bytes(data[:ACCOUNT_SIZE])
    return TokenAccountInfo(address, program, parsed.mint, parsed.owner, parsed.amount)


def associated_address(owner: Pubkey, mint: MintInfo) -> Pubkey:
    """The owner's associated token account for the mint (under the mint's program)."""
    return get_associated_token_address(owner, mint.address, mint.program)


def base_units(amount: Decimal, decimals: int, what: str = "amount") -> int:
    """A UI amount in the mint's base units; TokenError unless positive, within u64 and
    without more decimal places than the mint has."""
    try:
        units = amount.scaleb(decimals)
        whole = units == units.to_integral_value()
    except InvalidOperation:
        raise TokenError(f"{what} {amount} is not a number") from None
    if amount <= 0:
        raise TokenError(f"{what} must be positive, got {amount}")
    if not whole:
        raise TokenError(f"{what} {amount} has more decimal places than the mint's {decimals}")
    if units > MAX_UNITS:
        raise TokenError(f"{what} {amount} is more than a token account can hold")
    return int(units)


def ui_amount(units: int, decimals: int) -> Decimal:
    """Base units as the UI amount, without trailing zeros (2500000, 6 → 2.5; 0 → 0)."""
    amount = Decimal(units).scaleb(-decimals).normalize()
    return amount if amount != amount.to_integral_value() else amount.quantize(Decimal(1))


def check_decimals(mint: MintInfo, expected: int | None) -> None:
    """`decimals` given by the flow must be the mint's: a mismatch means a wrong amount."""
    if expected is not None and expected != mint.decimals:
        raise TokenError(
            f"decimals {expected} is not the mint's: {mint.address} has {mint.decimals}"
        )


# -- Instructions -------------------------------------------------------------------------


def create_mint(
    *,
    payer: Pubkey,
    mint: Pubkey,
    decimals: int,
    mint_authority: Pubkey,
    freeze_authority: Pubkey | None,
    program: Pubkey,
    rent_lamports: int,
) -> list[Instruction]:
    """A new mint account (owned by `program`), then InitializeMint2."""
    if not 0 <= decimals <= MAX_DECIMALS:
        raise TokenError(f"decimals must be 0 to {MAX_DECIMALS}, got {decimals}")
    params = CreateAccountParams(
        from_pubkey=payer, to_pubkey=mint, lamports=rent_lamports, space=MINT_SIZE, owner=program
    )
    initialize = spl.initialize_mint2(
        models.InitializeMint2Params(
            decimals=decimals,
            program_id=program,
            mint=mint,
            mint_authority=mint_authority,
            freeze_authority=freeze_authority,
        )
    )
    return [create_account(params), initialize]


def create_associated_account(payer: Pubkey, owner: Pubkey, mint: MintInfo) -> Instruction:
    """CreateIdempotent: the owner's associated account, if it does not exist yet."""
    return spl.create_idempotent_associated_token_account(payer, owner, mint.address, mint.program)


def mint_to(mint: MintInfo, destination: Pubkey, authority: Pubkey, units: int) -> Instruction:
    return spl.mint_to_checked(
        models.MintToCheckedParams(
            program_id=mint.program,
            mint=mint.address,
            dest=destination,
            mint_authority=authority,
            amount=units,
            decimals=mint.decimals,
        )
    )


def transfer(
    mint: MintInfo, source: Pubkey, destination: Pubkey, owner: Pubkey, units: int
) -> Instruction:
    return spl.transfer_checked(
        models.TransferCheckedParams(
            program_id=mint.program,
            source=source,
            mint=mint.address,
            dest=destination,
            owner=owner,
            amount=units,
            decimals=mint.decimals,
        )
    )
