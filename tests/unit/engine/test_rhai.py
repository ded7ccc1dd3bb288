"""Rhai scripts: a conformance table of expressions with the values Rhai gives them, the
errors it raises, each sandbox limit once, and what is refused when a flow is saved."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowdeploy.engine import FlowGraph, FlowInvalid, rhai
from flowdeploy.values import IValue, decode_map, encode_map
from tests.unit.engine.flows import edge, flow, node, run


def evaluate(source: str, limits: rhai.Limits = rhai.LIMITS, **inputs: Any) -> dict[str, Any]:
    program = rhai.compile_source(source)
    values: dict[str, IValue | None] = dict(decode_map(inputs, "inputs"))
    return encode_map(rhai.run(program, values, ["u"], limits=limits))


def failure(source: str, limits: rhai.Limits = rhai.LIMITS, **inputs: Any) -> str:
    with pytest.raises(rhai.RhaiError) as raised:
        evaluate(source, limits, **inputs)
    return str(raised.value)


CONFORMANCE = [
    # integers: i64, checked
    ("40 + 2", {}, {"I": "42"}),
    ("7 / 2", {}, {"I": "3"}),
    ("-7 / 2", {}, {"I": "-3"}),
    ("-7 % 3", {}, {"I": "-1"}),
    ("2 ** 10", {}, {"I": "1024"}),
    ("1 << 3 | 6 & 3 ^ 1", {}, {"I": "11"}),
    ("-8 >> 1", {}, {"I": "-4"}),
    ("0xff + 0b11 + 0o7 + 1_000", {}, {"I": "1265"}),
    # floats (compared within Rhai's relative epsilon)
    ("1.5 + 1", {}, {"F": "2.5"}),
    ("1 / 2.0", {}, {"F": "0.5"}),
    ("0.1 + 0.2 == 0.3", {}, {"B": True}),
    ("2.5.floor()", {}, {"F": "2.0"}),
    ("to_int(-3.9)", {}, {"I": "-3"}),
    # decimals, and how upstream's numbers arrive: U as a decimal, I as an integer
    ('Decimal("0.1") + Decimal("0.2")', {}, {"D": "0.3"}),
    ("Decimal(1) / 3", {}, {"D": "0.3333333333333333333333333333"}),
    ("Decimal(0.001)", {}, {"D": "0.001"}),
    ("a + 1", {"a": {"U": "41"}}, {"D": "42"}),
    ("a / 2", {"a": {"U": "5"}}, {"D": "2.5"}),
    ("a * 2", {"a": {"I": "21"}}, {"I": "42"}),
    ("a % 2 == 0", {"a": {"D": "54"}}, {"B": True}),
    ("Decimal(10) == 10", {}, {"B": True}),
    ("type_of(a)", {"a": {"U": "1"}}, {"S": "decimal"}),
    ("type_of(a)", {"a": {"U1": "1"}}, {"S": "u128"}),
    ("type_of(a)", {"a": {"B3": "11111111111111111111111111111111"}}, {"S": "string"}),
    ("type_of(a)", {"a": {"BY": "AQI="}}, {"S": "blob"}),
    ("a + a", {"a": {"U1": "1"}}, {"U1": "2"}),
    # unit: `()` is no value
    ("()", {}, {}),
    ("type_of(a)", {"a": {"N": 0}}, {"S": "()"}),
    ("let x = (); x == ()", {}, {"B": True}),
    ("a ?? 5", {"a": {"N": 0}}, {"I": "5"}),
    ("[a, b].find(|x| x != ())", {"a": {"N": 0}, "b": {"I": "5"}}, {"I": "5"}),
    # == across types: never equal, never ordered
    ('1 == "1"', {}, {"B": False}),
    ('1 != "1"', {}, {"B": True}),
    ("() == 0", {}, {"B": False}),
    ('"a" < 1', {}, {"B": False}),
    ("1 == 1.0", {}, {"B": True}),
    # strings
    ('"a" + 1 + ()', {}, {"S": "a1"}),
    ('1 + "a"', {}, {"S": "1a"}),
    ('"abc".len() + "abc".len', {}, {"I": "6"}),
    ('"Hello".to_upper()', {}, {"S": "HELLO"}),
    ('let s = "  x "; s.trim(); s', {}, {"S": "x"}),
    ('let s = "hello world"; s.replace("world", "rhai"); s', {}, {"S": "hello rhai"}),
    ('"a,b".split(",")', {}, {"A": [{"S": "a"}, {"S": "b"}]}),
    ("`${a}-${1 + 1}`", {"a": {"S": "x"}}, {"S": "x-2"}),
    ('"abc"[1]', {}, {"S": "b"}),
    ('"hello".sub_string(1, 3) + "hello".index_of("l")', {}, {"S": "ell2"}),
    ('"ab" in "cabd"', {}, {"B": True}),
    ('to_string(2.0) + to_string(Decimal("1.50"))', {}, {"S": "2.01.50"}),
    ('parse_int("ff", 16) + parse_int("1")', {}, {"I": "256"}),
    ('parse_float("2.5")', {}, {"F": "2.5"}),
    # arrays: value semantics, methods with closures
    ("[1, 2, 3].map(|x| x * 2)", {}, {"A": [{"I": "2"}, {"I": "4"}, {"I": "6"}]}),
    ("[1, 2, 3, 4].filter(|x| x > 2).len()", {}, {"I": "2"}),
    ("[1, 2, 3].reduce(|s, x| s + x, 0)", {}, {"I": "6"}),
    ("let a = [3, 1, 2]; a.sort(); a[0] * 100 + a[-1]", {}, {"I": "103"}),
    ("let a = [1]; a.push(2); a += 3; a.len()", {}, {"I": "3"}),
    ("let a = [1, 2]; let b = a; b.push(3); a.len()", {}, {"I": "2"}),
    ("([1, 2] + [3]).len() + [1, 2].index_of(2)", {}, {"I": "4"}),
    ("2 in [1, 2, 3] && [1, 2] == [1, 2]", {}, {"B": True}),
    ("[10, 20, 30].find(|x| x > 15)", {}, {"I": "20"}),
    # object maps
    ('#{a: 1, "b c": "x"}', {}, {"M": {"a": {"I": "1"}, "b c": {"S": "x"}}}),
    ("let m = #{a: 1}; m.b = 2; m.keys()", {}, {"A": [{"S": "a"}, {"S": "b"}]}),
    ("#{a: 1}.b", {}, {}),
    ("let m = #{a: #{b: 1}}; m.a.b += 1; m.a.b", {}, {"I": "2"}),
    ('"a" in #{a: 1} && #{a: 1}.contains("a")', {}, {"B": True}),
    # blocks, if and switch are expressions
    ('if a > 1 { "big" } else { "small" }', {"a": {"I": "5"}}, {"S": "big"}),
    ("let x = if false { 1 } else { 2 }; x", {}, {"I": "2"}),
    ("{ let y = 2; y * 3 }", {}, {"I": "6"}),
    ("let x = 1; { let x = 2; } x", {}, {"I": "1"}),
    ('switch 2 { 1 => "a", 2 | 3 => "b", _ => "c" }', {}, {"S": "b"}),
    ("switch 42 { 0..10 => 1, 40..=50 => 2, _ => 3 }", {}, {"I": "2"}),
    ('switch "x" { "x" if false => 1, "x" => 2 }', {}, {"I": "2"}),
    ('switch 1.0 { 1 => "int", _ => "other" }', {}, {"S": "other"}),
    # loops
    ("let s = 0; for x in [1, 2, 3] { s += x; } s", {}, {"I": "6"}),
    ("let s = 0; for (x, i) in [5, 6] { s += i; } s", {}, {"I": "1"}),
    ("let s = 0; for i in 0..10 { if i % 2 == 0 { continue; } s += i; } s", {}, {"I": "25"}),
    ("let i = 0; while i < 5 { i += 1; } i", {}, {"I": "5"}),
    ("let x = loop { break 7; }; x", {}, {"I": "7"}),
    ("let i = 0; do { i += 2; } while i < 5; i", {}, {"I": "6"}),
    # functions and closures
    ("fn add(x, y) { x + y } add(1, 2)", {}, {"I": "3"}),
    ("fn fib(n) { if n < 2 { return n; } fib(n - 1) + fib(n - 2) } fib(15)", {}, {"I": "610"}),
    ("let k = 10; let f = |x| x + k; f.call(5) + f(1)", {}, {"I": "26"}),
    ("let c = 0; let inc = || { c += 1; }; inc.call(); inc.call(); c", {}, {"I": "2"}),
    ('fn add(x, y) { x + y } Fn("add").call(1, 2)', {}, {"I": "3"}),
    ("try { throw 41; } catch (e) { e + 1 }", {}, {"I": "42"}),
    ('try { 1 / 0 } catch { "caught" }', {}, {"S": "caught"}),
    # upstream's additions
    ('json_decode("{\\"x\\": 10}").x + 5', {}, {"I": "15"}),
    ("json_encode(#{a: [1, true]})", {}, {"S": '{"a":[1,true]}'}),
    ('hex_encode(blob(2, 255)) + sha256("").sub_string(0, 4)', {}, {"S": "ffffe3b0"}),
    ("base58_encode(base58_decode(a))", {"a": {"S": "3mJr7AoUXx2Wqd"}}, {"S": "3mJr7AoUXx2Wqd"}),
]


@pytest.mark.parametrize(("source", "inputs", "expected"), CONFORMANCE)
def test_rhai_conformance(source: str, inputs: dict[str, Any], expected: dict[str, Any]) -> None:
    assert evaluate(source, **inputs) == ({"u": expected} if expected else {})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("9223372036854775807 + 1", "line 1: Addition overflow: 9223372036854775807 + 1"),
        ("-9223372036854775807 - 2", "Subtraction overflow"),
        ("2 ** 63", "Exponential overflow: 2 ** 63"),
        ("1 / 0", "Division by zero: 1 / 0"),
        ('Decimal("79228162514264337593543950335") + 1', "Addition overflow"),
        ("Decimal(1) == 1.0", "function not found: == (decimal, f64)"),
        ("1 + true", "function not found: + (i64, bool)"),
        ("foo(1)", "function not found: foo (i64)"),
        ("let x = 1;\ny", "line 2: variable not found: y"),
        ("const X = 1; X = 2;", "cannot assign to constant X"),
        ("[1, 2][5]", "index 5 out of bounds: length 2"),
        ('parse_int("x")', "Error parsing integer number 'x'"),
        ('throw "boom"', "runtime error: boom"),
        ("if 1 { 2 }", "an if condition must be a bool, got i64"),
    ],
)
def test_rhai_errors(source: str, message: str) -> None:
    assert message in failure(source)


@pytest.mark.parametrize(
    ("source", "limits", "message"),
    [
        ("loop {}", rhai.Limits(), "the script went past its limit of 1,000,000 operations"),
        ("loop {}", rhai.Limits(steps=10**9, seconds=0.2), "past its time limit of 0.2 s"),
        (
            "let a = [0]; loop { a.push(a); }",
            rhai.Limits(steps=50_000),
            "the script went past its limit of 50,000 operations",
        ),
        ("fn f(n) { f(n + 1) } f(0)", rhai.Limits(), "nest deeper than the limit of 64"),
        (
            'let s = "x"; loop { s += s; }',
            rhai.Limits(),
            "a string of 1,048,576 characters is over the limit of 1,000,000",
        ),
        (
            "let a = []; loop { a.push([1, 2, 3]); }",
            rhai.Limits(collection_items=1_000),
            "an array of 1,001 items is over the limit of 1,000",
        ),
        (
            " ".join(f"let v{i} = 0;" for i in range(1001)),
            rhai.Limits(),
            "over 1000 variables in one block",
        ),
    ],
)
def test_each_sandbox_limit_is_a_node_error_that_names_it(
    source: str, limits: rhai.Limits, message: str
) -> None:
    started = time.monotonic()
    assert message in failure(source, limits)
    assert time.monotonic() - started < 20


def rhai_flow(source: str, command: str = "rhai_script_1x1") -> dict[str, Any]:
    return flow(
        node("in", "flow_input", label="a"),
        node("s", command, source=source),
        node("out", "flow_output", label="u"),
        edges=[edge("in", "s", into="a"), edge("s", "out", "u")],
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('import "m" as m; a', "not supported: import (modules)"),
        ('eval("1")', "not supported: eval()"),
        ("this.x", "not supported: `this` (methods on script functions)"),
        ("m::f(1)", "not supported: modules (m::f)"),
        ("let = 1", "syntax error at line 1, column 5: unexpected '='"),
        ("if a { fn f() {} }", "functions can only be defined at the top of a script"),
        ("[" * 200 + "]" * 200, "the script nests deeper than 128 levels"),
        ("switch a { [1] => 1 }", "not supported: arrays and object maps as switch cases"),
    ],
)
def test_what_cannot_run_is_refused_when_the_flow_is_saved(source: str, message: str) -> None:
    with pytest.raises(FlowInvalid) as refused:
        FlowGraph.build(rhai_flow(source))
    assert refused.value.message == f"node 's' (rhai_script_1x1): config 'source': {message}"


def test_a_script_node_runs_in_a_flow_and_its_unit_result_is_no_output() -> None:
    ran = run(rhai_flow("if a > 0 { a * 2 } else { () }"), {"a": {"I": "21"}})
    assert (ran.status, ran.outputs) == ("succeeded", {"u": {"I": "42"}})
    skipped = run(rhai_flow("if a > 0 { a * 2 } else { () }"), {"a": {"I": "-1"}})
    assert (skipped.status, skipped.outputs) == ("succeeded", {})
    assert skipped.memory.status("out") == "skipped"


def test_outputs_are_the_variables_of_their_names() -> None:
    document = flow(
        node("s", "rhai_script_0x2", source="let u = 1; let v = (); 99"),
        node("ou", "flow_output", label="u"),
        node("ov", "flow_output", label="v"),
        edges=[edge("s", "ou", "u"), edge("s", "ov", "v")],
    )
    ran = run(document)
    assert (ran.status, ran.outputs) == ("succeeded", {"u": {"I": "1"}})


def test_a_failing_script_fails_its_node_with_the_line() -> None:
    ran = run(rhai_flow("let x = a;\nx + true"), {"a": {"I": "1"}})
    assert ran.status == "failed"
    assert ran.error == (
        "node 's' (rhai_script_1x1) failed: line 2: function not found: + (i64, bool)"
    )


def test_a_busy_script_does_not_stall_the_other_nodes() -> None:
    document = flow(
        node("busy", "rhai_script_0x1", source="let i = 0; while i < 200000 { i += 1; } i"),
        node("w", "wait", seconds=0.05),
        node("out", "flow_output", label="done"),
        node("count", "flow_output", label="count"),
        edges=[edge("w", "out", "value"), edge("busy", "count", "u")],
    )
    ran = run(document)
    assert ran.status == "succeeded", ran.error
    finished = {record.node_id: record.finished_at for record in ran.memory.nodes}
    assert finished["out"] < finished["count"], "the wait finished while the script ran"


def test_print_goes_to_the_run_log() -> None:
    ran = run(rhai_flow("print(`a is ${a}`); a"), {"a": {"S": "x"}})
    assert [line.content for line in ran.memory.logs] == ["a is x"]


def test_the_engine_loads_no_script_runtime_until_a_flow_has_a_script_node() -> None:
    import subprocess
    import sys

    code = (
        "import sys, flowdeploy.engine; "
        "print([m for m in ('lark', 'flowdeploy.engine.rhai', 'flowdeploy.engine.deno') "
        "if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
