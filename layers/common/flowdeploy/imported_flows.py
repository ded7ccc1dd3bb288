"""The flows of a Space Operator export, on their way into an account (`imports`).

Each flow row gets this service's id; every `interflow` / `interflow_instructions`
reference and every `wallet` node's wallet id is rewritten to the new ids; a flow is saved
only if it passes the same checks as `POST /flow`. A flow that uses a command this service
does not have or calls a flow that was not imported is skipped, saying why.
A flow remembers where it came from (`source`), so the same export imported again updates
it instead of adding another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowdeploy import frames
from flowdeploy.errors import ApiError, BadRequest, PayloadTooLarge
from flowdeploy.flows import CLUSTERS, SERVICE_COLUMNS, UPSTREAM_COLUMNS, FlowBody, command_of
from flowdeploy.store import flows as flow_store

JSON_COLUMNS = frozenset(
    {
        "nodes",
        "edges",
        "viewport",
        "environment",
        "instructions_bundling",
        "current_network",
        "meta_nodes",
        "default_viewport",
        "custom_networks",
        "tags",
        "mosaic",
        "canvas_state",
        "variables",
        "visibility_overrides",
    }
)
BOOL_COLUMNS = frozenset({"is_public", "start_shared", "start_unverified", "gg_marketplace"})
INT_COLUMNS = frozenset({"parent_flow", "lastest_flow_run_id"})


@dataclass
class _Flow:
    """One flow row of the export, on its way in."""

    source_id: str
    uuid: str | None
    name: str
    row: dict[str, Any]
    source: str
    flow_id: int | None = None  # its id here, once known
    existing: int | None = None  # the flow an earlier import made
    problem: str | None = None
    missing: list[str] = field(default_factory=list)
    callees: set[str] = field(default_factory=set)  # refs of the flows it calls, as exported


def _cell(name: str, text: str | None) -> Any:
    """A column's value: JSON columns parsed, t/f as booleans, ids as numbers."""
    if text is None:
        return None
    if name in JSON_COLUMNS:
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"column {name} is not JSON: {error.msg}") from None
        except RecursionError:
            raise ValueError(f"column {name} is nested too deeply") from None
    if name in BOOL_COLUMNS:
        return text in {"t", "true", "True"}
    if name in INT_COLUMNS and text.isdigit():
        return int(text)
    return text


def _read_flows(rows: list[frames.Row], source_user: str, user_id: str) -> list[_Flow]:
    existing = {item.source: int(item.id) for item in flow_store.of_user(user_id) if item.source}
    flows = []
    for row in rows:
        source_id = str(row.get("id") or "")
        uuid = row.get("uuid") or None
        source = f"{source_user}/{uuid or source_id}"
        flow = _Flow(source_id, uuid, row.get("name") or f"flow {source_id}", {}, source)
        flow.existing = existing.get(source)
        try:
            flow.row = {name: _cell(name, text) for name, text in row.items()}
        except ValueError as error:
            flow.problem = str(error)
        flows.append(flow)
    return flows


def _document(flow: _Flow) -> dict[str, Any]:
    """The flow row as a `POST /flow` body: this service's fields and upstream's kept ones."""
    row = flow.row
    network = row.get("current_network") or {}
    if isinstance(network, dict) and network.get("cluster") not in CLUSTERS:
        network = {**network, "cluster": "devnet"}
    body = {
        "name": str(row.get("name") or flow.name)[:200],
        "nodes": row.get("nodes") or [],
        "edges": row.get("edges") or [],
        "is_public": bool(row.get("is_public")),
        "start_shared": bool(row.get("start_shared")),
        "start_unverified": bool(row.get("start_unverified")),
        "environment": row.get("environment") or {},
    }
    if network:
        body["current_network"] = network
    for name, value in row.items():
        if name in UPSTREAM_COLUMNS and name not in SERVICE_COLUMNS and value is not None:
            body[name] = value
    return body


def _config_ref(config: Mapping[str, Any], key: str) -> str | None:
    raw = config.get(key)
    if isinstance(raw, dict) and len(raw) == 1:
        raw = next(iter(raw.values()))
    return str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else None


def _rewrite(
    flow: _Flow, flow_ids: Mapping[str, int | None], wallet_ids: Mapping[str, str]
) -> None:
    """Point the flow's nested-flow and wallet nodes at this service's ids."""
    for node in _nodes_of(flow):
        data = node.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            continue
        command, config = command_of(node), data["config"]
        if command in {"interflow", "interflow_instructions"}:
            target = _config_ref(config, "flow_id")
            new_id = flow_ids.get(target) if target is not None else None
            if new_id is None:
                raise LookupError(
                    f"node {node.get('id')!r} calls flow {target}, which was not imported"
                )
            config["flow_id"] = {"S": str(new_id)}
        elif command == "wallet" and "wallet_id" in config:
            wallet = _config_ref(config, "wallet_id")
            if wallet is None or wallet not in wallet_ids:
                raise LookupError(
                    f"node {node.get('id')!r} uses wallet {wallet}, which was not imported"
                )
            config["wallet_id"] = {"S": wallet_ids[wallet]}


def _missing_commands(flow: _Flow) -> list[str]:
    from flowdeploy.engine.command import NODE_TYPES, REGISTRIES, SPACE_OPERATOR
    from flowdeploy.engine.documents import document_format

    try:
        document_format(flow.row)
    except ApiError:
        return []
    known = REGISTRIES[SPACE_OPERATOR] if document_format(flow.row) == SPACE_OPERATOR else None
    found = []
    for node in _nodes_of(flow):
        if node.get("type") == "mock" or node.get("type") in NODE_TYPES:
            continue  # an editor placeholder, or a node its type runs (deno)
        name = command_of(node)
        if name and known is not None and name not in known:
            found.append(name)
    return sorted(set(found))


