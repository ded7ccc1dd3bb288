"""Flow-level commands: inputs, outputs, constants and nested flows."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from flowdeploy.engine.command import Command, ConfigError, NodeContext, Port, register
from flowdeploy.engine.convert import NULL_VALUE
from flowdeploy.values import IValue

if TYPE_CHECKING:
    from flowdeploy.engine.graph import FlowGraph


@register
class FlowInput(Command):
    """The start input named by config `label`, else config `default` (or `value`), else null."""

    name = "flow_input"
    outputs = (Port("output"),)

    @cached_property
    def label(self) -> str:
        return self.config.string("label")

    @cached_property
    def declared_type(self) -> str:
        """Upstream's config `type` (u64, decimal, pubkey, string…; "free" when absent)."""
        return self.config.string("type", "free").strip().lower() or "free"

    @property
    def has_default(self) -> bool:
        return any(self.config.value(key) is not None for key in ("default", "value"))

    def _default(self) -> IValue:
        for key in ("default", "value"):  # `value` is upstream's name for it
            found = self.config.value(key)
            if found is not None:
                return found
        return NULL_VALUE

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        value = ctx.flow_inputs.get(self.label)
        return {"output": value if value is not None else self._default()}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.label  # noqa: B018 - validates the config
        self.declared_type  # noqa: B018
        self._default()


@register
class FlowOutput(Command):
    """Makes its `input` the run output named by config `label`."""

    name = "flow_output"
    inputs = (Port("input"),)

    @cached_property
    def label(self) -> str:
        return self.config.string("label")

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        ctx.emit_flow_output(self.label, inputs["input"])
        return {}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        other = graph.output_nodes(self.label)
        if len(other) > 1:
            twin = next(found for found in other if found != node_id)
            raise ConfigError("label", f"output {self.label!r} is also produced by {twin!r}")


@register
class Const(Command):
    """Config `value` (an IValue, or plain JSON) on `output`."""

    name = "const"
    outputs = (Port("output"),)

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return {"output": self.config.require("value")}

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.config.require("value")


@register
class Interflow(Command):
    """Runs flow config `flow_id` from the same deployment: its inputs are this node's
    inputs (by port name), its outputs this node's outputs."""

    name = "interflow"
    dynamic_ports = True

    @property
    def flow_id(self) -> int:
        return self.config.integer("flow_id")

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        return await ctx.run_flow(self.flow_id, inputs)

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.flow_id  # noqa: B018 - validates the config
