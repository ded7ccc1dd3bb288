"""What bench/scripts.py measures, in a fresh process: `python -m bench.script_probe rhai|deno`
prints one JSON object."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

COLLATZ = "if a % 2 == 0 {\n    a / 2\n} else {\n    3 * a + 1\n}"
DENO_ADD = (
    'import { BaseCommand } from "jsr:@space-operator/flow-lib@0.15.0";\n'
    "export default class C extends BaseCommand {\n"
    "  override async run(_: any, i: any) { return { c: i.a + i.b }; }\n"
    "}\n"
)
SCRIPT_MODULES = ("lark", "flowdeploy.engine.rhai", "flowdeploy.engine.deno")


def rhai() -> dict[str, Any]:
    started = time.perf_counter()
    import flowdeploy.engine  # noqa: F401

    engine = time.perf_counter() - started
    loaded = sorted(name for name in SCRIPT_MODULES if name in sys.modules)
    started = time.perf_counter()
    import lark  # noqa: F401

    lark_import = time.perf_counter() - started
    from flowdeploy.engine.rhai import compile_source, run
    from flowdeploy.values import IValue

    started = time.perf_counter()
    compile_source("a + 1")
    first = time.perf_counter() - started
    started = time.perf_counter()
    program = compile_source(COLLATZ)
    compile_ms = (time.perf_counter() - started) * 1000
    value = IValue("U", 27)
    started = time.perf_counter()
    for _ in range(1000):
        run(program, {"a": value}, ["u"])
    run_us = (time.perf_counter() - started) * 1000
    return {
        "engine": engine,
        "loaded": loaded,
        "lark": lark_import,
        "first": first,
        "compile_ms": compile_ms,
        "run_us": run_us,
    }


def _port(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "type_bounds": ["f64"],
        "required": True,
        "passthrough": False,
    }


def deno(executable: str, runs: int) -> dict[str, Any]:
    from flowdeploy.engine import deno as sandboxes

    flow = {
        "flow_run_id": "",
        "environment": {},
        "set": {
            "flow_owner": {"id": ""},
            "started_by": {"id": ""},
            "endpoints": {},
            "solana": {"url": "", "cluster": ""},
            "http": {"timeout_in_secs": 0, "gzip": False},
        },
    }
    request = {
        "node": {
            "type": "deno",
            "node_id": "deno_add",
            "inputs": [_port("a"), _port("b")],
            "outputs": [{"id": "c", "name": "c", "type": "f64", "optional": False}],
            "config": {},
        },
        "context": {"data": {"node_id": "n", "times": 0, "flow": flow}},
        "inputs": {"a": {"F": "3"}, "b": {"F": "0.14"}},
    }
    sandbox = sandboxes.Sandbox(executable)

    async def measure() -> tuple[list[float], float]:
        times = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            await sandboxes.run(sandbox, DENO_ADD, request)
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(sandboxes.run(sandbox, DENO_ADD, request) for _ in range(10)))
        return times, time.perf_counter() - started

    times, burst = asyncio.run(measure())
    warm = sorted(times[1:])
    return {"first": times[0], "warm": warm[len(warm) // 2], "burst": burst}


if __name__ == "__main__":
    kind = sys.argv[1]
    found = rhai() if kind == "rhai" else deno(sys.argv[2], int(sys.argv[3]))
    print(json.dumps(found))
