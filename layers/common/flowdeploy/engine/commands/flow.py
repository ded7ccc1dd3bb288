"""Flow-level commands: inputs, outputs, constants, nested flows and the run's facts."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from flowdeploy.engine.command import (
    BOTH,
    SPACE_OPERATOR,
    Command,
    ConfigError,
    NodeContext,
    NodeError,
    Port,
    dynamic_port,
    register,
)
from flowdeploy.engine.convert import Absent, ConversionError, parse_json_text
from flowdeploy.engine.ports import Field
from flowdeploy.values import ARRAY, B32, BOOL, BYTES, MAP, NULL, STRING, IValue

if TYPE_CHECKING:
    from flowdeploy.engine.graph import FlowGraph


def _label(command: Command) -> str:
    return command.config.string("label")


def _given(ctx: NodeContext, label: str, default: IValue | None) -> IValue:
    """The start input `label`, else the default, else null that says it was not given."""
    value = ctx.flow_inputs.get(label)
    if value is not None:
        return value
    if default is not None and default.tag != NULL:
        return default
    return Absent(label)


@register
class FlowInput(Command):
    """The start input named by config `label`, else config `default` (or `value`), else null."""

    name = "flow_input"
    outputs: ClassVar[tuple[Port, ...]] = (Port("output"),)
    config_fields = (
        Field("label", "string", required=True, description="the start input's name"),
        Field("default", description="the value when the start does not give this input"),
        Field("value", description="upstream's name for `default`"),
    )

    @cached_property
    def label(self) -> str:
        return _label(self)

    @cached_property
    def declared_type(self) -> str:
        """Upstream's config `type` (u64, decimal, pubkey, string…; "free" when absent)."""
        return self.config.string("type", "free").strip().lower() or "free"

    @property
    def has_default(self) -> bool:
        return self._default() is not None

    def _default(self) -> IValue | None:
        for key in ("default", "value"):  # `value` is upstream's name for it
            found = self.config.value(key)
            if found is not None:
                return found
        return None

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {"output": _given(ctx, self.label, self._default())}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.label  # noqa: B018 - validates the config
        self.declared_type  # noqa: B018
        self._default()


def _unique_output(graph: FlowGraph, node_id: str, label: str) -> None:
    other = graph.output_nodes(label)
    if len(other) > 1:
        twin = next(found for found in other if found != node_id)
        raise ConfigError("label", f"output {label!r} is also produced by {twin!r}")


@register
class FlowOutput(Command):
    """Makes its `input` the run output named by config `label`."""

    name = "flow_output"
    inputs = (Port("input"),)
    config_fields = (Field("label", "string", required=True, description="the run output's name"),)

    @cached_property
    def label(self) -> str:
        return _label(self)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        ctx.emit_flow_output(self.label, inputs["input"])
        return {}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        _unique_output(graph, node_id, self.label)


