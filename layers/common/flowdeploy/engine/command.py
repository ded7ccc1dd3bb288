"""What a node command is: its declaration (ports, types, config fields) and an async `run`.

A command is declared once, as a class: its ports with their types and rules, its config
fields, its description, and the document formats it serves. Flow validation, the engine
and the catalogue (`GET /nodes`) all read that one declaration.

Two document formats exist (see `flowdeploy.engine.documents`): this service's name-based
one ("flowdeploy") and Space Operator's ("spaceoperator", ports declared with ids). Where
both define a command of the same name with different ports or meaning (`branch`, `wait`,
`http_request`, ...), each format has its own declaration: a document always gets the
definition of its own format, never the other's.

An instance is built once per node when a flow is validated, from the node's config, so
config mistakes surface when the flow is saved or deployed, never half-way through a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from flowdeploy.engine.convert import (
    Absent,
    ConversionError,
    config_value,
    to_bool,
    to_decimal,
    to_string,
)
from flowdeploy.engine.ports import FREE, Field, Port

__all__ = [
    "BOTH",
    "FLOWDEPLOY",
    "FORMATS",
    "NODE_TYPES",
    "REGISTRIES",
    "REGISTRY",
    "SPACE_OPERATOR",
    "Collected",
    "Command",
    "Config",
    "ConfigError",
    "Declared",
    "Field",
    "NodeContext",
    "NodeError",
    "Port",
    "ReturnTransaction",
    "catalogue",
    "convert_input",
    "dynamic_port",
    "register",
    "register_node_type",
]
from flowdeploy.values import NULL, IValue, IValueError

if TYPE_CHECKING:
    from flowdeploy.engine.graph import FlowGraph
    from flowdeploy.engine.services import InstructionCollector, RunServices
    from flowdeploy.solana.session import SolanaSession

FLOWDEPLOY = "flowdeploy"
SPACE_OPERATOR = "spaceoperator"
FORMATS = (FLOWDEPLOY, SPACE_OPERATOR)
BOTH = FORMATS


class NodeError(Exception):
    """A node failed; the message is what the run records for it."""


class ReturnTransaction(Exception):
    """`output_instructions`: the run ends `stopped` with this transaction (base64) for the
    caller's wallet to sign and send, and what simulating it said."""

    def __init__(self, transaction: str, simulation: Mapping[str, object] | None = None) -> None:
        failure = (simulation or {}).get("error")
        note = f"; its simulation fails: {failure}" if failure else ""
        super().__init__(f"returned its transaction for the action signer to sign{note}")
        self.transaction = transaction
        self.simulation = dict(simulation) if simulation is not None else None


class Collected(Exception):
    """The node's instructions went to an `interflow_instructions` caller instead of the
    chain: the node ends without outputs and without an error."""

    def __init__(self) -> None:
        super().__init__("its instructions were collected by the calling flow")


