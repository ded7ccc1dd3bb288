"""Property tests of the IValue codec: every valid document round-trips exactly, and any
JSON document at all is either decoded or refused with an IValueError, never anything else.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowdeploy import base58
from flowdeploy.values import IValue, IValueError

U64, I64, U128, I128 = 2**64 - 1, 2**63, 2**128 - 1, 2**127


def scalars() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just({"N": 0}),
        st.text(max_size=40).map(lambda s: {"S": s}),
        st.booleans().map(lambda b: {"B": b}),
        st.integers(0, U64).map(lambda n: {"U": str(n)}),
        st.integers(-I64, I64 - 1).map(lambda n: {"I": str(n)}),
        st.integers(0, U128).map(lambda n: {"U1": str(n)}),
        st.integers(-I128, I128 - 1).map(lambda n: {"I1": str(n)}),
        st.binary(min_size=32, max_size=32).map(lambda b: {"B3": base58.encode(b)}),
        st.binary(min_size=64, max_size=64).map(lambda b: {"B6": base58.encode(b)}),
        st.binary(max_size=40).map(lambda b: {"BY": base64.b64encode(b).decode()}),
        st.decimals(
            allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20
        ).map(lambda d: {"D": str(d)}),
    )


ivalues = st.recursive(
    scalars(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda a: {"A": a}),
        st.dictionaries(st.text(max_size=8), inner, max_size=4).map(lambda m: {"M": m}),
    ),
    max_leaves=12,
)
json_documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    ["N", "S", "B", "U", "I", "F", "D", "U1", "I1", "B3", "B6", "BY", "A", "M"]
                ),
                st.text(max_size=3),
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(ivalues)
def test_every_valid_document_round_trips_exactly(doc: dict[str, Any]) -> None:
    decoded = IValue.from_json(doc)
    assert decoded.to_json() == IValue.from_json(decoded.to_json()).to_json()
    assert IValue.from_json(json.loads(json.dumps(decoded.to_json()))) == decoded


@settings(max_examples=500, deadline=None, derandomize=True)
@given(json_documents)
def test_any_document_is_decoded_or_refused_with_an_ivalue_error(doc: Any) -> None:
    try:
        decoded = IValue.from_json(doc)
    except IValueError as error:
        assert str(error)
    else:
        assert IValue.from_json(decoded.to_json()) == decoded
