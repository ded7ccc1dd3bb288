"""Everything known when a flow is saved is checked then, with the rule the command applies
at run time: literal config values, edge types, required inputs. And a missing flow input
says so when it reaches a node."""

from __future__ import annotations

from typing import Any

import pytest

from flowdeploy.engine import FlowGraph, FlowInvalid
from tests.unit.engine.flows import edge, flow, node, run

MEMO = "x" * 5000


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        # issue 16 item 9
        (node("w", "wait", seconds=1e9), "node 'w' (wait): input 'seconds': must be 0 to 270"),
        (node("w", "wait", seconds=-1), "node 'w' (wait): input 'seconds': must be 0 to 270"),
        (node("w", "wait", seconds=901), "node 'w' (wait): input 'seconds': must be 0 to 270"),
        (
            node("w", "wait", seconds="NaN"),
            "node 'w' (wait): input 'seconds': expected a number, got {\"S\":\"NaN\"}",
        ),
        (
            node("w", "wait", seconds=271),
            "node 'w' (wait): input 'seconds': must be 0 to 270 seconds (the run's deadline), "
            "got 271",
        ),
        (
            node("h", "http_request", url="https://example.com", method="FOO"),
            "node 'h' (http_request): input 'method': use one of GET, POST",
        ),
        (
            node("h", "http_request", url="https://example.com", timeout=1e6),
            "node 'h' (http_request): input 'timeout': must be above 0 and at most 120",
        ),
        (
            node("h", "http_request", url="ftp://example.com/x"),
            "node 'h' (http_request): input 'url': must be an http:// or https:// URL",
        ),
        (
            node("l", "log", message="hi", level="bogus"),
            "node 'l' (log): input 'level': use one of debug, info, warn, error, got 'bogus'",
        ),
        (
            node("m", "memo", signer="11111111111111111111111111111111", memo=MEMO),
            "node 'm' (memo): input 'memo': must be 1 to 1000 bytes, got 5000",
        ),
        # issue 15: a config of the wrong type, a foreach without its list
        (node("i", "flow_input", label=5), "node 'i' (flow_input): config 'label': expected a"),
        (node("f", "foreach"), "node 'f' (foreach): input 'array' needs an edge or a config"),
        (
            node("a", "api_input", timeout=0),
            "node 'a' (api_input): input 'timeout': must be above 0",
        ),
        (
            node("k", "kv_create_store", store=""),
            "node 'k' (kv_create_store): input 'store': a store name is 1 to 256 bytes",
        ),
        (
            node("j", "json_extract", json_input={}, field_path="/a~2"),
            "node 'j' (json_extract): input 'field_path': invalid path",
        ),
    ],
)
def test_a_literal_the_command_would_refuse_is_a_400_when_saved(
    literal: dict[str, Any], message: str
) -> None:
    with pytest.raises(FlowInvalid) as refused:
        FlowGraph.build(flow(literal))
    assert refused.value.message.startswith(message), refused.value.message


def test_the_same_value_arriving_at_run_time_fails_the_node_with_the_same_words() -> None:
    outcome = run(
        flow(
            node("s", "flow_input", label="s"),
            node("w", "wait"),
            edges=[edge("s", "w", into="seconds")],
        ),
        {"s": {"U": "901"}},
    )
    assert outcome.error == (
        "node 'w' (wait) failed: input 'seconds': must be 0 to 270 seconds (the run's "
        "deadline), got 901"
    )


def test_an_edge_between_incompatible_port_types_is_refused() -> None:
    document = flow(
        node("c", "compare", a=1, b=2),
        node("s", "add", b=1),
        edges=[edge("c", "s", "result", "a")],
    )
    with pytest.raises(FlowInvalid) as refused:
        FlowGraph.build(document)
    assert refused.value.message == (
        "edge 0 (c.result -> s.a): node 'c' (compare) output 'result' gives bool, but "
        "node 's' (add) input 'a' takes decimal"
    )


def test_compatible_edges_of_upstreams_real_flows_are_accepted() -> None:
    # text into a number, a keypair where a public key goes, free values anywhere
    FlowGraph.build(
        flow(
            node("t", "to_string", stringify=1),
            node("s", "add", b=1),
            node("k", "generate_keypair"),
            node("b", "get_balance"),
            edges=[edge("t", "s", "result", "a"), edge("k", "b", "keypair", "pubkey")],
        )
    )


def test_a_missing_flow_input_says_which_input_was_not_given() -> None:
    outcome = run(
        flow(
            node("a", "flow_input", label="a"),
            node("s", "add", b=1),
            node("out", "flow_output", label="sum"),
            edges=[edge("a", "s", into="a"), edge("s", "out", "result")],
        )
    )
    assert outcome.error == "node 's' (add) failed: input 'a': flow input 'a' was not given"


def test_a_missing_flow_input_is_still_null_where_null_is_fine() -> None:
    outcome = run(
        flow(
            node("a", "flow_input", label="a"),
            node("out", "flow_output", label="a"),
            edges=[edge("a", "out")],
        )
    )
    assert (outcome.status, outcome.outputs) == ("succeeded", {"a": {"N": 0}})