def _nodes_of(flow: _Flow) -> list[dict[str, Any]]:
    nodes = flow.row.get("nodes")
    return [node for node in nodes if isinstance(node, dict)] if isinstance(nodes, list) else []


def _calls(flow: _Flow) -> set[str]:
    refs = set()
    for node in _nodes_of(flow):
        if command_of(node) in {"interflow", "interflow_instructions"}:
            config = node["data"].get("config")
            ref = _config_ref(config, "flow_id") if isinstance(config, dict) else None
            if ref is not None:
                refs.add(ref)
    return refs


def import_flows(
    user_id: str,
    rows: list[frames.Row],
    source_user: str,
    wallet_ids: Mapping[str, str],
    report: dict[str, Any],
) -> None:
    """Import the export's flow rows into `user_id`'s account, adding to `report` each
    flow's fate and the commands that kept flows out (`missing_commands`)."""
    flows = _read_flows(rows, source_user, user_id)
    by_ref: dict[str, _Flow] = {}
    for flow in flows:
        by_ref[flow.source_id] = flow
        if flow.uuid:
            by_ref[flow.uuid] = flow
        if flow.problem is None:
            flow.callees = _calls(flow)
    _check_commands(flows, report["missing_commands"])
    _skip_callers_of_skipped(flows, by_ref)
    # Ids first (nested flows refer to each other), then rewrite, check and store.
    for flow in flows:
        if flow.problem is None:
            flow.flow_id = flow.existing or flow_store.next_flow_id()
    ids = {ref: flow.flow_id for ref, flow in by_ref.items() if flow.flow_id is not None}
    documents = {}
    for flow in flows:
        if flow.problem is None:
            document = _checked_document(flow, ids, wallet_ids)
            if document is not None:
                documents[flow.source_id] = document
    # A flow whose callee failed its checks cannot run either.
    _skip_callers_of_skipped(flows, by_ref)
    for flow in flows:
        entry: dict[str, Any] = {"source_id": flow.source_id, "source_uuid": flow.uuid}
        entry["name"] = flow.name
        report["flows"].append(entry)
        if flow.problem is not None:
            entry.update(status="skipped", reason=flow.problem)
            continue
        entry.update(flow_id=flow.flow_id, status=_store(user_id, flow, documents[flow.source_id]))


def _check_commands(flows: list[_Flow], missing: dict[str, list[str]]) -> None:
    from flowdeploy.engine.graph import is_script_node

    for flow in flows:
        if flow.problem is not None:
            continue
        flow.missing = _missing_commands(flow)
        if flow.missing:
            scripts = [name for name in flow.missing if is_script_node(name)]
            kind = "script runtimes not supported here" if scripts else "not available here"
            flow.problem = f"uses command(s) {', '.join(flow.missing)} ({kind})"
            for name in flow.missing:
                missing.setdefault(name, []).append(flow.name)


def _skip_callers_of_skipped(flows: list[_Flow], by_ref: Mapping[str, _Flow]) -> None:
    """A flow that calls a skipped flow (or one the export lacks) is skipped, until no
    more change."""
    changed = True
    while changed:
        changed = False
        for flow in flows:
            if flow.problem is None:
                flow.problem = _callee_problem(flow, by_ref)
                changed = changed or flow.problem is not None


def _callee_problem(flow: _Flow, by_ref: Mapping[str, _Flow]) -> str | None:
    for ref in sorted(flow.callees):
        callee = by_ref.get(ref)
        if callee is None:
            return f"calls flow {ref}, which is not in the export"
        if callee.problem is not None and callee is not flow:
            return f"calls flow {callee.name!r} ({ref}), which was skipped"
    return None


def _checked_document(
    flow: _Flow, ids: Mapping[str, int | None], wallet_ids: Mapping[str, str]
) -> dict[str, Any] | None:
    """The flow as it will be stored, after the checks `POST /flow` makes; None (with the
    flow's problem set) when it does not pass them."""
    from pydantic import ValidationError

    from flowdeploy.engine import FlowGraph
    from flowdeploy.errors import describe

    try:
        _rewrite(flow, ids, wallet_ids)
        document = FlowBody.model_validate(_document(flow)).document()
        FlowGraph.build(document)
    except LookupError as error:
        flow.problem = str(error)
    except ValidationError as error:
        flow.problem = describe(error)
    except ApiError as error:
        flow.problem = error.message
    else:
        return document
    return None


def _store(user_id: str, flow: _Flow, document: dict[str, Any]) -> str:
    assert flow.flow_id is not None
    try:
        if flow.existing is None:
            flow_store.create(user_id, document, flow_id=flow.flow_id, source=flow.source)
            return "imported"
        current = flow_store.get(flow.existing)
        if current is not None and _same(flow_store.flow_row(current), document):
            return "unchanged"
        flow_store.replace(flow.existing, user_id, document)
        return "updated"
    except PayloadTooLarge as error:
        raise BadRequest(f"flow {flow.name!r}: {error.message}") from None


def _same(row: dict[str, Any], document: dict[str, Any]) -> bool:
    stored = {key: row.get(key) for key in ("name", "nodes", "edges", "environment")}
    sent = {key: document.get(key) for key in stored}
    return stored == sent and {k: row.get(k) for k in document.get("extra", {})} == document.get(
        "extra", {}
    )
