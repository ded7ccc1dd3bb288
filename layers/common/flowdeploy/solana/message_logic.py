"""Whether a wallet kept a transaction's logic when it handed back a changed message.

Wallets may rewrite the message they are asked to sign: add or tune compute-budget
instructions, add a memo or a Lighthouse guard naming only accounts and signers already
there. Anything else (another fee payer or blockhash, other signers, other instructions,
data or accounts) changes what the transaction does, and the changed message is refused.
The rule is upstream's `is_same_message_logic` (`crates/flow-lib-solana/src/utils.rs`),
including its limits on compute-budget values; its messages are kept so callers see the
same reasons. One difference: a memo the original message already has (the Solana Actions
identity memo) stays one of its instructions in the new message, where upstream takes it
for a wallet's addition and so refuses every changed message that carries an identity memo.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.instruction import CompiledInstruction
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey

from flowdeploy.solana import MEMO_PROGRAM_ID

COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
LIGHTHOUSE_PROGRAM = Pubkey.from_string("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95")
MEMO_PROGRAMS = frozenset(
    {
        Pubkey.from_string(MEMO_PROGRAM_ID),
        Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),  # SPL Memo v1
    }
)
SWIG_PROGRAM = Pubkey.from_string("swigypWHEksbC64pWKwah1WTeh9JXwx8H1rJHLdbQMB")
MAX_WALLET_MEMO_BYTES = 256
MAX_LIGHTHOUSE_DATA_BYTES = 512
MAX_LIGHTHOUSE_ACCOUNTS = 8


class MessageChanged(ValueError):
    """The new message does something else than the old one; the text says what."""


@dataclass(frozen=True, slots=True)
class _Account:
    """An instruction account by identity: a static key, or (lookup table, index)."""

    identity: Pubkey | tuple[Pubkey, int]
    is_signer: bool
    is_writable: bool


def parse_v0(raw: bytes, what: str = "message") -> MessageV0:
    """A sanitized v0 message from its wire bytes; MessageChanged if it is not one."""
    try:
        message = from_bytes_versioned(raw)
    except ValueError as error:
        raise MessageChanged(f"{what} is not a transaction message: {error}") from None
    if not isinstance(message, MessageV0):
        raise MessageChanged("only V0 message is supported")
    try:
        message.sanitize()
    except Exception as error:  # solders raises its own SanitizeError
        raise MessageChanged(f"{what} is malformed: {error}") from None
    if not message.account_keys:
        raise MessageChanged("empty transaction")
    return message


def same_message_logic(old: bytes, new: bytes, *, same_blockhash: bool = True) -> MessageV0:
    """The new message, if it keeps the old one's logic; MessageChanged naming the change.

    `same_blockhash=False` lets the blockhash differ: for a transaction that already landed
    (a wallet may refresh the blockhash of a transaction nobody else has signed), what it
    did is what matters, not how long it could have waited.
    """
    left = parse_v0(old, "the requested message")
    right = parse_v0(new, "new_msg")
    _ensure(left.account_keys[0] == right.account_keys[0], "different fee payer")
    if same_blockhash:
        _ensure(left.recent_blockhash == right.recent_blockhash, "different blockhash")
    _ensure(
        _lookups(left) == _lookups(right),
        "different address table lookups",
    )
    _ensure(_calls_swig(left) == _calls_swig(right), "swig program presence changed")
    lh, rh = left.header, right.header
    _ensure(
        lh.num_required_signatures == rh.num_required_signatures,
        "different num_required_signatures",
    )
    _ensure(
        lh.num_readonly_signed_accounts == rh.num_readonly_signed_accounts,
        "different num_readonly_signed_accounts",
    )
    for index in range(lh.num_required_signatures):
        _ensure(
            left.account_keys[index] == right.account_keys[index],
            f"different signer account {index}",
        )
    old_business = [ix for ix in left.instructions if not _allowed_compute_budget(left, ix)]
    new_business = [
        ix for ix in right.instructions if not _allowed_wallet_addition(left, right, ix)
    ]
    if len(old_business) != len(new_business):
        old_programs = ",".join(str(_program(left, ix)) for ix in old_business)
        new_programs = ",".join(str(_program(right, ix)) for ix in new_business)
        raise MessageChanged(
            f"different business instructions count, old = {len(old_business)}, "
            f"new = {len(new_business)}, old_programs = [{old_programs}], "
            f"new_programs = [{new_programs}]"
        )
    for index, (il, ir) in enumerate(zip(old_business, new_business, strict=True)):
        _ensure(
            _program(left, il) == _program(right, ir),
            f"different program id for instruction {index}",
        )
        _ensure(bytes(il.data) == bytes(ir.data), f"different instruction data {index}")
        _ensure(
            _accounts(left, il) == _accounts(right, ir),
            f"different account inputs for instruction {index}",
        )
    return right


def _ensure(condition: bool, reason: str) -> None:
    if not condition:
        raise MessageChanged(reason)


def _lookups(message: MessageV0) -> list[tuple[Pubkey, bytes, bytes]]:
    return [
        (lookup.account_key, bytes(lookup.writable_indexes), bytes(lookup.readonly_indexes))
        for lookup in message.address_table_lookups
    ]


def _program(message: MessageV0, ix: CompiledInstruction) -> Pubkey:
    keys = message.account_keys
    if ix.program_id_index >= len(keys):
        raise MessageChanged("instruction program index out of bounds")
    return keys[ix.program_id_index]


def _calls_swig(message: MessageV0) -> bool:
    keys = message.account_keys
    return any(
        ix.program_id_index < len(keys) and keys[ix.program_id_index] == SWIG_PROGRAM
        for ix in message.instructions
    )


def _identity(message: MessageV0, index: int) -> Pubkey | tuple[Pubkey, int]:
    keys = message.account_keys
    if index < len(keys):
        return keys[index]
    offset = index - len(keys)
    # Loaded addresses come after the static keys: every table's writable ones, then
    # every table's read-only ones.
    for attribute in ("writable_indexes", "readonly_indexes"):
        for lookup in message.address_table_lookups:
            indexes = bytes(getattr(lookup, attribute))
            if offset < len(indexes):
                return (lookup.account_key, indexes[offset])
            offset -= len(indexes)
    raise MessageChanged("instruction account index out of bounds")


def _accounts(message: MessageV0, ix: CompiledInstruction) -> list[_Account]:
    signers = message.header.num_required_signatures
    return [
        _Account(_identity(message, index), index < signers, message.is_maybe_writable(index))
        for index in bytes(ix.accounts)
    ]


# Compute-budget instructions a wallet may add: (tag, payload bytes) -> the largest value of
# each little-endian field of the payload.
_BUDGET_LIMITS: dict[tuple[int, int], tuple[tuple[int, int, int], ...]] = {
    (0, 8): ((0, 4, 1_400_000), (4, 8, 1_500_000)),  # RequestUnitsDeprecated{units, fee}
    (1, 4): ((0, 4, 256 * 1024),),  # RequestHeapFrame(bytes)
    (2, 4): ((0, 4, 1_400_000),),  # SetComputeUnitLimit(units)
    (3, 8): ((0, 8, 1_000_000),),  # SetComputeUnitPrice(micro-lamports)
    (4, 4): ((0, 4, 1_048_576),),  # SetLoadedAccountsDataSizeLimit(bytes)
}
_UNKNOWN_BUDGET_PAYLOAD = 16


def _memos(message: MessageV0) -> set[tuple[Pubkey, bytes]]:
    return {
        (_program(message, ix), bytes(ix.data))
        for ix in message.instructions
        if _program(message, ix) in MEMO_PROGRAMS
    }


def _allowed_compute_budget(message: MessageV0, ix: CompiledInstruction) -> bool:
    """A compute-budget instruction within upstream's limits (an empty one is allowed)."""
    if _program(message, ix) != COMPUTE_BUDGET_PROGRAM:
        return False
    if bytes(ix.accounts):
        raise MessageChanged("compute budget instruction must not include accounts")
    data = bytes(ix.data)
    if not data:
        return True
    payload = data[1:]
    limits = _BUDGET_LIMITS.get((data[0], len(payload)))
    if limits is None:
        return len(payload) <= _UNKNOWN_BUDGET_PAYLOAD
    return all(
        int.from_bytes(payload[start:end], "little") <= limit for start, end, limit in limits
    )


