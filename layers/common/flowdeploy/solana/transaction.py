"""Assembling one Solana transaction from a node's instructions (DESIGN §6).

Order, as upstream's clients expect it: SetComputeUnitPrice, SetComputeUnitLimit, the
flow's instructions, one SystemProgram transfer per deployment fee (from the fee payer),
then the Solana Actions identity memo. A compute-budget instruction the flow already has
is not added again. The identity and the memo's reference are added as read-only
non-signer accounts to the first instruction that is neither a memo nor a compute-budget
instruction, and the memo itself has no accounts, as the specification defines. The
message is v0 with the fee payer first; signatures the server does not hold stay as 64
zero bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from solders.compute_budget import ID as COMPUTE_BUDGET_PROGRAM
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.null_signer import NullSigner
from solders.presigner import Presigner
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from flowdeploy.solana import MAX_TRANSACTION_SIZE, MEMO_PROGRAM_ID, MEMO_PROGRAM_IDS

MEMO_PROGRAM = Pubkey.from_string(MEMO_PROGRAM_ID)
MEMO_PROGRAMS = frozenset(Pubkey.from_string(key) for key in MEMO_PROGRAM_IDS)
ACTION_PROTOCOL = "solana-action"
REFERENCE_BYTES = 32
RENT_EXEMPT_MINIMUM = 890_880  # lamports a new system account needs (0 data bytes)
TRANSFER_TAG = (2).to_bytes(4, "little")  # SystemInstruction::Transfer
SET_COMPUTE_UNIT_LIMIT, SET_COMPUTE_UNIT_PRICE = 2, 3  # ComputeBudgetInstruction tags
MAX_COMPUTE_UNIT_LIMIT = 1_400_000  # per transaction
# The unit limit is what the simulation of the final instruction list consumed, plus
# COMPUTE_UNIT_MARGIN_PERCENT of it, plus COMPUTE_UNIT_MARGIN (state may change a little
# between simulation and landing). Without a usable simulation: upstream's fallback of
# FALLBACK_UNITS_PER_INSTRUCTION per instruction.
COMPUTE_UNIT_MARGIN_PERCENT = 20
COMPUTE_UNIT_MARGIN = 1_000
FALLBACK_UNITS_PER_INSTRUCTION = 200_000


class TransactionInvalid(ValueError):
    """The transaction cannot be built (too large, no instructions, no usable memo target)."""


@dataclass(frozen=True, slots=True)
class Fee:
    address: Pubkey
    lamports: int


@dataclass(frozen=True, slots=True)
class ComputeBudget:
    """The compute-budget instructions put first: price in micro-lamports per unit."""

    unit_price: int
    unit_limit: int = MAX_COMPUTE_UNIT_LIMIT


def unit_limit_for(units_consumed: int | None, instructions: int) -> int:
    """The SetComputeUnitLimit value for a transaction whose simulation consumed
    `units_consumed` (None or 0: no usable simulation) and has `instructions` besides the
    compute-budget ones."""
    if units_consumed:
        limit = units_consumed + -(-units_consumed * COMPUTE_UNIT_MARGIN_PERCENT // 100)
        limit += COMPUTE_UNIT_MARGIN
    else:
        limit = FALLBACK_UNITS_PER_INSTRUCTION * max(1, instructions)
    return min(MAX_COMPUTE_UNIT_LIMIT, limit)


def _compute_budget_tag(instruction: Instruction) -> int | None:
    data = bytes(instruction.data)
    if instruction.program_id != COMPUTE_BUDGET_PROGRAM or not data:
        return None
    return data[0]


@dataclass(frozen=True, slots=True)
class Identity:
    """The Solana Actions identity memo of one transaction."""

    identity: Pubkey
    reference: Pubkey
    signature: Signature

    @property
    def memo(self) -> str:
        return f"{ACTION_PROTOCOL}:{self.identity}:{self.reference}:{self.signature}"


def new_identity(identity: Keypair, reference: bytes | None = None) -> Identity:
    """A fresh single-use reference, signed (its 32 raw bytes) by the identity keypair."""
    raw = os.urandom(REFERENCE_BYTES) if reference is None else reference
    if len(raw) != REFERENCE_BYTES:
        raise ValueError(f"a reference is {REFERENCE_BYTES} bytes")
    return Identity(identity.pubkey(), Pubkey.from_bytes(raw), identity.sign_message(raw))


def memo_instruction(text: str, signers: Sequence[Pubkey] = ()) -> Instruction:
    """An SPL Memo (v2) instruction; every account given must sign."""
    return Instruction(
        MEMO_PROGRAM, text.encode(), [AccountMeta(key, True, False) for key in signers]
    )


def parse_identity_memo(text: str) -> Identity:
    """The parts of a `solana-action:<identity>:<reference>:<signature>` memo; ValueError if
    the text is not one or its signature does not verify."""
    parts = text.split(":")
    if len(parts) != 4 or parts[0] != ACTION_PROTOCOL:
        raise ValueError(f"not an action identity memo: {text!r}")
    identity = Identity(
        Pubkey.from_string(parts[1]), Pubkey.from_string(parts[2]), Signature.from_string(parts[3])
    )
    if not identity.signature.verify(identity.identity, bytes(identity.reference)):
        raise ValueError("the memo's signature is not the identity's signature of the reference")
    return identity


def assemble(
    instructions: Sequence[Instruction],
    *,
    fee_payer: Pubkey,
    blockhash: Hash,
    fees: Sequence[Fee] = (),
    identity: Identity | None = None,
    budget: ComputeBudget | None = None,
) -> MessageV0:
    """The v0 message of the compute-budget instructions, the flow's instructions, the fee
    transfers and the identity memo, in that order."""
    return MessageV0.try_compile(
        fee_payer,
        instruction_list(
            instructions, fee_payer=fee_payer, fees=fees, identity=identity, budget=budget
        ),
        [],
        blockhash,
    )


def instruction_list(
    instructions: Sequence[Instruction],
    *,
    fee_payer: Pubkey,
    fees: Sequence[Fee] = (),
    identity: Identity | None = None,
    budget: ComputeBudget | None = None,
) -> list[Instruction]:
    if not instructions:
        raise TransactionInvalid("a transaction needs at least one instruction")
    body = list(instructions)
    body += [
        transfer(
            TransferParams(from_pubkey=fee_payer, to_pubkey=fee.address, lamports=fee.lamports)
        )
        for fee in fees
    ]
    if identity is not None:
        body = _with_identity_accounts(body, identity)
        body.append(memo_instruction(identity.memo))
    if budget is not None:
        present = {_compute_budget_tag(instruction) for instruction in body}
        first = []
        if SET_COMPUTE_UNIT_PRICE not in present:
            first.append(set_compute_unit_price(budget.unit_price))
        if SET_COMPUTE_UNIT_LIMIT not in present:
            first.append(set_compute_unit_limit(budget.unit_limit))
        body = first + body
    return body


def _with_identity_accounts(body: list[Instruction], identity: Identity) -> list[Instruction]:
    for index, instruction in enumerate(body):
        if instruction.program_id not in MEMO_PROGRAMS and _compute_budget_tag(instruction) is None:
            extra = [
                AccountMeta(identity.identity, False, False),
                AccountMeta(identity.reference, False, False),
            ]
            body[index] = Instruction(
                instruction.program_id, instruction.data, [*instruction.accounts, *extra]
            )
            return body
    raise TransactionInvalid(
        "the identity memo needs an instruction that is neither a memo nor a compute-budget "
        "instruction to carry its accounts"
    )


def signers_of(message: MessageV0) -> list[Pubkey]:
    """The keys that must sign `message`, the fee payer first."""
    return list(message.account_keys[: message.header.num_required_signatures])


def message_bytes(message: MessageV0) -> bytes:
    """What each signer signs (v0 messages carry a version prefix)."""
    return to_bytes_versioned(message)


def sign(
    message: MessageV0,
    keypairs: Mapping[Pubkey, Keypair],
    signatures: Mapping[Pubkey, Signature] | None = None,
) -> VersionedTransaction:
    """`message` signed by the keypairs held and the signatures given; zeros elsewhere."""
    given = signatures or {}
    signers: list[Keypair | Presigner | NullSigner] = []
    for key in signers_of(message):
        if key in keypairs:
            signers.append(keypairs[key])
        elif key in given:
            signers.append(Presigner(key, given[key]))
        else:
            signers.append(NullSigner(key))
    transaction = VersionedTransaction(message, signers)
    check_size(transaction)
    return transaction


def check_size(transaction: VersionedTransaction) -> int:
    size = len(bytes(transaction))
    if size > MAX_TRANSACTION_SIZE:
        raise TransactionInvalid(
            f"the transaction is {size} bytes; Solana accepts at most {MAX_TRANSACTION_SIZE}"
        )
    return size


def explain_failure(err: object, message: MessageV0, logs: Sequence[str] = ()) -> str:
    """Why a simulated transaction fails, in the words of its own instructions and fees."""
    keys = list(message.account_keys)
    payer = keys[0]
    if err == "AccountNotFound":
        return f"the fee payer {payer} has no account (no SOL) on this cluster"
    if isinstance(err, dict) and "InsufficientFundsForRent" in err:
        index = _account_index(err["InsufficientFundsForRent"])
        account = keys[index] if index is not None and index < len(keys) else None
        for instruction in _instructions(message):
            described = _transfer(instruction)
            if described is not None and described[1] == account:
                return (
                    f"the transfer of {described[2]:,} lamports to {account} fails: that "
                    f"account does not exist yet and a new account needs at least "
                    f"{RENT_EXEMPT_MINIMUM:,} lamports (the rent-exempt minimum)"
                )
        return f"account {account} would be left below the rent-exempt minimum"
    if isinstance(err, dict) and "InstructionError" in err:
        index, detail = err["InstructionError"]
        instructions = _instructions(message)
        what = f"instruction {index}"
        if isinstance(index, int) and index < len(instructions):
            described = _transfer(instructions[index])
            if described is not None:
                source, target, lamports = described
                what += f" (transfer of {lamports:,} lamports from {source} to {target})"
                if detail == {"Custom": 1}:
                    return f"{what} fails: {source} has insufficient funds"
            else:
                what += f" (program {instructions[index].program_id})"
        return f"{what} fails: {detail}{_last_log(logs)}"
    return f"the transaction fails: {err}{_last_log(logs)}"


def _account_index(detail: object) -> int | None:
    if isinstance(detail, dict) and isinstance(detail.get("account_index"), int):
        return int(detail["account_index"])
    return None


def _instructions(message: MessageV0) -> list[Instruction]:
    keys = list(message.account_keys)
    header = message.header
    signed = header.num_required_signatures
    writable_signed = signed - header.num_readonly_signed_accounts
    writable_unsigned = len(keys) - header.num_readonly_unsigned_accounts
    result = []
    for compiled in message.instructions:
        metas = [
            AccountMeta(keys[i], i < signed, i < writable_signed or signed <= i < writable_unsigned)
            for i in compiled.accounts
        ]
        result.append(Instruction(keys[compiled.program_id_index], compiled.data, metas))
    return result


def _transfer(instruction: Instruction) -> tuple[Pubkey, Pubkey, int] | None:
    """(from, to, lamports) of a SystemProgram transfer; None for anything else."""
    data = bytes(instruction.data)
    if (
        instruction.program_id != SYSTEM_PROGRAM_ID
        or len(data) != 12
        or data[:4] != TRANSFER_TAG
        or len(instruction.accounts) < 2
    ):
        return None
    accounts = instruction.accounts
    return accounts[0].pubkey, accounts[1].pubkey, int.from_bytes(data[4:], "little")


def _last_log(logs: Sequence[str]) -> str:
    useful = [line for line in logs if "failed" in line or "Error" in line or "error" in line]
    return f" ({useful[-1]})" if useful else ""