@register
class Const(Command):
    """Config `value` (an IValue, or plain JSON) on `output`."""

    name = "const"
    outputs = (Port("output"),)
    config_fields = (Field("value", required=True, description="the constant"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {"output": self.config.require("value")}


class _CallsFlow(Command):
    """A node that runs another flow of the same deployment (config `flow_id`)."""

    dynamic_ports = True
    passes_inputs_on = True
    config_fields = (
        Field(
            "flow_id",
            "string",
            required=True,
            description="the flow to run: its id here (an import rewrites Space Operator ids)",
        ),
    )

    @property
    def called_flow(self) -> int:
        raw = self.config.raw("flow_id")
        if isinstance(raw, dict) and len(raw) == 1 and "S" in raw and not _digits(raw["S"]):
            raise ConfigError(
                "flow_id",
                f"{raw['S']!r} is a Space Operator flow id; import the flow with POST "
                "/data/import (which rewrites it) or use this service's flow id",
            )
        return self.config.integer("flow_id")

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.called_flow  # noqa: B018 - validates the config

    def _inputs(self, inputs: dict[str, IValue]) -> dict[str, IValue]:
        # Upstream's editor gives these nodes a `flow` input that carries nothing.
        return {name: value for name, value in inputs.items() if name != "flow"}


def _digits(text: object) -> bool:
    return isinstance(text, str) and text.isascii() and text.isdigit()


@register
class Interflow(_CallsFlow):
    """Runs flow config `flow_id` from the same deployment: its inputs are this node's
    inputs (by port name), its outputs this node's outputs."""

    name = "interflow"
    formats = BOTH

    def input_port(self, name: str) -> Port | None:
        return dynamic_port(name)

    def output_port(self, name: str) -> Port | None:
        return dynamic_port(name)

    def input_ports(self) -> tuple[Port, ...]:
        return self.declared.inputs if self.declared is not None else ()

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return await ctx.run_flow(self.called_flow, self._inputs(inputs))


INSTRUCTION_OUTPUTS = (
    Port("fee_payer", types=("pubkey",), description="the first key that signs"),
    Port("signers", types=("array",), description="public keys that must sign (B3)"),
    Port("instructions", types=("array",), description="{program_id, accounts, data} maps"),
)


@register
class InterflowInstructions(_CallsFlow):
    """Runs flow config `flow_id` with its Solana instructions collected instead of sent:
    outputs them, with the keys that must sign, for this flow's own transaction."""

    name = "interflow_instructions"
    formats = BOTH
    outputs = INSTRUCTION_OUTPUTS
    outputs_are_labels = False

    def input_port(self, name: str) -> Port | None:
        return dynamic_port(name)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        collected = await ctx.collect_flow(self.called_flow, self._inputs(inputs))
        if not collected.instructions:
            raise NodeError(f"flow {self.called_flow} produced no instructions")
        return instructions_value(collected.instructions, collected.signers)


def instructions_value(instructions: list[Any], signers: list[Any]) -> dict[str, IValue]:
    """Upstream's `instruction_to_output`: keys as B3, data as bytes. Signers are given as
    public keys: a secret key never leaves the run."""
    return {
        "fee_payer": IValue(B32, bytes(signers[0])) if signers else IValue(NULL, None),
        "signers": IValue(ARRAY, [IValue(B32, bytes(key)) for key in signers]),
        "instructions": IValue(
            ARRAY,
            [
                IValue(
                    MAP,
                    {
                        "program_id": IValue(B32, bytes(ix.program_id)),
                        "accounts": IValue(
                            ARRAY,
                            [
                                IValue(
                                    MAP,
                                    {
                                        "pubkey": IValue(B32, bytes(meta.pubkey)),
                                        "is_signer": IValue(BOOL, meta.is_signer),
                                        "is_writable": IValue(BOOL, meta.is_writable),
                                    },
                                )
                                for meta in ix.accounts
                            ],
                        ),
                        "data": IValue(BYTES, bytes(ix.data)),
                    },
                )
                for ix in instructions
            ],
        ),
    }


@register
class FlowRunInfo(Command):
    """The run's facts: the deployment owner's user id, who started the run, the cluster."""

    name = "flow_run_info"
    formats = BOTH
    outputs = (
        Port("flow_owner", types=("string",), description="user id of the flow's owner"),
        Port("started_by", types=("string",), description="user id (or public key) of the caller"),
        Port("solana_net", types=("string",), description="devnet, testnet, mainnet-beta, ..."),
    )

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        info = ctx.services.info
        if info is None:
            raise NodeError("this run has no run information")
        return {
            "flow_owner": IValue(STRING, info.flow_owner),
            "started_by": IValue(STRING, info.started_by),
            "solana_net": IValue(STRING, info.cluster),
        }


# -- Space Operator's definitions ------------------------------------------------------


def _first_name(ports: tuple[Port, ...]) -> str:
    return ports[0].name if ports and ports[0].name else ""


@register
class SpaceOperatorFlowInput(FlowInput):
    """A flow input: named by its output port (rename the port to rename the input), else
    config `label`; defaults to config `value`, else `form_label`, else null."""

    name = "flow_input"
    formats = (SPACE_OPERATOR,)
    outputs: ClassVar[tuple[Port, ...]] = ()  # its output is named by the node (output_ports)
    dynamic_ports = True
    config_fields = (
        Field("label", "string", description="the input's name when the port has none"),
        Field("value", description="the default value"),
        Field("form_label", description="the default value (the editor's form field)"),
    )

    @cached_property
    def label(self) -> str:
        declared = _first_name(self.declared.outputs) if self.declared else ""
        return declared or self.config.string("label")

    def output_ports(self) -> tuple[Port, ...]:
        return (dynamic_port(self.label),)

    @cached_property
    def declared_type(self) -> str:
        """Config `type` when given, else the type its output port declares."""
        if "type" in self.config:
            return super().declared_type
        declared = self.declared.outputs if self.declared else ()
        return (declared[0].type if declared else "free").lower() or "free"

    def _default(self) -> IValue | None:
        for key in ("value", "form_label"):
            found = self.config.value(key)
            if found is not None:
                return found
        return None

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {self.label: _given(ctx, self.label, self._default())}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        if not self.label:
            raise ConfigError("label", "name the input: its output port or config label")
        self._default()


@register
class SpaceOperatorFlowOutput(Command):
    """A flow output: named by its input port, else config `label`, else its output port."""

    name = "flow_output"
    formats = (SPACE_OPERATOR,)
    dynamic_ports = True
    config_fields = (Field("label", "string", description="the output's name"),)

    @cached_property
    def label(self) -> str:
        declared = self.declared
        name = _first_name(declared.inputs) if declared else ""
        if not name and "label" in self.config:
            name = self.config.string("label")
        return name or (_first_name(declared.outputs) if declared else "")

    def input_ports(self) -> tuple[Port, ...]:
        return (dynamic_port(self.label),)

    def output_ports(self) -> tuple[Port, ...]:
        return (dynamic_port(self.label, required=False),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        value = inputs.get(self.label)
        if value is None:
            return {}
        ctx.emit_flow_output(self.label, value)
        return {self.label: value}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        if not self.label:
            raise ConfigError("label", "name the output: its input port or config label")
        _unique_output(graph, node_id, self.label)


@register
class SpaceOperatorConst(Command):
    """Config `value` on `output`; with config `type` JSON a text value is parsed as JSON,
    with `File` it is a list of URLs; otherwise the value is an IValue or plain JSON."""

    name = "const"
    formats = (SPACE_OPERATOR,)
    outputs = (Port("output"),)
    config_fields = (
        Field("type", "string", description="JSON, File, or the editor's value type"),
        Field("value", required=True, description="the constant"),
    )

    @cached_property
    def value(self) -> IValue:
        kind = self.config.raw("type")
        if isinstance(kind, dict):  # a tagged {"S": "JSON"}
            kind = kind.get("S")
        raw = self.config.raw("value")
        if kind == "JSON" and isinstance(raw, str):
            try:
                return parse_json_text(raw, "config.value")
            except ConversionError as error:
                raise ConfigError("value", str(error)) from None
        value = self.config.require("value")
        if kind == "File":
            items = value.value if value.tag == ARRAY else None
            if not isinstance(items, list) or any(item.tag != STRING for item in items):
                raise ConfigError("value", "a File const is a list of URL strings")
        return value

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {"output": self.value}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.value  # noqa: B018 - validates the config