def _allowed_wallet_addition(
    original: MessageV0, modified: MessageV0, ix: CompiledInstruction
) -> bool:
    """What a wallet may add: compute budget, a short memo, or a Lighthouse guard, naming
    no new signer (and, for a memo, no account the original used). A memo the original has
    (program and text) is the transaction's own, not an addition."""
    if _allowed_compute_budget(modified, ix):
        return True
    program = _program(modified, ix)
    own_memo = program in MEMO_PROGRAMS and (program, bytes(ix.data)) in _memos(original)
    signers = set(original.account_keys[: original.header.num_required_signatures])
    accounts = _accounts(modified, ix)
    if own_memo or any(
        not isinstance(a.identity, Pubkey) or (a.is_signer and a.identity not in signers)
        for a in accounts
    ):
        return False
    if program in MEMO_PROGRAMS:
        static = set(original.account_keys)
        return len(bytes(ix.data)) <= MAX_WALLET_MEMO_BYTES and all(
            a.is_signer or a.identity not in static for a in accounts
        )
    if program == LIGHTHOUSE_PROGRAM:
        return (
            len(bytes(ix.data)) <= MAX_LIGHTHOUSE_DATA_BYTES
            and len(bytes(ix.accounts)) <= MAX_LIGHTHOUSE_ACCOUNTS
        )
    return False
