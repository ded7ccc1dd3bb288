"""Space Operator's own flow documents (tests/fixtures/space_operator, sources in its README)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from flowdeploy import frames

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "space_operator"


@cache
def export() -> dict[str, Any]:
    """docker/export.json as upstream ships it."""
    return dict(json.loads((FIXTURES / "export.json").read_text()))


@cache
def _rows() -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in frames.read(export()["flows"], "flows")}


def flow_row(name: str) -> dict[str, Any]:
    """The export's flow `name` as a flow row (JSON columns parsed, t/f as booleans)."""
    row = dict(_rows()[name])
    for column in ("nodes", "edges", "viewport", "environment", "current_network"):
        row[column] = json.loads(row[column]) if row[column] is not None else None
    for column in ("is_public", "start_shared", "start_unverified", "gg_marketplace"):
        row[column] = row[column] == "t"
    return row


def document(name: str) -> dict[str, Any]:
    """The nodes and edges of the export's flow `name` (a fresh copy)."""
    row = flow_row(name)
    return {"nodes": copy.deepcopy(row["nodes"]), "edges": copy.deepcopy(row["edges"])}


def crate_flow(name: str) -> dict[str, Any]:
    """A flow of crates/flow/test_files (nodes and edges)."""
    flow = json.loads((FIXTURES / f"{name}.json").read_text())["flow"]
    return {"nodes": flow["nodes"], "edges": flow["edges"]}
