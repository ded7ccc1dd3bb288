"""Upstream's script flows (docker/export.json), imported with POST /data/import, deployed
and run: the outputs @space-operator/client's integration tests (flow_test.ts) expect."""

from __future__ import annotations

from typing import Any

from tests.conftest import new_user
from tests.unit.api import Api
from tests.unit.test_import_export import flow_ids, imported, run_flow
from tests.unit.test_run_execution import execute, read, start


def test_upstreams_script_flows_give_what_its_flow_test_expects(api: Api) -> None:
    user = new_user()
    ids = flow_ids(imported(api, user))

    def outputs(name: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        started = start(api, user, api.deploy(user, ids[name]), {"inputs": inputs or {}})
        execute(api, started["flow_run_id"])
        run = read(api, started).body
        assert run["status"] == "succeeded", (name, run["error"])
        return dict(run["outputs"])

    # `new Value({a: 1, b: 2})`: JavaScript numbers are decimals (D)
    assert outputs("Add", {"a": {"D": "1"}, "b": {"D": "2"}}) == {"c": {"D": "3"}}
    # Collatz calls itself through interflow, once per step: 112 steps from 54
    assert outputs("Collatz", {"n": {"D": "54"}}) == {"out": {"I": "1"}, "count": {"D": "112"}}
    assert outputs("Collatz-Core", {"n": {"U": "27"}}) == {"out": {"D": "82"}}
    assert outputs("Deno Add") == {"pi": {"F": "3.14"}}


def test_collatz_records_each_level_of_its_recursion(api: Api) -> None:
    user = new_user()
    ids = flow_ids(imported(api, user))
    run, nodes = run_flow(api, user, ids["Collatz"], {"n": {"D": "6"}})
    assert run["outputs"] == {"out": {"I": "1"}, "count": {"D": "8"}}
    deepest = max(nodes, key=lambda record: record["node_id"].count("/"))
    assert deepest["node_id"].count("/") == 8, "6 → 3 → 10 → 5 → 16 → 8 → 4 → 2 → 1"
