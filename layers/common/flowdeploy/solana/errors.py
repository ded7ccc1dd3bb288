"""Transaction errors as the JSON-RPC API shows them, and their one-line descriptions.

An `err` value is the public RPC's JSON: a variant name (`"BlockhashNotFound"`) or a
one-key object (`{"InstructionError": [0, {"Custom": 1}]}`,
`{"InsufficientFundsForRent": {"account_index": 2}}`). The texts follow Agave's
Display strings, which the RPC puts in "Transaction simulation failed: …".
"""

from __future__ import annotations

import json
import re

TRANSACTION_ERRORS = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "CallChainTooDeep": "Loader call chain is too deep",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "TooManyAccountLocks": "Transaction locked too many accounts",
    "UnsupportedVersion": "Transaction version is unsupported",
    "InvalidWritableAccount": "Transaction loads a writable account that cannot be written",
}

INSTRUCTION_ERRORS = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "ProgramFailedToComplete": "Program failed to complete",
    "ProgramFailedToCompile": "Program failed to compile",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "IllegalOwner": "Provided owner is not allowed",
}


def _words(name: str) -> str:
    """`AccountNotRentExempt` → "account not rent exempt": for variants without a text here."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def describe_instruction_error(err: object) -> str:
    if isinstance(err, str):
        return INSTRUCTION_ERRORS.get(err, _words(err))
    if isinstance(err, dict) and len(err) == 1:
        ((name, value),) = err.items()
        if name == "Custom" and isinstance(value, int):
            return f"custom program error: {value:#x}"
        if name == "BorshIoError":
            return f"Failed to serialize or deserialize account data: {value}"
        return f"{_words(str(name))}: {value}"
    return json.dumps(err)


def describe(err: object) -> str:
    """One line for a transaction error in the RPC's JSON shape."""
    if isinstance(err, str):
        return TRANSACTION_ERRORS.get(err, _words(err))
    if isinstance(err, dict) and len(err) == 1:
        ((name, value),) = err.items()
        if name == "InstructionError" and isinstance(value, list) and len(value) == 2:
            index, inner = value
            return f"Error processing Instruction {index}: {describe_instruction_error(inner)}"
        if name == "InsufficientFundsForRent" and isinstance(value, dict):
            return (
                f"Transaction results in an account ({value.get('account_index')}) "
                "with insufficient funds for rent"
            )
        if name == "DuplicateInstruction":
            return f"Transaction contains a duplicate instruction ({value}) that is not allowed"
        return f"{_words(str(name))}: {json.dumps(value)}"
    return json.dumps(err)