class ConfigError(ValueError):
    """A node's config is invalid; `key` names the config entry."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config {key!r}: {reason}")
        self.key = key


class NodeContext(Protocol):
    """What a running node may use besides its inputs."""

    node_id: str
    # How many times this node ran before in this flow (a node in a foreach loop runs once
    # per element): 0, 1, 2, ...
    times: int

    @property
    def flow_inputs(self) -> Mapping[str, IValue]: ...

    def emit_flow_output(self, label: str, value: IValue) -> None: ...

    def log(self, level: str, content: str) -> None: ...

    def publish_event(self, kind: str, data: Mapping[str, Any]) -> None:
        """A live event of the run that no record holds (`flowdeploy.live.events.KINDS`,
        e.g. upstream's ApiInput `{"url": …}`); `flow_run_id` and `time` are added."""
        ...

    @property
    def remaining_seconds(self) -> float: ...

    @property
    def http_allow_private(self) -> bool: ...

    async def run_flow(self, flow_id: int, inputs: dict[str, IValue]) -> dict[str, IValue]: ...

    async def collect_flow(self, flow_id: int, inputs: dict[str, IValue]) -> InstructionCollector:
        """Runs the flow with its Solana instructions collected instead of sent."""
        ...

    @property
    def collector(self) -> InstructionCollector | None:
        """Inside a flow run by `interflow_instructions`: where instructions go instead."""
        ...

    @property
    def solana(self) -> SolanaSession | None:
        """The run's Solana session (cluster, keys, signature requests), made on first use."""
        ...

    @property
    def services(self) -> RunServices:
        """The run's facts and stores: who owns and started it, the key-value store, the
        API inputs it waits for."""
        ...


class Config:
    """A node's config values, decoded on demand (IValue or plain JSON)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, object]) -> None:
        self._raw = raw

    def __contains__(self, key: str) -> bool:
        return key in self._raw

    def raw(self, key: str) -> object:
        return self._raw.get(key)

    def as_dict(self) -> dict[str, object]:
        return dict(self._raw)

    def value(self, key: str) -> IValue | None:
        if key not in self._raw:
            return None
        try:
            return config_value(self._raw[key], f"config.{key}")
        except IValueError as error:
            raise ConfigError(key, error.reason) from None

    def require(self, key: str) -> IValue:
        value = self.value(key)
        if value is None:
            raise ConfigError(key, "is required")
        return value

    def _convert(self, key: str, value: IValue, convert: Callable[[IValue], _T]) -> _T:
        try:
            return convert(value)
        except ConversionError as error:
            raise ConfigError(key, str(error)) from None

    def string(self, key: str, default: str | None = None) -> str:
        value = self.value(key)
        if value is None:
            if default is None:
                raise ConfigError(key, "is required")
            return default
        return self._convert(key, value, to_string)

    def decimal(self, key: str) -> Decimal | None:
        value = self.value(key)
        return None if value is None else self._convert(key, value, to_decimal)

    def integer(self, key: str) -> int:
        number = self._convert(key, self.require(key), to_decimal)
        if number != number.to_integral_value() or number < 0:
            raise ConfigError(key, f"must be a non-negative integer, got {number}")
        return int(number)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key)
        return default if value is None else self._convert(key, value, to_bool)

    def field(self, field: Field) -> Any:
        """The value of a declared field through its rule; None when absent."""
        value = self.value(field.name)
        if value is None:
            if field.required:
                raise ConfigError(field.name, "is required")
            return None
        return value if field.rule is None else self._convert(field.name, value, field.rule)


_T = TypeVar("_T")


class Declared:
    """The ports a Space Operator document declares on one node (names, flags, types)."""

    __slots__ = ("inputs", "outputs")

    def __init__(self, inputs: tuple[Port, ...], outputs: tuple[Port, ...]) -> None:
        self.inputs = inputs
        self.outputs = outputs


class Command:
    """Base class of node commands. Subclasses set `name`, their ports, fields and `run`."""

    name: ClassVar[str]
    # The document formats this declaration serves.
    formats: ClassVar[tuple[str, ...]] = (FLOWDEPLOY,)
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    config_fields: ClassVar[tuple[Field, ...]] = ()
    # Ports taken from the node itself (interflow: the called flow's labels).
    dynamic_ports: ClassVar[bool] = False
    # foreach: an array on an output reaches the next nodes one element at a time.
    splits_arrays: ClassVar[bool] = False
    # collect: runs once, when everything upstream is done, with every value it was sent.
    gathers: ClassVar[bool] = False
    # interflow: its inputs go on to another flow, which decides which ones it needs.
    passes_inputs_on: ClassVar[bool] = False
    # Commands of one family (rhai_script_0x1 … 5x5) share one row in the docs' table.
    family: ClassVar[str | None] = None

    def __init__(self, config: Config, declared: Declared | None = None) -> None:
        self.config = config
        self.declared = declared
        # The node's own command name (a `deno` node's is its own, e.g. deno_add).
        self.node_name: str = self.name

    @classmethod
    def describe(cls) -> str:
        return (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")

    def input_ports(self) -> tuple[Port, ...]:
        return self.inputs

    def output_ports(self) -> tuple[Port, ...]:
        return self.outputs

    def input_port(self, name: str) -> Port | None:
        return next((port for port in self.input_ports() if port.name == name), None)

    def output_port(self, name: str) -> Port | None:
        """An output, or the output a passthrough input makes (same name, same type)."""
        for port in self.output_ports():
            if port.name == name:
                return port
        found = self.input_port(name)
        if found is not None and found.passthrough:
            return Port(found.name, required=found.required, types=found.types)
        return None

    def has_output(self, name: str) -> bool:
        return self.output_port(name) is not None

    def check(self, graph: FlowGraph, node_id: str) -> None:
        """Whole-flow checks a command needs (e.g. unique output labels); raise ConfigError."""

    def given(self, inputs: Mapping[str, IValue], port: str) -> IValue | None:
        """inputs[port], or None when it has no value. Null on an optional input counts as no
        value, as upstream reads it (an `Option` is None for null)."""
        value = inputs.get(port)
        if value is not None and value.tag == NULL:
            found = self.input_port(port)
            if found is not None and not found.required:
                return None
        return value

    def get(self, inputs: Mapping[str, IValue], port: str, default: Any = None) -> Any:
        """The input through its port's declared rule; `default` when it has no value (see
        `given`). A value the rule refuses is a NodeError naming the port."""
        value = self.given(inputs, port)
        if value is None:
            return default
        found = self.input_port(port)
        rule = found.rule if found is not None else None
        if rule is None:
            return value
        return convert_input(inputs, port, rule)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        raise NotImplementedError

    @classmethod
    def catalogue_entry(cls, document_format: str) -> dict[str, Any]:
        """The command as `GET /nodes` lists it: upstream's node-definition shape."""
        fields = {field.name: field.schema() for field in cls.config_fields}
        for port in cls.inputs:
            fields.setdefault(
                port.name,
                {
                    "value_type": port.type,
                    "description": "a literal value for this input when no edge feeds it",
                },
            )
        return {
            "name": cls.name,
            "format": document_format,
            "description": cls.describe(),
            "dynamic_ports": cls.dynamic_ports,
            "ports": {
                "inputs": [port.input_json() for port in cls.inputs],
                "outputs": [port.output_json() for port in cls.outputs],
            },
            "config_schema": {
                "type": "object",
                "properties": fields,
                "required": [field.name for field in cls.config_fields if field.required],
            },
        }


