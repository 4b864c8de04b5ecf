"""The canonical codec's fast path (orjson) agrees with its reference (the standard
library's json) on every input: the same bytes, the same values, and the same errors
with the same words.

Signed and hashed bytes depend on this codec, so a difference would split the chain:
a node that accepts what another refuses, or hashes a value differently. The tests
feed both arbitrary bytes, every kind of value (floats, huge integers, lone
surrogates, enums, tuples, keys that are not strings, deep nesting) and near-canonical
encodings of values, mutated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import IntEnum, StrEnum
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger_core.types import codec

LIMIT = 1 << 16


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


def _outcome(run: Any, *args: object) -> tuple[str, object]:
    try:
        return "ok", run(*args)
    except Exception as err:  # noqa: BLE001 - the kind and words of any error are compared
        return type(err).__name__, str(err)


def _same_decoding(data: bytes) -> None:
    fast = _outcome(codec.decode, data, LIMIT)
    reference = _outcome(codec.reference_decode, data, LIMIT)
    assert fast == reference
    if fast[0] == "ok":
        assert type(fast[1]) is type(reference[1])
        assert codec.encode(fast[1]) == data  # type: ignore[arg-type]


def _same_encoding(value: object) -> None:
    fast = _outcome(codec.encode, value)
    reference = _outcome(codec.reference_encode, value)
    assert fast == reference


characters = st.characters(codec=None) | st.sampled_from(
    ["\x00", "\x1f", "\x7f", "\u2028", "\ud800"]
)
keys = st.text(characters, max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.text(characters, max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)
odd_values = st.recursive(
    scalars
    | st.floats(allow_nan=True)
    | st.sampled_from([Colour.RED, Level.HIGH, (1, 2), b"x", 1.0, -0.0]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(keys | st.integers(0, 3) | st.just(Colour.RED), inner, max_size=3)
        | st.builds(tuple, st.lists(inner, max_size=2))
    ),
    max_leaves=20,
)


def _encodings(value: object) -> list[bytes]:
    """Ways a value might be written, canonical or nearly so."""
    found = []
    runs: tuple[Callable[[Any], bytes], ...] = (
        codec.reference_encode,
        lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS),
        orjson.dumps,
        lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")).encode("utf-8"),
        lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False).encode("utf-8"),
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
    )
    for run in runs:
        try:
            found.append(run(value))
        except (TypeError, ValueError, UnicodeEncodeError):
            continue
    return found


@settings(max_examples=500)
@given(st.binary(max_size=200))
@example(b"1.5")
@example(b"[1e16]")
@example(b"1E400")
@example(b"18446744073709551616")
@example(b"-9223372036854775809")
@example(b'{"a":1,"a":1}')
@example(b'"\\u007f"')
@example(b'"\\ud800"')
@example(b'"\\ud83d\\ude00"')
@example(b"\xef\xbb\xbf1")
@example(b"[" * 33 + b"]" * 33)
@example(b"[" * 32 + b"]" * 32)
@example(b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",1.5]')
@example(b'{"x":"a:1e5"}')
@example(b"NaN")
@example(b"-0")
def test_decoding_arbitrary_bytes_agrees(data: bytes) -> None:
    _same_decoding(data)


@settings(max_examples=300)
@given(values, st.data())
def test_decoding_near_canonical_bytes_agrees(value: object, data: st.DataObject) -> None:
    for encoded in _encodings(value):
        _same_decoding(encoded)
        if encoded:
            at = data.draw(st.integers(0, len(encoded) - 1))
            byte = data.draw(st.sampled_from(b' .e0-"\\[]{},:1\x7f\xff'))
            _same_decoding(encoded[:at] + bytes([byte]) + encoded[at + 1 :])
            _same_decoding(encoded[:at] + encoded[at + 1 :])


@settings(max_examples=300)
@given(values)
def test_encoding_values_agrees(value: object) -> None:
    _same_encoding(value)


@settings(max_examples=300)
@given(values)
def test_a_decoded_value_re_encodes_to_its_bytes_without_the_walk(value: object) -> None:
    try:
        data = codec.reference_encode(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # floats, lone surrogates: nothing decodes to them
        return
    assert codec.encode_decoded(codec.decode(data, LIMIT)) == data


@settings(max_examples=300)
@given(odd_values)
def test_encoding_anything_agrees(value: object) -> None:
    _same_encoding(value)


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        {"a": 1.5},
        [(1, 2)],
        {1: 2},
        {"a": b"x"},
        "\ud800",
        2**64,
        -(2**63) - 1,
        [Colour.RED, Level.HIGH, {"k": Colour.RED}],
        {"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "a": 4},
        [[[]]] * 2,
    ],
)
def test_encoding_edge_values_agrees(value: object) -> None:
    _same_encoding(value)


def test_nesting_at_and_past_the_limit() -> None:
    deep: object = 1
    for _ in range(codec.MAX_DEPTH):
        deep = [deep]
    _same_encoding(deep)
    _same_encoding([deep])
    with pytest.raises(TypeError):
        codec.encode([deep])  # type: ignore[list-item]
    _same_decoding(codec.reference_encode(deep))  # type: ignore[arg-type]
