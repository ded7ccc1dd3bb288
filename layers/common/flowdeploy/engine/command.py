"""What a node command is: typed ports, config, and an async `run`.

Commands are small classes registered by name (the node's `data.node_id`). An instance is
built once per node when a flow is validated, from the node's config, so config mistakes
surface when the flow is saved or deployed, never half-way through a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from flowdeploy.engine.convert import (
    ConversionError,
    config_value,
    to_bool,
    to_decimal,
    to_string,
)
from flowdeploy.values import IValue, IValueError

if TYPE_CHECKING:
    from flowdeploy.engine.graph import FlowGraph
    from flowdeploy.solana.session import SolanaSession


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


class ConfigError(ValueError):
    """A node's config is invalid; `key` names the config entry."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config {key!r}: {reason}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Port:
    """An input or output port. A required input needs an edge or a config value."""

    name: str
    required: bool = True
    description: str = ""


class NodeContext(Protocol):
    """What a running node may use besides its inputs."""

    node_id: str

    @property
    def flow_inputs(self) -> Mapping[str, IValue]: ...

    def emit_flow_output(self, label: str, value: IValue) -> None: ...

    def log(self, level: str, content: str) -> None: ...

    @property
    def remaining_seconds(self) -> float: ...

    @property
    def http_allow_private(self) -> bool: ...

    async def run_flow(self, flow_id: int, inputs: dict[str, IValue]) -> dict[str, IValue]: ...

    @property
    def solana(self) -> SolanaSession | None:
        """The run's Solana session (cluster, keys, signature requests), made on first use."""
        ...


class Config:
    """A node's config values, decoded on demand (IValue or plain JSON)."""

    def __init__(self, raw: Mapping[str, object]) -> None:
        self._raw = raw

    def __contains__(self, key: str) -> bool:
        return key in self._raw

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


_T = TypeVar("_T")


class Command:
    """Base class of node commands. Subclasses set `name`, `inputs`, `outputs` and `run`."""

    name: ClassVar[str]
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    # Interflow nodes take their ports from the flow they call.
    dynamic_ports: ClassVar[bool] = False

    def __init__(self, config: Config) -> None:
        self.config = config

    def input_port(self, name: str) -> Port | None:
        if self.dynamic_ports:
            return Port(name, required=False)
        return next((port for port in self.inputs if port.name == name), None)

    def has_output(self, name: str) -> bool:
        return self.dynamic_ports or any(port.name == name for port in self.outputs)

    def check(self, graph: FlowGraph, node_id: str) -> None:
        """Whole-flow checks a command needs (e.g. unique output labels); raise ConfigError."""

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        raise NotImplementedError


REGISTRY: dict[str, type[Command]] = {}

_C = TypeVar("_C", bound=type[Command])


def register(cls: _C) -> _C:
    """Class decorator: make the command available under its `name`."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"command {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def convert_input(inputs: Mapping[str, IValue], port: str, convert: Callable[[IValue], _T]) -> _T:
    """inputs[port] through `convert`, a NodeError naming the port if it does not fit."""
    try:
        return convert(inputs[port])
    except ConversionError as error:
        raise NodeError(f"input {port!r}: {error}") from None
