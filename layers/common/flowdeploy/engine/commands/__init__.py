"""The built-in node commands; importing this package registers them all."""

from flowdeploy.engine.commands import (
    control,
    data,
    flow,
    kv,
    loops,
    math,
    scripts,
    solana,
    tokens,
    web,
)

__all__ = ["control", "data", "flow", "kv", "loops", "math", "scripts", "solana", "tokens", "web"]
