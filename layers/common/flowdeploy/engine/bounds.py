"""What one run of a deployment does, known when it is deployed: how deep its nested flows
go and how many nodes it runs.

Both come from the calls between the deployment's flows (`interflow` and
`interflow_instructions` nodes), counting each node once, as if every node ran (which branch a
run takes is not known here), and each nested flow each time it is called. Flows that reach
each other again (recursion: upstream's Collatz calls itself) are allowed; how often they
recurse, like how often a loop turns, is known only as the run goes, where the same limits
bound it (`scheduler`). So a recursive call counts nothing here, and the way through a
recursion counts its shortest path.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from flowdeploy.engine.graph import FlowGraph, FlowInvalid, calls

# How many flows of a chain a message shows (the first and last three around a count).
SHOWN_CHAIN = 7
SHOWN_FLOWS = 8  # flows of the heaviest chain in a node-run message
SHOWN_CALLS = 3  # called flows per flow in it


def count_text(count: int) -> str:
    """`21,110`; past a quadrillion (calls multiply at each level), `over 10^20`."""
    if count < 10**15:
        return f"{count:,}"
    return f"over 10^{int((count.bit_length() - 1) * 0.30103)}"  # log10(2): no huge floats


def chain_text(chain: tuple[int | None, ...] | list[int]) -> str:
    """`flow 1 -> flow 2 -> ...`, the middle of a long chain left out."""
    names = [f"flow {flow_id}" for flow_id in chain]
    if len(names) > SHOWN_CHAIN:
        names = [*names[:3], f"... ({len(names) - 6} more)", *names[-3:]]
    return " -> ".join(names)


@dataclass(slots=True)
class _Flow:
    nodes: int
    calls: Counter[int]  # called flow -> how many nodes call it
    component: int = -1  # its strongly connected component (flows that reach each other)
    node_runs: int = 0
    depth: int = 0
    # The deepest way down from here: the flows to pass inside its component, then the flow
    # called out of it (None: nothing is called out of it).
    way_down: list[int] = field(default_factory=list)
    called_out: int | None = None


def check_bounds(
    graphs: Mapping[int, FlowGraph], entry: int, *, max_depth: int, max_node_runs: int
) -> None:
    """FlowInvalid (a 400) if every run of `entry` would nest flows deeper than `max_depth`
    levels, or run more than `max_node_runs` nodes, naming the limit and the flows."""
    flows = _reachable(graphs, entry)
    for component in _components(flows, entry):
        _measure(flows, component)
    top = flows[entry]
    if top.depth > max_depth:
        raise FlowInvalid(
            f"nested flows go {top.depth} levels deep, deeper than the nesting limit of "
            f"{max_depth} levels (FLOW_MAX_NESTING): {chain_text(_deepest_chain(flows, entry))}"
        )
    if top.node_runs > max_node_runs:
        raise FlowInvalid(
            f"flow {entry} runs {count_text(top.node_runs)} nodes, more than the limit of "
            f"{max_node_runs:,} node runs per run (FLOW_MAX_NODE_RUNS; a nested flow counts "
            f"each time it is called): {_heaviest(flows, entry)}"
        )


def _reachable(graphs: Mapping[int, FlowGraph], entry: int) -> dict[int, _Flow]:
    flows: dict[int, _Flow] = {}
    pending = [entry]
    while pending:
        flow_id = pending.pop()
        if flow_id in flows:
            continue
        graph = graphs[flow_id]  # build_flow_set checked that every called flow is there
        called = Counter(target for _, target in calls(graph))
        flows[flow_id] = _Flow(len(graph.nodes), called)
        pending.extend(called)
    return flows


def _components(flows: dict[int, _Flow], entry: int) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively (chains may be thousands deep):
    each component comes after every component it calls."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[int]] = []
    work = [(entry, iter(flows[entry].calls))]
    index[entry] = low[entry] = 0
    stack.append(entry)
    on_stack.add(entry)
    while work:
        flow_id, targets = work[-1]
        for target in targets:
            if target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(flows[target].calls)))
                break
            if target in on_stack:
                low[flow_id] = min(low[flow_id], index[target])
        else:
            work.pop()
            if work:
                caller = work[-1][0]
                low[caller] = min(low[caller], low[flow_id])
            if low[flow_id] == index[flow_id]:
                component: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    flows[member].component = len(found)
                    component.append(member)
                    if member == flow_id:
                        break
                found.append(component)
    return found


def _measure(flows: dict[int, _Flow], component: list[int]) -> None:
    """Node runs and depth of each flow of `component`, whose callees are measured."""
    number = flows[component[0]].component
    # Out of the component: the deepest call from each member.
    out: dict[int, tuple[int, int | None]] = {}
    for member in component:
        flow = flows[member]
        runs, deepest, called_out = flow.nodes, 0, None
        for target, times in flow.calls.items():
            callee = flows[target]
            if callee.component == number:
                continue  # recursion: counted as the run goes
            runs += times * callee.node_runs
            if called_out is None or callee.depth + 1 > deepest:
                deepest, called_out = callee.depth + 1, target
        flow.node_runs = runs
        out[member] = (deepest, called_out)
    for member in component:
        flow = flows[member]
        if len(component) == 1:
            flow.depth, flow.called_out = out[member]
            flow.way_down = [member]
            continue
        # Through a recursion, the shortest way to each member that calls out of it.
        paths = _shortest_paths(flows, member, number)
        exit_from = max(paths, key=lambda other: len(paths[other]) - 1 + out[other][0])
        flow.way_down = paths[exit_from]
        flow.depth = len(flow.way_down) - 1 + out[exit_from][0]
        flow.called_out = out[exit_from][1]


def _shortest_paths(flows: dict[int, _Flow], start: int, component: int) -> dict[int, list[int]]:
    paths = {start: [start]}
    pending = deque([start])
    while pending:
        flow_id = pending.popleft()
        for target in flows[flow_id].calls:
            if target not in paths and flows[target].component == component:
                paths[target] = [*paths[flow_id], target]
                pending.append(target)
    return paths


def _deepest_chain(flows: dict[int, _Flow], entry: int) -> list[int]:
    chain: list[int] = []
    flow_id: int | None = entry
    while flow_id is not None:
        flow = flows[flow_id]
        chain += flow.way_down
        flow_id = flow.called_out
    return chain


def _heaviest(flows: dict[int, _Flow], entry: int) -> str:
    """Each flow's count along the heaviest calls from `entry`: `flow 1 = 10 nodes + 10 calls
    of flow 2 (2,110 each); flow 2 = ...`."""
    parts: list[str] = []
    flow_id: int | None = entry
    seen: set[int] = set()
    while flow_id is not None and flow_id not in seen and len(parts) < SHOWN_FLOWS:
        seen.add(flow_id)
        flow = flows[flow_id]
        callees = sorted(
            (
                (times * flows[target].node_runs, target, times)
                for target, times in flow.calls.items()
                if flows[target].component != flow.component
            ),
            key=lambda call: (-call[0], call[1]),
        )
        terms = [f"{flow.nodes:,} node{'s' if flow.nodes != 1 else ''}"]
        terms += [
            f"{times:,} call{'s' if times != 1 else ''} of flow {target} "
            f"({count_text(flows[target].node_runs)} each)"
            for _, target, times in callees[:SHOWN_CALLS]
        ]
        if len(callees) > SHOWN_CALLS:
            terms.append(f"{len(callees) - SHOWN_CALLS} more flows")
        parts.append(f"flow {flow_id} = {' + '.join(terms)}")
        flow_id = callees[0][1] if callees else None
    if flow_id is not None and flow_id not in seen:
        parts.append("...")
    return "; ".join(parts)