REGISTRIES: dict[str, dict[str, type[Command]]] = {name: {} for name in FORMATS}
# Space Operator node types whose nodes all run one command, whatever their name (`deno`).
NODE_TYPES: dict[str, type[Command]] = {}
# This service's format: name -> command.
REGISTRY = REGISTRIES[FLOWDEPLOY]

_C = TypeVar("_C", bound=type[Command])


def register(cls: _C) -> _C:
    """Class decorator: make the command available under its `name` in its formats."""
    for document_format in cls.formats:
        registry = REGISTRIES[document_format]
        if cls.name in registry:
            raise RuntimeError(f"command {cls.name!r} registered twice for {document_format}")
        registry[cls.name] = cls
    return cls


def register_node_type(node_type: str) -> Callable[[_C], _C]:
    """Class decorator: every Space Operator node of `node_type` runs this command."""

    def register_type(cls: _C) -> _C:
        NODE_TYPES[node_type] = cls
        return cls

    return register_type


def catalogue() -> list[dict[str, Any]]:
    """Every command of every format, sorted by name then format."""
    return [
        command.catalogue_entry(document_format)
        for document_format in FORMATS
        for command in REGISTRIES[document_format].values()
    ]


def convert_input(inputs: Mapping[str, IValue], port: str, convert: Callable[[IValue], _T]) -> _T:
    """inputs[port] through `convert`, a NodeError naming the port if it does not fit."""
    value = inputs[port]
    if isinstance(value, Absent):
        raise NodeError(f"input {port!r}: {value.reason}")
    try:
        return convert(value)
    except ConversionError as error:
        raise NodeError(f"input {port!r}: {error}") from None


def dynamic_port(name: str, required: bool = True) -> Port:
    return Port(name, required=required, types=(FREE,))
