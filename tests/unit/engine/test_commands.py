"""Each node command on its own, run through the engine with flow inputs and outputs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.engine.flows import edge, flow, node, one_node, run


def D(text: str) -> dict[str, str]:
    return {"D": text}


# -- flow_input, flow_output, const -------------------------------------------------------


def test_flow_input_passes_the_start_input_of_its_label() -> None:
    outcome = run(
        flow(
            node("in", "flow_input", label="amount"),
            node("out", "flow_output", label="got"),
            edges=[edge("in", "out")],
        ),
        {"amount": D("3.14"), "ignored": {"S": "x"}},
    )
    assert (outcome.status, outcome.outputs) == ("succeeded", {"got": D("3.14")})


@pytest.mark.parametrize(
    ("config", "expected"),
    [({}, {"N": 0}), ({"default": {"U": "7"}}, {"U": "7"}), ({"value": "text"}, {"S": "text"})],
)
def test_a_missing_flow_input_is_its_default_or_null(
    config: dict[str, Any], expected: dict[str, Any]
) -> None:
    outcome = run(
        flow(
            node("in", "flow_input", label="absent", **config),
            node("out", "flow_output", label="got"),
            edges=[edge("in", "out")],
        )
    )
    assert outcome.outputs == {"got": expected}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"D": "1.50"}, {"D": "1.50"}),
        (12, {"U": "12"}),
        (-3, {"I": "-3"}),
        (2.5, {"D": "2.5"}),
        ({"a": [1, "x"]}, {"M": {"a": {"A": [{"U": "1"}, {"S": "x"}]}}}),
    ],
)
def test_const_outputs_its_config_value_as_an_ivalue_or_plain_json(
    config: Any, expected: dict[str, Any]
) -> None:
    outcome = run(
        flow(
            node("c", "const", value=config),
            node("out", "flow_output", label="v"),
            edges=[edge("c", "out")],
        )
    )
    assert outcome.outputs == {"v": expected}


# -- arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "a", "b", "result"),
    [
        ("add", D("1.5"), D("2"), D("3.5")),
        ("add", {"U": "1"}, {"I": "-3"}, D("-2")),
        ("sub", D("0.3"), D("0.1"), D("0.2")),
        ("mul", D("1.50"), {"U": "2"}, D("3.00")),
        ("div", D("1"), D("4"), D("0.25")),
        ("div", D("1"), D("3"), D("0.3333333333333333333333333333")),
        ("add", {"S": "2.5"}, {"F": "0.5"}, D("3.0")),
    ],
)
def test_arithmetic_on_decimals(
    command: str, a: dict[str, Any], b: dict[str, Any], result: dict[str, Any]
) -> None:
    outcome = one_node(command, {"a": a, "b": b})
    assert (outcome.status, outcome.outputs) == ("succeeded", {"result": result})


def test_division_by_zero_is_a_node_error() -> None:
    outcome = one_node("div", {"a": D("1"), "b": D("0")})
    assert outcome.status == "failed"
    assert outcome.error == "node 'n' (div) failed: cannot compute 1 / 0: division by zero"


def test_a_non_number_is_a_node_error_naming_the_port() -> None:
    outcome = one_node("add", {"a": D("1"), "b": {"B": True}})
    assert outcome.error == "node 'n' (add) failed: input 'b': expected a number, got {\"B\":true}"


def test_a_result_out_of_decimal_range_is_a_node_error() -> None:
    big = D("79228162514264337593543950335")
    outcome = one_node("mul", {"a": big, "b": big})
    assert outcome.status == "failed"
    assert "out of range" in (outcome.error or "")


def test_arithmetic_inputs_can_come_from_config() -> None:
    outcome = run(
        flow(
            node("in", "flow_input", label="x"),
            node("n", "add", b={"D": "0.5"}),
            node("out", "flow_output", label="y"),
            edges=[edge("in", "n", into="a"), edge("n", "out", out="result")],
        ),
        {"x": D("1")},
    )
    assert outcome.outputs == {"y": D("1.5")}


# -- strings ---------------------------------------------------------------------------


def test_concat_joins_two_values_as_text() -> None:
    outcome = one_node("concat", {"a": {"S": "id-"}, "b": {"U": "42"}})
    assert outcome.outputs == {"result": {"S": "id-42"}}


def test_concat_with_a_separator() -> None:
    outcome = one_node("concat", {"a": {"S": "a"}, "b": {"S": "b"}, "separator": {"S": ", "}})
    assert outcome.outputs == {"result": {"S": "a, b"}}


def test_format_fills_named_placeholders() -> None:
    values = {"M": {"who": {"S": "Ada"}, "n": {"D": "3.50"}, "ok": {"B": True}}}
    template = {"S": "{who} paid {n} ({ok}) {{literal}}"}
    outcome = one_node("format", {"template": template, "values": values})
    assert outcome.outputs == {"result": {"S": "Ada paid 3.50 (true) {literal}"}}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{missing}", "no value named 'missing'"),
        ("{who.__class__}", "no value named 'who.__class__'"),
        ("{who!r}", "no value named 'who!r'"),
        ("open {", "unmatched '{'"),
    ],
)
def test_format_refuses_what_is_not_a_plain_name(template: str, message: str) -> None:
    outcome = one_node(
        "format", {"template": {"S": template}, "values": {"M": {"who": {"S": "x"}}}}
    )
    assert outcome.status == "failed"
    assert message in (outcome.error or "")


# -- JSON ------------------------------------------------------------------------------

DOC = {"M": {"a": {"A": [{"U": "1"}, {"M": {"b/c": {"S": "deep"}}}]}, "t~": {"B": False}}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/0", {"U": "1"}),
        ("a/1/b~1c", {"S": "deep"}),
        ("/t~0", {"B": False}),
        ("", DOC),
        ("/a/7", {"N": 0}),
        ("/a/01", {"N": 0}),
        ("/nope/x", {"N": 0}),
    ],
)
def test_json_get_follows_a_json_pointer(path: str, expected: dict[str, Any]) -> None:
    outcome = one_node("json_get", {"json": DOC, "path": {"S": path}})
    assert outcome.outputs == {"value": expected}


def test_json_get_parses_a_string_as_json_keeping_decimals() -> None:
    text = {"S": '{"price": 0.10, "n": [1, 2]}'}
    outcome = one_node("json_get", {"json": text, "path": {"S": "/price"}})
    assert outcome.outputs == {"value": {"D": "0.10"}}


def test_json_get_reports_invalid_json_text() -> None:
    outcome = one_node("json_get", {"json": {"S": "{nope"}, "path": {"S": "/a"}})
    assert "input 'json': not valid JSON" in (outcome.error or "")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/0", {"M": {"a": {"A": [{"S": "v"}]}}}),
        ("/a/-", {"M": {"a": {"A": [{"U": "1"}, {"S": "v"}]}}}),
        ("/new/deeper", {"M": {"a": {"A": [{"U": "1"}]}, "new": {"M": {"deeper": {"S": "v"}}}}}),
    ],
)
def test_json_set_puts_a_value_at_a_json_pointer(path: str, expected: dict[str, Any]) -> None:
    document = {"M": {"a": {"A": [{"U": "1"}]}}}
    outcome = one_node("json_set", {"json": document, "path": {"S": path}, "value": {"S": "v"}})
    assert outcome.outputs == {"json": expected}


def test_json_set_cannot_go_inside_a_scalar() -> None:
    document = {"M": {"a": {"U": "1"}}}
    outcome = one_node("json_set", {"json": document, "path": {"S": "/a/b"}, "value": {"N": 0}})
    assert outcome.status == "failed"
    assert "cannot go inside a U value" in (outcome.error or "")


# -- compare and branch ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "operator", "b", "result"),
    [
        ({"U": "2"}, "==", {"D": "2.0"}, True),
        ({"U": "2"}, "<", {"D": "2.5"}, True),
        ({"I": "-1"}, ">=", {"U": "0"}, False),
        ({"S": "abc"}, "<", {"S": "abd"}, True),
        ({"B": True}, "!=", {"B": False}, True),
        ({"S": "1"}, "==", {"U": "1"}, False),
    ],
)
def test_compare(a: dict[str, Any], operator: str, b: dict[str, Any], result: bool) -> None:
    outcome = one_node("compare", {"a": a, "b": b, "operator": {"S": operator}})
    assert outcome.outputs == {"result": {"B": result}}


def test_compare_cannot_order_unlike_values() -> None:
    outcome = one_node("compare", {"a": {"S": "x"}, "b": {"U": "1"}, "operator": {"S": "<"}})
    assert "cannot order S against U" in (outcome.error or "")


def test_branch_sends_the_value_to_the_taken_side_only() -> None:
    outcome = one_node("branch", {"condition": {"B": False}, "value": {"S": "v"}})
    assert outcome.status == "succeeded"
    assert outcome.outputs == {"false": {"S": "v"}}
    assert outcome.memory.status("out-true") == "skipped"


# -- wait and log --------------------------------------------------------------------------


def test_wait_passes_its_value_on() -> None:
    outcome = one_node("wait", {"seconds": {"D": "0.01"}, "value": {"S": "later"}})
    assert outcome.outputs == {"value": {"S": "later"}}


def test_wait_refuses_a_negative_time() -> None:
    outcome = one_node("wait", {"seconds": {"I": "-1"}})
    assert "input 'seconds': must be 0 to 270 seconds (the run's deadline), got -1" in (
        outcome.error or ""
    )


def test_log_writes_to_the_run_log() -> None:
    outcome = one_node("log", {"message": {"S": "hello"}, "level": {"S": "warn"}})
    assert outcome.outputs == {"message": {"S": "hello"}}
    [line] = outcome.memory.logs
    assert (line.level, line.node_id, line.content) == ("warn", "n", "hello")


def test_log_writes_non_strings_as_json() -> None:
    outcome = one_node("log", {"message": {"M": {"a": {"D": "1.5"}}}})
    assert [line.content for line in outcome.memory.logs] == ['{"a":1.5}']


# -- limits and edge numbers --------------------------------------------------------------


def test_a_value_that_keeps_doubling_is_stopped_before_it_exhausts_memory() -> None:
    nodes = [node("c0", "const", value="x")]
    edges = []
    for i in range(1, 30):
        out = "output" if i == 1 else "result"
        nodes.append(node(f"c{i}", "concat"))
        edges += [edge(f"c{i - 1}", f"c{i}", out, "a"), edge(f"c{i - 1}", f"c{i}", out, "b")]
    outcome = run(flow(*nodes, edges=edges))
    assert outcome.status == "failed"
    assert outcome.error == (
        "node 'c20' (concat) failed: the result is 1048576 characters; values stop at 1000000"
    )


def test_json_numbers_too_big_for_a_decimal_become_floats() -> None:
    text = '{"a": 1e30, "b": 123456789012345678901234567890123456789012}'
    outcome = one_node("json_get", {"json": {"S": text}, "path": {"S": ""}})
    assert outcome.outputs == {
        "value": {"M": {"a": {"F": "1e30"}, "b": {"F": "1.2345678901234568e41"}}}
    }


def test_an_overflowing_computation_is_a_node_error() -> None:
    outcome = one_node("mul", {"a": {"S": "1e999999"}, "b": {"S": "1e999999"}})
    assert outcome.error == (
        "node 'n' (mul) failed: cannot compute 1E+999999 * 1E+999999: the result overflows"
    )


def test_comparing_nan_is_a_node_error_naming_the_port() -> None:
    outcome = one_node("compare", {"a": {"F": "NaN"}, "b": {"U": "1"}})
    assert outcome.error == (
        "node 'n' (compare) failed: input 'a': expected a number, got {\"F\":\"NaN\"}"
    )
