"""JavaScript nodes: a Deno process per run of the node, with no permissions and with time
and memory limits; upstream's flow-lib API from the module shipped here."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from flowdeploy.engine.deno import find_deno
from flowdeploy.settings import settings
from tests.unit.engine.flows import flow, run
from tests.unit.engine.test_space_operator_format import port, spo_edge, spo_node

pytestmark = pytest.mark.skipif(
    find_deno(os.environ.get("DENO_PATH")) is None, reason="Deno is installed by make test"
)

PROBES = """
import { BaseCommand, Context } from "jsr:@space-operator/flow-lib@0.15.0";

async function refused(attempt: () => unknown): Promise<string> {
  try {
    await attempt();
    return "ALLOWED";
  } catch (error) {
    return (error as Error).name;
  }
}

export default class Probe extends BaseCommand {
  override async run(_: Context, inputs: any): Promise<any> {
    return {
      report: {
        file: await refused(() => Deno.readTextFile("/etc/passwd")),
        import_file: await refused(() => import("/etc/hostname")),
        socket: await refused(() => Deno.connect({ hostname: "127.0.0.1", port: inputs.port })),
        fetch: await refused(() => fetch(`http://127.0.0.1:${inputs.port}/`)),
        env: await refused(() => Deno.env.get("HOME")),
        spawn: await refused(() => new Deno.Command("/bin/true").output()),
        ffi: await refused(() => Deno.dlopen("libc.so.6", {})),
        npm: await refused(() => import("npm:left-pad")),
      },
    };
  }
}
"""


def js_flow(source: str, inputs: list[str] = (), outputs: list[str] = ("out",)) -> dict[str, Any]:  # type: ignore[assignment]
    nodes = [
        {
            **spo_node(
                "js",
                "my_js",
                [port(f"i-{name}", name, type_bounds=["free"], required=True) for name in inputs],
                [port(f"o-{name}", name, type="free") for name in outputs],
                config={"source": source},
            ),
            "type": "deno",
        }
    ]
    edges = []
    for name in inputs:
        nodes.append(spo_node(f"in-{name}", "flow_input", outputs=[port(f"p-{name}", name)]))
        edges.append(spo_edge(f"in-{name}", f"p-{name}", "js", f"i-{name}"))
    for name in outputs:
        nodes.append(spo_node(f"out-{name}", "flow_output", [port(f"q-{name}", name)]))
        edges.append(spo_edge("js", f"o-{name}", f"out-{name}", f"q-{name}"))
    return flow(*nodes, edges=edges)


def test_a_js_node_is_refused_files_sockets_env_subprocesses_ffi_and_npm(
    unused_tcp_port: int,
) -> None:
    ran = run(js_flow(PROBES, ["port"], ["report"]), {"port": {"U": str(unused_tcp_port)}})
    assert ran.status == "succeeded", ran.error
    report = {name: value["S"] for name, value in ran.outputs["report"]["M"].items()}
    assert report == {
        "file": "NotCapable",
        "import_file": "TypeError",  # the import map sends every other file nowhere
        "socket": "NotCapable",
        "fetch": "NotCapable",
        "env": "NotCapable",
        "spawn": "NotCapable",
        "ffi": "NotCapable",
        "npm": "TypeError",
    }


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


LOOP = """
export default class Spin {
  async run() { while (true) {} }
}
"""


def test_a_js_node_that_loops_forever_is_stopped_at_its_limit_while_the_rest_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JS_NODE_TIMEOUT_SECONDS", "1.5")
    settings.cache_clear()
    document = js_flow(LOOP)
    document["nodes"].append(
        spo_node(
            "w",
            "wait",
            [
                port("wv", "value", required=True, passthrough=True),
                port("ww", "wait_for", required=True, passthrough=True),
            ],
        )
    )
    document["nodes"].append(
        spo_node("c", "const", outputs=[port("cv", "output")], config={"value": 1})
    )
    document["nodes"].append(spo_node("done", "flow_output", [port("dv", "done")]))
    document["edges"] += [
        spo_edge("c", "cv", "w", "wv"),
        spo_edge("c", "cv", "w", "ww"),
        spo_edge("w", "passthrough-wv", "done", "dv"),
    ]
    ran = run(document)
    settings.cache_clear()
    assert ran.status == "failed"
    assert ran.error == (
        "node 'js' (deno) failed: the JavaScript node ran past its time limit of 1.5 s and was "
        "stopped"
    )
    assert ran.outputs == {"done": {"U": "1"}}, "the other nodes ran meanwhile"


def test_a_js_node_over_its_memory_limit_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JS_NODE_MEMORY_MB", "32")
    settings.cache_clear()
    hog = """
export default class Hog {
  async run() { const kept = []; while (true) kept.push("x".repeat(1024) + kept.length); }
}
"""
    ran = run(js_flow(hog))
    settings.cache_clear()
    assert ran.status == "failed"
    assert ran.error == (
        "node 'js' (deno) failed: the JavaScript node went over its memory limit of 32 MB"
    )


def test_what_a_js_node_throws_and_logs() -> None:
    source = """
import { BaseCommand } from "jsr:@space-operator/flow-lib";
export default class Fails extends BaseCommand {
  override async run(ctx: any, inputs: any) {
    console.log("about to fail", { a: inputs.a });
    ctx.kv;
  }
}
"""
    ran = run(js_flow(source, ["a"]), {"a": {"S": "x"}})
    assert ran.error == (
        "node 'js' (deno) failed: Error: ctx.kv is not available in script runtimes; use "
        "kv_read_item/kv_write_item nodes"
    )
    assert next((line.level, line.content) for line in ran.memory.logs) == (
        "info",
        'about to fail {"a":"x"}',
    )


def test_a_script_that_does_not_load_fails_with_denos_message() -> None:
    ran = run(js_flow('import x from "jsr:@std/assert"; export default class C {}'))
    assert ran.status == "failed"
    assert (ran.error or "").startswith(
        "node 'js' (deno) failed: the JavaScript node failed: error: JSR package manifest for "
        "'@std/assert' failed to load"
    )
    assert "but --no-remote is specified.\n    at cmd.ts:1:15" in (ran.error or "")


def test_ports_types_convert_as_upstreams_base_command_does() -> None:
    source = """
import { BaseCommand, Value } from "jsr:@space-operator/flow-lib@0.15.0";
export default class Types extends BaseCommand {
  override async run(_: any, i: any) {
    return { big: i.n * 2n, text: `${i.key.toBase58()}:${typeof i.f}`, raw: new Value(i.m).M };
  }
}
"""
    document = js_flow(source, ["n", "key", "f", "m"], ["big", "text", "raw"])
    types = {"n": ["u64"], "key": ["pubkey"], "f": ["f64"], "m": ["free"]}
    for declared in document["nodes"][0]["data"]["ports"]["inputs"]:
        declared["type_bounds"] = types[declared["name"]]
    for declared in document["nodes"][0]["data"]["ports"]["outputs"]:
        declared["type"] = {"big": "u64", "text": "string", "raw": "free"}[declared["name"]]
    key = "GzPH2zu1BzcoWgZ4Qo8qZ8VyekGED8Hax4dYJcFauPgV"
    ran = run(
        document,
        {"n": {"U": "21"}, "key": {"B3": key}, "f": {"F": "1.5"}, "m": {"M": {"x": {"I": "1"}}}},
    )
    assert ran.status == "succeeded", ran.error
    assert ran.outputs == {
        "big": {"U": "42"},
        "text": {"S": f"{key}:number"},
        "raw": {"M": {"x": {"D": "1"}}},
    }
    assert json.dumps(ran.outputs)
