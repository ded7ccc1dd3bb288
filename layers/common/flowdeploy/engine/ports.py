"""Ports and config fields: what a command declares, with the value types upstream uses.

A port or config field may carry a `rule`: the function that turns a value into what the
command computes with, raising ConversionError when the value does not fit. The same rule
runs on a literal config value when the flow is saved and on a value arriving at run time,
so a value the command would refuse is refused at save whenever it is known then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from flowdeploy.values import IValue

# Upstream's value type names (flow-lib `ValueType`): what node definitions and Space
# Operator documents write in `type` / `type_bounds`.
FREE = "free"
JSON = "json"

_KINDS: dict[str, str | None] = {
    FREE: None,
    JSON: None,
    "other": None,
    "": None,
    "bool": "bool",
    **dict.fromkeys(
        ("u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128"), "number"
    ),
    **dict.fromkeys(("f32", "f64", "decimal", "number"), "number"),
    "string": "string",
    "address": "string",
    "pubkey": "pubkey",
    "keypair": "keypair",
    "signature": "signature",
    "bytes": "bytes",
    "array": "array",
    "object": "object",
    "map": "object",
}
# What an input of each kind accepts: the conversions commands make at run time (numeric
# text is a number, base58 text a key or signature, a keypair stands for its public key).
_ACCEPTS: dict[str, frozenset[str]] = {
    "number": frozenset({"number", "string"}),
    "string": frozenset({"string", "pubkey", "signature"}),
    "bool": frozenset({"bool"}),
    "pubkey": frozenset({"pubkey", "keypair", "string"}),
    "keypair": frozenset({"keypair", "pubkey", "string"}),
    "signature": frozenset({"signature", "string"}),
    "bytes": frozenset({"bytes", "string", "pubkey", "signature", "keypair"}),
    "array": frozenset({"array"}),
    "object": frozenset({"object"}),
}

Rule = Callable[[IValue], Any]


def kind(value_type: str) -> str | None:
    """The kind of an upstream value type name; None for free, json and unknown names."""
    return _KINDS.get(value_type.lower())


@cache
def compatible(output_type: str, type_bounds: tuple[str, ...]) -> bool:
    """Whether a value of `output_type` may flow into an input accepting `type_bounds`."""
    source = kind(output_type)
    if source is None or not type_bounds:
        return True
    for bound in type_bounds:
        target = kind(bound)
        if target is None or source in _ACCEPTS[target]:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Port:
    """An input or output port.

    Inputs: `required` means the node needs a value (an edge or a config value); `types` are
    the accepted value types; `passthrough` forwards the value to an output of the same name.
    Outputs: `required=False` is upstream's `optional` (the node may not produce it); the
    first of `types` is the output's type.
    """

    name: str
    required: bool = True
    types: tuple[str, ...] = (FREE,)
    passthrough: bool = False
    description: str = ""
    rule: Rule | None = None

    @property
    def type(self) -> str:
        return self.types[0] if self.types else FREE

    def input_json(self) -> dict[str, Any]:
        """As upstream's node definitions write an input."""
        return {
            "name": self.name,
            "type_bounds": list(self.types),
            "required": self.required,
            "passthrough": self.passthrough,
            "tooltip": self.description,
        }

    def output_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "optional": not self.required,
            "tooltip": self.description,
        }


@dataclass(frozen=True, slots=True)
class Field:
    """A config entry that is not an input port (a label, a flow id, a wallet id)."""

    name: str
    type: str = FREE
    required: bool = False
    description: str = ""
    rule: Rule | None = None

    def schema(self) -> dict[str, Any]:
        return {"value_type": self.type, "description": self.description}
