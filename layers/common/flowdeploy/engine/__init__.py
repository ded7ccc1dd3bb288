"""The flow engine: node commands, flow graphs and the scheduler that runs them."""

from flowdeploy.engine import commands as _commands  # noqa: F401 - registers the commands
from flowdeploy.engine.command import REGISTRY, Command, NodeError, Port
from flowdeploy.engine.graph import FlowGraph, FlowInvalid, build_flow_set
from flowdeploy.engine.scheduler import LogLine, NodeRun, Recorder, Run, RunResult

__all__ = [
    "REGISTRY",
    "Command",
    "FlowGraph",
    "FlowInvalid",
    "LogLine",
    "NodeError",
    "NodeRun",
    "Port",
    "Recorder",
    "Run",
    "RunResult",
    "build_flow_set",
]
