"""Script nodes: Rhai (`rhai_script_<inputs>x<outputs>`) and JavaScript (`deno` nodes).

A Rhai script is compiled when its flow is saved (a syntax error or an unsupported feature
is a 400 then) and runs in a worker thread under step, depth, size and time limits, so a
busy script never stalls the run's other nodes. A JavaScript node runs in its own Deno
process (`flowdeploy.engine.deno`). lark and the Deno machinery load only when a flow
has such nodes.
"""

from __future__ import annotations

import asyncio
import threading
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from flowdeploy.engine.command import (
    BOTH,
    SPACE_OPERATOR,
    Command,
    ConfigError,
    NodeContext,
    NodeError,
    Port,
    register,
    register_node_type,
)
from flowdeploy.engine.convert import ConversionError, to_string
from flowdeploy.engine.ports import Field
from flowdeploy.values import NULL, IValue

if TYPE_CHECKING:
    from flowdeploy.engine.graph import FlowGraph
    from flowdeploy.engine.rhai import Program

INPUT_NAMES = "abcde"
OUTPUT_NAMES = "uvxyz"
# Wall clock a Rhai script may take (less when the run has less left).
RHAI_SECONDS = 5.0
MAX_SCRIPT_LOG_LINES = 100


@lru_cache(maxsize=512)
def compiled(source: str) -> Program:
    """The script compiled (once per source text in a process); ScriptInvalid if it cannot
    run here."""
    from flowdeploy.engine.rhai import compile_source

    return compile_source(source)


class RhaiScript(Command):
    """Runs the Rhai script `source` with inputs `a`…`e` as variables; outputs `u`…`z` are
    the variables of those names after it (the script's value when there is one output),
    `()` meaning no output. Upstream's numbers: U arrives as a decimal, I as an integer."""

    family = "rhai_script_{inputs}x{outputs}"
    formats = BOTH
    input_names: ClassVar[str] = ""
    output_names: ClassVar[str] = ""

    @cached_property
    def program(self) -> Program | None:
        """The config's script compiled, or None when the source comes from an edge."""
        from flowdeploy.engine.rhai import ScriptInvalid

        value = self.config.value("source")
        if value is None:
            return None
        try:
            return compiled(to_string(value))
        except ConversionError as error:
            raise ConfigError("source", str(error)) from None
        except ScriptInvalid as error:
            raise ConfigError("source", str(error)) from None

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.program  # noqa: B018 - compiles it: a script that cannot run is refused at save

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.engine import rhai

        source = self.get(inputs, "source")
        program = self.program if "source" not in inputs or self._is_config(inputs) else None
        if program is None:
            try:
                program = await asyncio.to_thread(compiled, source)
            except rhai.ScriptInvalid as error:
                raise NodeError(f"input 'source': {error}") from None
        values: dict[str, IValue | None] = {name: inputs.get(name) for name in self.input_names}
        lines: list[str] = []
        stop = threading.Event()
        limits = rhai.Limits(seconds=max(0.01, min(RHAI_SECONDS, ctx.remaining_seconds)))

        def log(text: str) -> None:
            if len(lines) < MAX_SCRIPT_LOG_LINES:
                lines.append(text)

        try:
            return await asyncio.to_thread(
                rhai.run,
                program,
                values,
                list(self.output_names),
                log=log,
                limits=limits,
                cancelled=stop.is_set,
            )
        except asyncio.CancelledError:
            stop.set()
            raise
        except rhai.RhaiError as error:
            raise NodeError(str(error)) from None
        finally:
            for line in lines:
                ctx.log("info", line)

    def _is_config(self, inputs: dict[str, IValue]) -> bool:
        configured = self.config.value("source")
        return configured is not None and inputs.get("source") == configured


def _rhai_command(inputs: int, outputs: int) -> type[RhaiScript]:
    ports = (
        Port("source", types=("string",), description="Rhai script source code", rule=to_string),
        *(
            Port(name, required=False, description=f"Script input {index + 1}")
            for index, name in enumerate(INPUT_NAMES[:inputs])
        ),
    )
    produced = tuple(
        Port(name, required=False, description=f"Script output {index + 1}")
        for index, name in enumerate(OUTPUT_NAMES[:outputs])
    )
    return type(
        f"RhaiScript{inputs}x{outputs}",
        (RhaiScript,),
        {
            "__doc__": RhaiScript.__doc__,
            "name": f"rhai_script_{inputs}x{outputs}",
            "inputs": ports,
            "outputs": produced,
            "input_names": INPUT_NAMES[:inputs],
            "output_names": OUTPUT_NAMES[:outputs],
        },
    )


