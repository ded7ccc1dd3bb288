"""Specification of the IValue codec (flowdeploy.values) and of base58 (flowdeploy.base58)."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from typing import Any

import pytest

from flowdeploy import base58
from flowdeploy.values import (
    MAX_DEPTH,
    TAGS,
    IValue,
    IValueError,
    decode_map,
    encode_map,
)

PUBKEY = "5B1yr3JTyijfCfrsvHTgSkVEQWNMCE7w6f1WQkuBzAfK"
SIGNATURE = base58.encode(bytes(range(64)))

U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
U128_MAX = 2**128 - 1
I128_MIN, I128_MAX = -(2**127), 2**127 - 1


def nested_arrays(levels: int) -> dict[str, Any]:
    """An IValue document `levels` deep: A inside A ... around a single null."""
    doc: dict[str, Any] = {"N": 0}
    for _ in range(levels - 1):
        doc = {"A": [doc]}
    return doc


def decode_error(doc: object, path: str = "value") -> IValueError:
    with pytest.raises(IValueError) as caught:
        IValue.from_json(doc, path)
    return caught.value


# --- every tag, both directions ---------------------------------------------------------------

# (canonical document, Python payload from to_python)
CANONICAL: list[tuple[dict[str, Any], object]] = [
    ({"N": 0}, None),
    ({"S": "hello"}, "hello"),
    ({"B": True}, True),
    ({"U": "100"}, 100),
    ({"I": "-5"}, -5),
    ({"F": "1.5"}, 1.5),
    ({"D": "3.14"}, Decimal("3.14")),
    ({"U1": str(U128_MAX)}, U128_MAX),
    ({"I1": str(I128_MIN)}, I128_MIN),
    ({"B3": PUBKEY}, base58.decode(PUBKEY)),
    ({"B6": SIGNATURE}, bytes(range(64))),
    ({"BY": "aGVsbG8gd29ybGQ="}, b"hello world"),
    ({"A": [{"U": "1"}, {"S": "x"}]}, [1, "x"]),
    ({"M": {"b": {"B": False}, "a": {"N": 0}}}, {"b": False, "a": None}),
]


CANONICAL_IDS = [next(iter(doc)) for doc, _ in CANONICAL]


def test_the_table_covers_all_fourteen_tags() -> None:
    assert {next(iter(doc)) for doc, _ in CANONICAL} == TAGS
    assert len(TAGS) == 14


@pytest.mark.parametrize(("doc", "python"), CANONICAL, ids=CANONICAL_IDS)
def test_json_round_trip_is_exact(doc: dict[str, Any], python: object) -> None:
    assert IValue.from_json(doc).to_json() == doc


@pytest.mark.parametrize(("doc", "python"), CANONICAL, ids=CANONICAL_IDS)
def test_to_python_gives_the_plain_payload(doc: dict[str, Any], python: object) -> None:
    assert IValue.from_json(doc).to_python() == python


@pytest.mark.parametrize(("doc", "python"), CANONICAL, ids=CANONICAL_IDS)
def test_from_python_picks_the_tag_and_survives_json(doc: dict[str, Any], python: object) -> None:
    value = IValue.from_python(python)
    assert value.to_json() == doc
    assert IValue.from_json(json.loads(json.dumps(value.to_json()))).to_python() == python


def test_json_round_trip_survives_serialisation_as_text() -> None:
    doc = {"M": {"list": {"A": [{"D": "1.50"}, {"F": "1e16"}, {"U1": str(U128_MAX)}]}}}
    text = json.dumps(IValue.from_json(json.loads(json.dumps(doc))).to_json())
    assert json.loads(text) == doc


def test_map_keeps_insertion_order() -> None:
    doc = {"M": {"z": {"N": 0}, "a": {"N": 0}, "m": {"N": 0}}}
    assert list(IValue.from_json(doc).to_json()["M"]) == ["z", "a", "m"]


# --- upstream vectors (space-operator/flow-backend, lib/value) -------------------------------

UPSTREAM_JSON = [
    '{"N":0}',
    '{"S":"hello"}',
    '{"U":"0"}',
    '{"I":"-1"}',
    '{"U1":"340282366920938463463374607431768211455"}',
    '{"I1":"-170141183460469231731687303715884105728"}',
    '{"B":true}',
    '{"D":"3.1415926535897932384626433833"}',
    '{"M":{"foo":{"I":"1"}}}',
    '{"A":[{"I":"1"},{"S":"hello"}]}',
    '{"B3":"5sNRWMrT2P3KULzW3faaktCB3k2eqHow2GBJtcsCPcg7"}',
    '{"B3":"FMQUifdAHTytSxhiK4N7LmpvKRZaUmBnNnZmzFsdTPHB"}',
    '{"B6":"3PvNxykqBz1BzBaq2AMU4Sa3CPJGnSC9JXkyzXe33m6W7Sj4MMgsZet6YxUQdPx1fEFU79QWm6RpPRVJAyeqiNsR"}',
    '{"B6":"4onDpbfeT7nNN9MNMvTEZRn6pbtrQc1pdTBJB4a7HbfhAE6c5bkbuuFfYtkqs99hAqp5o6j7W1VyuKDxCn79k3Tk"}',
    '{"BY":"aGVsbG8gd29ybGQ="}',
    '{"BY":"UmFpbnk="}',
    '{"F":"0.0"}',
]  # upstream's {"F":"1e9"} decodes (see the F tests) but is canonically "1000000000.0"


@pytest.mark.parametrize("text", UPSTREAM_JSON)
def test_upstream_vectors_round_trip(text: str) -> None:
    doc = json.loads(text)
    assert json.dumps(IValue.from_json(doc).to_json(), separators=(",", ":")) == text


@pytest.mark.parametrize(
    ("number", "doc"),
    [
        (-128, {"I": "-128"}),
        (127, {"U": "127"}),
        (255, {"U": "255"}),
        (-32768, {"I": "-32768"}),
        (32767, {"U": "32767"}),
        (65535, {"U": "65535"}),
        (-2147483648, {"I": "-2147483648"}),
        (2147483647, {"U": "2147483647"}),
        (4294967295, {"U": "4294967295"}),
        (-9223372036854775808, {"I": "-9223372036854775808"}),
        (9223372036854775807, {"U": "9223372036854775807"}),
        (18446744073709551615, {"U": "18446744073709551615"}),
    ],
)
def test_extreme_integers_take_the_narrowest_tag(number: int, doc: dict[str, str]) -> None:
    assert IValue.from_python(number).to_json() == doc
    assert IValue.from_json(doc).to_python() == number


def test_upstream_decimal_vector() -> None:
    value = IValue.from_json({"D": "1.121"})
    assert value.value == Decimal("1.121")
    assert value.to_json() == {"D": "1.121"}


def test_a_64_byte_signature_decodes_as_b6() -> None:
    value = IValue.from_json({"B6": SIGNATURE})
    assert value.value == bytes(range(64))
    assert IValue.from_python(value.value).to_json() == {"B6": SIGNATURE}


def test_the_docs_example_inputs_decode_and_re_encode_identically() -> None:
    inputs = {"sender": {"S": PUBKEY}, "amount": {"D": "3.14"}}
    decoded = decode_map(inputs, "inputs")
    assert decoded == {"sender": IValue("S", PUBKEY), "amount": IValue("D", Decimal("3.14"))}
    assert encode_map(decoded) == inputs


# --- N, S, B ----------------------------------------------------------------------------------


def test_null_is_the_number_zero() -> None:
    assert IValue.from_json({"N": 0}).value is None
    assert IValue(tag="N", value=None).to_json() == {"N": 0}


@pytest.mark.parametrize("payload", [None, False, 0.0, "0", 1, []])
def test_null_rejects_anything_but_zero_saying_that_n_is_null(payload: object) -> None:
    message = str(decode_error({"N": payload}))
    assert 'N is null and carries no value: write it {"N": 0}, got ' in message
    assert "must be the number 0" not in message


def test_null_accepts_the_decimal_zero_dynamodb_returns() -> None:
    assert IValue.from_json({"N": Decimal("0")}).to_json() == {"N": 0}


@pytest.mark.parametrize(("tag", "payload"), [("S", 1), ("S", None), ("B", "true"), ("B", 1)])
def test_string_and_bool_take_only_their_json_type(tag: str, payload: object) -> None:
    decode_error({tag: payload})


# --- integers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        ("U", "0"),
        ("U", str(U64_MAX)),
        ("I", str(I64_MIN)),
        ("I", str(I64_MAX)),
        ("U1", "0"),
        ("U1", str(U128_MAX)),
        ("I1", str(I128_MIN)),
        ("I1", str(I128_MAX)),
    ],
)
def test_integer_extremes_decode(tag: str, text: str) -> None:
    assert IValue.from_json({tag: text}).to_python() == int(text)


@pytest.mark.parametrize(
    ("tag", "text", "kind"),
    [
        ("U", str(U64_MAX + 1), "u64"),
        ("I", str(I64_MIN - 1), "i64"),
        ("I", str(I64_MAX + 1), "i64"),
        ("U1", str(U128_MAX + 1), "u128"),
        ("I1", str(I128_MIN - 1), "i128"),
        ("I1", str(I128_MAX + 1), "i128"),
    ],
)
def test_integers_one_beyond_the_range_are_rejected(tag: str, text: str, kind: str) -> None:
    error = decode_error({tag: text}, "inputs.amount")
    assert str(error) == f'inputs.amount: {tag} value "{text}" is out of range for {kind}'


def test_u64_overflow_message_names_path_and_value() -> None:
    error = decode_error({"U": "18446744073709551616"}, "inputs.amount")
    assert error.path == "inputs.amount"
    assert error.reason == 'U value "18446744073709551616" is out of range for u64'
    assert str(error) == 'inputs.amount: U value "18446744073709551616" is out of range for u64'


@pytest.mark.parametrize("text", ["-1", "-0", "+1", " 1", "1 ", "", "1.0", "1e3", "0x10", "\u0661"])
def test_u64_takes_digits_only(text: str) -> None:
    decode_error({"U": text})


@pytest.mark.parametrize("text", ["+1", "--1", "- 1", "", "1.0", "1\n"])
def test_i64_takes_an_optional_minus_and_digits_only(text: str) -> None:
    decode_error({"I": text})


@pytest.mark.parametrize("tag", ["U", "I", "U1", "I1"])
def test_integers_must_be_strings_not_json_numbers(tag: str) -> None:
    assert "must be a JSON string, got number 5" in str(decode_error({tag: 5}))


def test_absurdly_long_integer_strings_are_rejected_cheaply() -> None:
    decode_error({"U": "1" * 100_000})


@pytest.mark.parametrize(
    ("number", "tag"),
    [(U64_MAX + 1, "U1"), (U128_MAX, "U1"), (I64_MIN - 1, "I1"), (I128_MIN, "I1")],
)
def test_from_python_widens_to_128_bits(number: int, tag: str) -> None:
    assert IValue.from_python(number).tag == tag


@pytest.mark.parametrize("number", [U128_MAX + 1, I128_MIN - 1])
def test_from_python_rejects_integers_beyond_128_bits(number: int) -> None:
    with pytest.raises(IValueError, match="out of range"):
        IValue.from_python(number)


# --- F ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e16, "1e16"),
        (1e-7, "1e-7"),
        (1.7976931348623157e308, "1.7976931348623157e308"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
    ],
)
def test_f64_encodes_as_the_shortest_round_trip_string(number: float, text: str) -> None:
    assert IValue.from_python(number).to_json() == {"F": text}
    assert IValue.from_json({"F": text}).value == number


def test_f64_nan_encodes_as_nan() -> None:
    value = IValue.from_json({"F": "NaN"})
    assert value.to_json() == {"F": "NaN"}
    assert IValue.from_python(float("nan")).to_json() == {"F": "NaN"}


@pytest.mark.parametrize(
    ("text", "number"),
    [("1e9", 1e9), ("1E+9", 1e9), ("-2.5", -2.5), (".5", 0.5), ("5.", 5.0), ("Infinity", 1e999)],
)
def test_f64_accepts_other_float_syntax(text: str, number: float) -> None:
    assert IValue.from_json({"F": text}).value == number


@pytest.mark.parametrize("payload", [2.5, 3])
def test_f64_also_accepts_a_json_number(payload: float) -> None:
    assert IValue.from_json({"F": payload}).value == float(payload)


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1_000", "abc", "0x1p3", "1e", "\u0661"])
def test_f64_rejects_non_float_strings(text: str) -> None:
    decode_error({"F": text})


@pytest.mark.parametrize("payload", [True, None, [1.0]])
def test_f64_rejects_non_numbers(payload: object) -> None:
    decode_error({"F": payload})


# --- D ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["3.14", "1.50", "0", "-0.5", "1.00", "0.0000001", "79228162514264337593543950335", "1.121"],
)
def test_decimal_is_kept_exact_with_its_scale(text: str) -> None:
    value = IValue.from_json({"D": text})
    assert value.value == Decimal(text)
    assert value.to_json() == {"D": text}


def test_decimal_at_the_limits_decodes() -> None:
    smallest = "0." + "0" * 27 + "1"
    assert IValue.from_json({"D": smallest}).to_json() == {"D": smallest}
    assert IValue.from_json({"D": "-7.9228162514264337593543950335"}).value == Decimal(
        "-7.9228162514264337593543950335"
    )


@pytest.mark.parametrize(
    "payload",
    [
        "1e5",
        "abc",
        "",
        "1.",
        ".5",
        "+1",
        " 1",
        "NaN",
        "79228162514264337593543950336",  # mantissa == 2^96
        "0." + "0" * 28 + "1",  # scale 29
        "1" * 100,
        3.14,
        3,
        None,
    ],
)
def test_decimal_rejects_what_rust_decimal_cannot_hold(payload: object) -> None:
    assert decode_error({"D": payload}, "inputs.amount").path == "inputs.amount"


def test_decimal_scale_error_names_the_limit() -> None:
    assert "at most 28" in decode_error({"D": "0." + "0" * 28 + "1"}).reason


def test_from_python_decimal_keeps_scale_and_drops_exponents() -> None:
    assert IValue.from_python(Decimal("1.50")).to_json() == {"D": "1.50"}
    assert IValue.from_python(Decimal("1E+2")).to_json() == {"D": "100"}


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("1E+29")])
def test_from_python_rejects_decimals_out_of_range(value: Decimal) -> None:
    with pytest.raises(IValueError):
        IValue.from_python(value)


# --- bytes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "tag"), [(31, "B3"), (33, "B3"), (63, "B6"), (65, "B6")])
def test_fixed_size_bytes_reject_other_lengths(size: int, tag: str) -> None:
    error = decode_error({tag: base58.encode(b"\x01" * size)}, "inputs.key")
    assert str(error).startswith("inputs.key: ")
    assert f"got {size} bytes" in error.reason


@pytest.mark.parametrize("text", ["", "0OlI" * 11, "not base58!", "1" * 200])
def test_b3_rejects_invalid_base58(text: str) -> None:
    assert "inputs.key" in str(decode_error({"B3": text}, "inputs.key"))


@pytest.mark.parametrize(
    "text",
    [
        "aGVsbG8",  # missing padding
        "aGVsbG8==",  # too much padding
        "aGVs bG8=",
        "aGVs\nbG8=",
        "aGVsbG8_",  # URL-safe alphabet
        "YR==",  # non-zero padding bits
        "é",
        "=",
    ],
)
def test_bytes_reject_non_canonical_base64(text: str) -> None:
    decode_error({"BY": text})


def test_bytes_may_be_empty() -> None:
    assert IValue.from_json({"BY": ""}).value == b""


@pytest.mark.parametrize(("size", "tag"), [(0, "BY"), (31, "BY"), (32, "B3"), (64, "B6")])
def test_from_python_bytes_tag_depends_on_length(size: int, tag: str) -> None:
    assert IValue.from_python(bytes(size)).tag == tag


# --- structure and paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [{}, {"S": "a", "B": True}, {"X": "1"}, {"s": "a"}, [], "S", None, 0, [{"S": "a"}]],
)
def test_anything_but_a_one_key_object_with_a_known_tag_is_rejected(doc: object) -> None:
    assert decode_error(doc).path == "value"


def test_unknown_tag_is_named() -> None:
    assert 'unknown IValue type "X"' in str(decode_error({"X": "1"}))


def test_array_errors_name_the_index() -> None:
    doc = {"list": {"A": [{"N": 0}, {"N": 0}, {"U": "-1"}]}}
    with pytest.raises(IValueError) as caught:
        decode_map(doc, "inputs")
    assert caught.value.path == "inputs.list[2]"


def test_nested_errors_name_the_full_path() -> None:
    doc = {"list": {"A": [{"N": 0}, {"N": 0}, {"M": {"name": {"S": 1}}}]}}
    with pytest.raises(IValueError) as caught:
        decode_map(doc, "inputs")
    assert str(caught.value).startswith("inputs.list[2].name: ")


@pytest.mark.parametrize(("tag", "payload"), [("A", {"x": {"N": 0}}), ("M", [{"N": 0}])])
def test_containers_take_their_json_type(tag: str, payload: object) -> None:
    decode_error({tag: payload})


def test_nesting_up_to_the_limit_decodes() -> None:
    doc = nested_arrays(MAX_DEPTH)
    assert IValue.from_json(doc).to_json() == doc


def test_nesting_beyond_the_limit_is_rejected() -> None:
    assert "deeper than 64" in decode_error(nested_arrays(MAX_DEPTH + 1)).reason


def test_deep_nesting_gives_an_ivalue_error_not_a_recursion_error() -> None:
    decode_error(nested_arrays(200))


def test_from_python_rejects_deep_and_cyclic_structures() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(IValueError, match="deeper than"):
        IValue.from_python(cyclic)


def test_decode_map_requires_an_object() -> None:
    with pytest.raises(IValueError) as caught:
        decode_map([{"S": "a"}], "inputs")
    assert caught.value.path == "inputs"


def test_decode_map_of_nothing_is_empty() -> None:
    assert decode_map({}, "inputs") == {}


# --- from_python and construction -------------------------------------------------------------


def test_from_python_converts_containers_recursively() -> None:
    value = IValue.from_python({"a": (1, "x"), "b": {"c": None}})
    assert value.to_json() == {
        "M": {"a": {"A": [{"U": "1"}, {"S": "x"}]}, "b": {"M": {"c": {"N": 0}}}}
    }


def test_from_python_keeps_ivalues_as_they_are() -> None:
    amount = IValue("D", Decimal("3.14"))
    assert IValue.from_python({"amount": amount}).to_json() == {"M": {"amount": {"D": "3.14"}}}


@pytest.mark.parametrize("obj", [object(), {1: "a"}, {1.5}, complex(1, 2)])
def test_from_python_rejects_unsupported_types(obj: object) -> None:
    with pytest.raises(TypeError):
        IValue.from_python(obj)


@pytest.mark.parametrize(
    ("tag", "value", "error"),
    [
        ("Q", None, ValueError),
        ("U", True, TypeError),
        ("U", -1, IValueError),
        ("F", 1, TypeError),
        ("B3", b"x", IValueError),
        ("A", [1], TypeError),
        ("M", {1: IValue("N", None)}, TypeError),
    ],
)
def test_construction_checks_tag_and_payload(tag: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        IValue(tag, value)


def test_ivalues_are_frozen() -> None:
    with pytest.raises(AttributeError):
        IValue("S", "a").value = "b"  # type: ignore[misc]


def test_ivalue_error_is_a_value_error_that_pickles() -> None:
    error = IValueError("inputs.a", "bad")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, str(copy)) == ("inputs.a", "bad", "inputs.a: bad")


# --- base58 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"\0", b"\0\0\0", b"\0\0\x01\x02", b"hello world", bytes(32), b"\xff" * 64, bytes(range(64))],
)
def test_base58_round_trips_including_leading_zero_bytes(data: bytes) -> None:
    assert base58.decode(base58.encode(data)) == data


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", ""),
        (b"\0", "1"),
        (b"\0\0\x01", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (bytes(32), "11111111111111111111111111111111"),
    ],
)
def test_base58_known_encodings(data: bytes, text: str) -> None:
    assert base58.encode(data) == text


@pytest.mark.parametrize("char", ["0", "O", "l", "I", "+", "/", " ", "é"])
def test_base58_rejects_characters_outside_the_alphabet(char: str) -> None:
    with pytest.raises(ValueError, match="invalid base58 character"):
        base58.decode("abc" + char)


def test_base58_rejects_the_empty_string() -> None:
    with pytest.raises(ValueError, match="empty"):
        base58.decode("")


def test_base58_rejects_overlong_input_before_decoding() -> None:
    with pytest.raises(ValueError, match="at most 128"):
        base58.decode("2" * 129)


def test_decode_pubkey_returns_32_bytes() -> None:
    assert len(base58.decode_pubkey(PUBKEY)) == 32


@pytest.mark.parametrize("size", [31, 33, 64])
def test_decode_pubkey_names_the_wrong_length(size: int) -> None:
    with pytest.raises(ValueError, match=f"got {size} bytes"):
        base58.decode_pubkey(base58.encode(b"\x01" * size))


@pytest.mark.parametrize(
    ("text", "expected"),
    [(PUBKEY, True), (SIGNATURE, False), ("", False), ("0" * 44, False), (None, False)],
)
def test_is_pubkey(text: Any, expected: bool) -> None:
    assert base58.is_pubkey(text) is expected
