"""SPL token nodes (SPL Token and Token-2022), named and ported as upstream's:
`create_mint_account`, `associated_token_account`, `mint_token`, `transfer_token`, plus
`get_token_balance`.

Each reads what it needs from the chain first (the mint's program and decimals, the
accounts involved) and refuses before sending anything when the inputs cannot work: an
unknown mint, decimals that are not the mint's, more decimal places than the mint has,
more tokens than the sender holds. Signers are as in the other Solana nodes (a server
wallet, a keypair made in the run, or an external key whose signature is asked for or left
for the wallet). `submit` false builds nothing and outputs no signature, as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from flowdeploy.engine.command import Command, NodeContext, NodeError, Port, convert_input, register
from flowdeploy.engine.commands.solana import _send, _session, pubkey_of, signer_of
from flowdeploy.engine.convert import decimal_value, to_bool, to_decimal, to_string
from flowdeploy.values import B32, U64, IValue

if TYPE_CHECKING:
    from solders.instruction import Instruction
    from solders.pubkey import Pubkey

    from flowdeploy.solana.session import SolanaSession
    from flowdeploy.solana.tokens import MintInfo, TokenAccountInfo


def _optional(inputs: Mapping[str, IValue], port: str) -> IValue | None:
    value = inputs.get(port)
    return None if value is None or value.tag == "N" else value


def _flag(inputs: Mapping[str, IValue], port: str, default: bool = True) -> bool:
    return default if _optional(inputs, port) is None else convert_input(inputs, port, to_bool)


def _small_int(inputs: Mapping[str, IValue], port: str) -> int | None:
    if _optional(inputs, port) is None:
        return None
    number = convert_input(inputs, port, to_decimal)
    if number != number.to_integral_value() or not 0 <= number <= 255:
        raise NodeError(f"input {port!r}: must be a whole number 0 to 255, got {number}")
    return int(number)


def _memo(inputs: Mapping[str, IValue]) -> str:
    return "" if _optional(inputs, "memo") is None else convert_input(inputs, "memo", to_string)


async def _mint(session: SolanaSession, address: Pubkey, decimals: int | None) -> MintInfo:
    from flowdeploy.solana.tokens import check_decimals, read_mint

    mint = read_mint(address, await session.account(address))
    check_decimals(mint, decimals)
    return mint


async def _token_account(session: SolanaSession, address: Pubkey) -> TokenAccountInfo | None:
    from flowdeploy.solana.tokens import read_token_account

    return read_token_account(address, await session.account(address))


async def _submit(
    ctx: NodeContext,
    session: SolanaSession,
    inputs: Mapping[str, IValue],
    instructions: list[Instruction],
    fee_payer: Pubkey,
) -> dict[str, IValue]:
    """Send `instructions` (with the node's memo) unless `submit` is false."""
    from flowdeploy.solana.transaction import memo_instruction

    if not _flag(inputs, "submit"):
        return {}
    memo = _memo(inputs)
    if memo:
        instructions = [*instructions, memo_instruction(memo, [fee_payer])]
    return {"signature": await _send(ctx, session, instructions, fee_payer)}


def _pubkey_value(pubkey: Pubkey) -> IValue:
    return IValue(B32, bytes(pubkey))


class _TokenCommand(Command):
    """Token errors (TokenError) and chain errors (SolanaFailure) fail the node."""

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.session import SolanaFailure
        from flowdeploy.solana.tokens import TokenError

        try:
            return await self.token_run(ctx, inputs)
        except (TokenError, SolanaFailure) as error:
            raise NodeError(str(error)) from None

    async def token_run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        raise NotImplementedError


@register
class CreateMintAccount(_TokenCommand):
    """A new mint at `mint_account` (a keypair: it signs its creation) with `decimals`,
    `mint_authority` and optional `freeze_authority`; `token_program` chooses Token-2022."""

    name = "create_mint_account"
    inputs = (
        Port("fee_payer"),
        Port("decimals"),
        Port("mint_authority"),
        Port("freeze_authority", required=False),
        Port("mint_account"),
        Port("memo", required=False),
        Port("submit", required=False),
        Port("token_program", required=False, description="SPL Token (default) or Token-2022"),
    )
    outputs = (Port("signature", required=False), Port("mint_account"))

    async def token_run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.tokens import MINT_SIZE, create_mint, token_program

        session = _session(ctx)
        payer = convert_input(inputs, "fee_payer", lambda value: signer_of(value, session))
        mint = convert_input(inputs, "mint_account", lambda value: signer_of(value, session))
        authority = convert_input(inputs, "mint_authority", lambda v: signer_of(v, session))
        freeze = None
        if _optional(inputs, "freeze_authority") is not None:
            freeze = convert_input(inputs, "freeze_authority", pubkey_of)
        program = None
        if _optional(inputs, "token_program") is not None:
            program = convert_input(inputs, "token_program", pubkey_of)
        decimals = _small_int(inputs, "decimals")
        if decimals is None:
            raise NodeError("input 'decimals': is required")
        instructions = create_mint(
            payer=payer,
            mint=mint,
            decimals=decimals,
            mint_authority=authority,
            freeze_authority=freeze,
            program=token_program(program),
            rent_lamports=await session.rent_exempt(MINT_SIZE),
        )
        outputs = await _submit(ctx, session, inputs, instructions, payer)
        return {**outputs, "mint_account": _pubkey_value(mint)}


@register
class AssociatedTokenAccount(_TokenCommand):
    """The `owner`'s associated token account for `mint_account` (either token program),
    created when missing; when it exists nothing is sent (and no signature is output)."""

    name = "associated_token_account"
    inputs = (
        Port("owner"),
        Port("fee_payer"),
        Port("mint_account"),
        Port("submit", required=False),
    )
    outputs = (Port("associated_token_account"), Port("signature", required=False))

    async def token_run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.tokens import (
            TokenError,
            associated_address,
            create_associated_account,
        )

        session = _session(ctx)
        owner = convert_input(inputs, "owner", pubkey_of)
        payer = convert_input(inputs, "fee_payer", lambda value: signer_of(value, session))
        mint = await _mint(session, convert_input(inputs, "mint_account", pubkey_of), None)
        address = associated_address(owner, mint)
        outputs = {"associated_token_account": _pubkey_value(address)}
        existing = await _token_account(session, address)
        if existing is not None:
            if existing.mint != mint.address or existing.owner != owner:
                raise TokenError(f"{address} is a token account of another mint or owner")
            return outputs
        instruction = create_associated_account(payer, owner, mint)
        return {**outputs, **await _submit(ctx, session, inputs, [instruction], payer)}


async def _destination(
    session: SolanaSession,
    mint: MintInfo,
    recipient: Pubkey,
    payer: Pubkey,
    *,
    allow_unfunded: bool = True,
    fund_recipient: bool = True,
) -> tuple[Pubkey, list[Instruction]]:
    """Where tokens for `recipient` go: itself if it is a token account of the mint, else its
    associated account, created first (CreateIdempotent) when missing."""
    from flowdeploy.solana.tokens import (
        TokenError,
        associated_address,
        create_associated_account,
        read_token_account,
    )

    found = await session.account(recipient)
    if found is not None and found["owner"] == mint.program:
        account = read_token_account(recipient, found)
        if account is not None and account.mint != mint.address:
            raise TokenError(f"{recipient} is a token account of another mint ({account.mint})")
        return recipient, []
    if found is None and not allow_unfunded:
        raise TokenError(f"recipient {recipient} does not exist (allow_unfunded is false)")
    address = associated_address(recipient, mint)
    if await _token_account(session, address) is not None:
        return address, []
    if not fund_recipient:
        raise TokenError(
            f"{recipient} has no token account for {mint.address} (fund_recipient is false)"
        )
    return address, [create_associated_account(payer, recipient, mint)]


@register
class MintToken(_TokenCommand):
    """Mints `amount` (UI units of the mint) to `recipient`: a token account of the mint, or
    a wallet whose associated account receives them (created when missing)."""

    name = "mint_token"
    inputs = (
        Port("fee_payer"),
        Port("mint_authority"),
        Port("mint_account"),
        Port("recipient"),
        Port("amount"),
        Port("decimals", required=False),
        Port("submit", required=False),
    )
    outputs = (Port("signature", required=False), Port("recipient_token_account"))

    async def token_run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.tokens import base_units, mint_to

        session = _session(ctx)
        payer = convert_input(inputs, "fee_payer", lambda value: signer_of(value, session))
        authority = convert_input(inputs, "mint_authority", lambda v: signer_of(v, session))
        address = convert_input(inputs, "mint_account", pubkey_of)
        mint = await _mint(session, address, _small_int(inputs, "decimals"))
        units = base_units(convert_input(inputs, "amount", to_decimal), mint.decimals)
        recipient = convert_input(inputs, "recipient", pubkey_of)
        destination, setup = await _destination(session, mint, recipient, payer)
        instructions = [*setup, mint_to(mint, destination, authority, units)]
        outputs = await _submit(ctx, session, inputs, instructions, payer)
        return {**outputs, "recipient_token_account": _pubkey_value(destination)}


@register
class TransferToken(_TokenCommand):
    """Sends `amount` (UI units) of `mint_account` from `sender_owner`'s token account (its
    associated one unless `sender_token_account` is given) to `recipient`, a wallet (its
    associated account is created when missing) or a token account of the mint."""

    name = "transfer_token"
    inputs = (
        Port("fee_payer"),
        Port("mint_account"),
        Port("amount"),
        Port("decimals", required=False),
        Port("recipient"),
        Port("sender_token_account", required=False),
        Port("sender_owner"),
        Port("allow_unfunded", required=False),
        Port("fund_recipient", required=False),
        Port("memo", required=False),
        Port("submit", required=False),
    )
    outputs = (Port("signature", required=False), Port("recipient_token_account"))

    async def token_run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.tokens import (
            TokenError,
            associated_address,
            base_units,
            transfer,
            ui_amount,
        )

        session = _session(ctx)
        payer = convert_input(inputs, "fee_payer", lambda value: signer_of(value, session))
        owner = convert_input(inputs, "sender_owner", lambda value: signer_of(value, session))
        address = convert_input(inputs, "mint_account", pubkey_of)
        mint = await _mint(session, address, _small_int(inputs, "decimals"))
        amount = convert_input(inputs, "amount", to_decimal)
        units = base_units(amount, mint.decimals)
        source = associated_address(owner, mint)
        if _optional(inputs, "sender_token_account") is not None:
            source = convert_input(inputs, "sender_token_account", pubkey_of)
        held = await _token_account(session, source)
        if held is None or held.mint != mint.address:
            raise TokenError(f"{owner} holds no {mint.address} tokens (no token account {source})")
        if held.amount < units:
            holds = ui_amount(held.amount, mint.decimals)
            raise TokenError(
                f"insufficient token balance: {source} holds {holds}, the transfer needs {amount}"
            )
        recipient = convert_input(inputs, "recipient", pubkey_of)
        destination, setup = await _destination(
            session,
            mint,
            recipient,
            payer,
            allow_unfunded=_flag(inputs, "allow_unfunded"),
            fund_recipient=_flag(inputs, "fund_recipient"),
        )
        instructions = [*setup, transfer(mint, source, destination, owner, units)]
        outputs = await _submit(ctx, session, inputs, instructions, payer)
        return {**outputs, "recipient_token_account": _pubkey_value(destination)}


@register
class GetTokenBalance(_TokenCommand):
    """The balance of `owner`'s associated account for `mint_account` (or of
    `token_account`): `amount` in base units (U), `ui_amount` (D), the mint's `decimals`;
    0 when the account does not exist."""

    name = "get_token_balance"
    inputs = (
        Port("mint_account"),
        Port("owner", required=False),
        Port("token_account", required=False),
    )
    outputs = (Port("amount"), Port("ui_amount"), Port("decimals"), Port("token_account"))

    async def token_run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.solana.tokens import TokenError, associated_address, ui_amount

        session = _session(ctx)
        mint = await _mint(session, convert_input(inputs, "mint_account", pubkey_of), None)
        if _optional(inputs, "token_account") is not None:
            address = convert_input(inputs, "token_account", pubkey_of)
        elif _optional(inputs, "owner") is not None:
            address = associated_address(convert_input(inputs, "owner", pubkey_of), mint)
        else:
            raise NodeError("give input 'owner' or 'token_account'")
        account = await _token_account(session, address)
        if account is not None and account.mint != mint.address:
            raise TokenError(f"{address} is a token account of another mint ({account.mint})")
        units = account.amount if account is not None else 0
        return {
            "amount": IValue(U64, units),
            "ui_amount": decimal_value(ui_amount(units, mint.decimals)),
            "decimals": IValue(U64, mint.decimals),
            "token_account": _pubkey_value(address),
        }