# Every arity upstream defines (crates/rhai-script/node-definitions): 0-5 inputs, 1-5 outputs.
RHAI_COMMANDS = {(i, o): register(_rhai_command(i, o)) for i in range(6) for o in range(1, 6)}


@register_node_type("deno")
@register
class DenoScript(Command):
    """Any Space Operator node of type `deno`: runs its config `source` (TypeScript or
    JavaScript whose default export is a flow-lib command class) in a Deno process with no
    permissions, under time and memory limits; its ports are the node's own."""

    name = "deno"
    formats = (SPACE_OPERATOR,)
    dynamic_ports = True
    config_fields = (
        Field("source", "string", description="the script (upstream also reads `code`)"),
    )

    @cached_property
    def source(self) -> str:
        for key in ("source", "code"):
            value = self.config.value(key)
            if value is not None:
                try:
                    return to_string(value)
                except ConversionError as error:
                    raise ConfigError(key, str(error)) from None
        raise ConfigError("source", "is required: the node's script")

    def check(self, graph: FlowGraph, node_id: str) -> None:
        self.source  # noqa: B018 - validates the config
        if self.declared is None:
            raise ConfigError("ports", "a deno node declares its ports")

    def input_ports(self) -> tuple[Port, ...]:
        return self.declared.inputs if self.declared is not None else ()

    def output_ports(self) -> tuple[Port, ...]:
        return self.declared.outputs if self.declared is not None else ()

    def output_port(self, name: str) -> Port | None:
        return next((port for port in self.output_ports() if port.name == name), None)

    def _node_data(self) -> dict[str, Any]:
        config = {k: v for k, v in self.config.as_dict().items() if k not in ("source", "code")}
        return {
            "type": "deno",
            "node_id": self.node_name,
            "inputs": [
                {
                    "id": port.name,
                    "name": port.name,
                    "type_bounds": list(port.types),
                    "required": port.required,
                    "passthrough": port.passthrough,
                }
                for port in self.input_ports()
            ],
            "outputs": [
                {
                    "id": port.name,
                    "name": port.name,
                    "type": port.type,
                    "optional": not port.required,
                }
                for port in self.output_ports()
            ],
            "config": config,
        }

    async def run(self, ctx: NodeContext, inputs: dict[str, IValue]) -> dict[str, IValue]:
        from flowdeploy.engine import deno
        from flowdeploy.settings import settings

        config = settings()
        executable = deno.find_deno(config.deno_path)
        if executable is None:
            raise NodeError(
                "JavaScript nodes cannot run here: Deno is not installed (set DENO_PATH, or "
                "attach the Deno layer)"
            )
        sandbox = deno.Sandbox(
            executable,
            seconds=max(0.1, min(config.js_node_timeout_seconds, ctx.remaining_seconds)),
            memory_mb=config.js_node_memory_mb,
        )
        info = ctx.services.info
        request = {
            "node": self._node_data(),
            "context": {
                "data": {
                    "node_id": ctx.node_id,
                    "times": ctx.times,
                    "flow": {
                        "flow_run_id": info.flow_run_id if info else "",
                        "environment": {},
                        "set": {
                            "flow_owner": {"id": info.flow_owner if info else ""},
                            "started_by": {"id": info.started_by if info else ""},
                            "endpoints": {},
                            "solana": {"url": "", "cluster": info.cluster if info else ""},
                            "http": {"timeout_in_secs": 0, "gzip": False},
                        },
                    },
                }
            },
            "inputs": {name: value.to_json() for name, value in inputs.items()},
        }
        try:
            outputs, logs = await deno.run(sandbox, self.source, request)
        except deno.ScriptFailed as error:
            _log(ctx, error.logs)
            raise NodeError(str(error)) from None
        _log(ctx, logs)
        for port in self.output_ports():
            value = outputs.get(port.name)
            if port.required and (value is None or value.tag == NULL):
                raise NodeError(f"finished without its {port.name!r} output")
        return outputs


def _log(ctx: NodeContext, logs: list[dict[str, str]]) -> None:
    for line in logs:
        ctx.log(_level(line.get("level")), str(line.get("content", "")))


def _level(level: object) -> str:
    return level if level in ("debug", "info", "warn", "error") else "info"
