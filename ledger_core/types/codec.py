"""Canonical JSON: the one byte encoding of everything that is signed or hashed.

A value is ``None``, ``bool``, ``int``, ``str``, a list of values or a dict
from ``str`` to values. Its encoding is JSON in UTF-8 with object keys sorted by
code point, no insignificant white space, and non-ASCII characters written as
themselves. Floats, NaN and infinities do not exist. :func:`decode` accepts
exactly the bytes :func:`encode` produces: anything else (other spacing, key
order, escapes, duplicate keys, floats, ``1.0``, ``1e3``) is rejected, so each
value has one encoding and one hash.

The rules are those of :func:`reference_encode` and :func:`reference_decode`,
which use the standard library's ``json``. :func:`encode` and :func:`decode`
give the same bytes, values and errors faster: orjson encodes and parses in C,
and a value that orjson parses and encodes back to exactly the given bytes,
with no float in it and nested no deeper than the limit, is what the reference
decodes too. Everything else (floats, integers beyond 64 bits, anything not
canonical, anything orjson refuses) goes to the reference, which decides and
words the error (tests/types/test_codec.py compares both on arbitrary
bytes and values).
"""

from __future__ import annotations

import json
from typing import Final

import orjson

type Value = bool | int | str | list[Value] | dict[str, Value] | None

MAX_DEPTH: Final = 32


class DecodeError(ValueError):
    """Bytes that are not the canonical encoding of a value; the message says why."""


def _reject_float(text: str) -> object:
    raise DecodeError(f"numbers are integers; {text!r} is not")


def _reject_constant(text: str) -> object:
    raise DecodeError(f"{text} is not a JSON value here")


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise DecodeError(f"key {key!r} appears twice")
        result[key] = value
    return result


_SORTED: Final = orjson.OPT_SORT_KEYS


def encode(value: Value) -> bytes:
    """The canonical bytes of ``value``; TypeError for anything that is not a value."""
    if _plain(value, 0):
        try:
            return orjson.dumps(value, option=_SORTED)
        except orjson.JSONEncodeError:  # integers beyond 64 bits, lone surrogates
            pass
    return reference_encode(value)


def encode_decoded(value: Value) -> bytes:
    """:func:`encode` of a value :func:`decode` returned, without walking it again:
    decode has checked that it is plain and re-encodes to its bytes (a node's start-up
    re-encodes its whole state for the state root)."""
    try:
        return orjson.dumps(value, option=_SORTED)
    except orjson.JSONEncodeError:  # integers beyond 64 bits (decode's reference path)
        return reference_encode(value)


def reference_encode(value: Value) -> bytes:
    """:func:`encode` by the standard library alone (the definition of the encoding)."""
    _check(value, 0)
    return _dumps(value)


def _plain(value: object, level: int) -> bool:
    """Whether ``value`` is made only of None, bool, int, str (or their enum subclasses),
    lists and dicts with str keys, nested at most MAX_DEPTH deep: what orjson encodes
    exactly as the reference does (it also encodes floats, tuples, dataclasses, ...)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if level >= MAX_DEPTH:
        return False
    # A scalar item is judged here, without a call (the commit's hot loop).
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return False
            kind = type(item)
            if not (kind is str or kind is int or kind is bool or item is None) and not _plain(
                item, level + 1
            ):
                return False
        return True
    if kind is list:
        for item in value:  # type: ignore[attr-defined]
            kind = type(item)
            if not (kind is str or kind is int or kind is bool or item is None) and not _plain(
                item, level + 1
            ):
                return False
        return True
    return isinstance(value, (str, int)) and not isinstance(value, float)


def _dumps(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _check(value: object, level: int) -> None:
    kind = type(value)
    if kind is str:
        value.encode("utf-8")  # type: ignore[attr-defined]  # lone surrogates cannot be encoded
        return
    if kind is int or kind is bool or value is None:
        return
    if level >= MAX_DEPTH:
        raise TypeError(f"nested more than {MAX_DEPTH} levels")
    if kind is list:
        for item in value:  # type: ignore[attr-defined]
            _check(item, level + 1)
        return
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise TypeError(f"object keys are strings, not {type(key).__name__}")
            _check(item, level + 1)
        return
    if isinstance(value, (str, int)) and not isinstance(value, float):
        # Subclasses (enums built on str or int) encode as their base value.
        _check(str(value) if isinstance(value, str) else int(value), level)
        return
    raise TypeError(f"{kind.__name__} cannot be encoded (floats are not allowed)")


def _floatless(value: object, level: int = 0) -> bool:
    """Whether a value orjson parsed holds no float (orjson parses ``1.0``, ``1e3`` and
    integers beyond 64 bits as floats, and writes them back the same way) and no list
    or object nested more than MAX_DEPTH deep (the reference refuses those)."""
    kind = type(value)
    if kind is dict:
        value = value.values()  # type: ignore[attr-defined]
    elif kind is not list:
        return kind is not float
    if level >= MAX_DEPTH:
        return False
    for item in value:  # type: ignore[attr-defined]
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and not _floatless(item, level + 1)):
            return False
    return True


def decode(data: bytes, max_size: int) -> Value:
    """The value whose canonical encoding is ``data``; DecodeError otherwise."""
    if len(data) <= max_size:
        try:
            value = orjson.loads(data)
            same = orjson.dumps(value, option=_SORTED) == data
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            same = False
        if same and _floatless(value):
            return value  # type: ignore[no-any-return]
    return reference_decode(data, max_size)


def reference_decode(data: bytes, max_size: int) -> Value:
    """:func:`decode` by the standard library alone (the definition of the encoding)."""
    if len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes; the limit is {max_size}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DecodeError(f"not UTF-8 at byte {err.start}") from None
    try:
        # Duplicate keys need no hook: a dict re-encodes with each key once, so
        # input that repeats a key never equals its canonical encoding below.
        value = json.loads(text, parse_float=_reject_float, parse_constant=_reject_constant)
    except DecodeError:
        raise
    except json.JSONDecodeError as err:
        raise DecodeError(f"not JSON: {err.msg} at character {err.pos}") from None
    except (ValueError, RecursionError) as err:
        raise DecodeError(f"not a canonical value: {err}") from None
    try:
        if data.count(b"[") + data.count(b"{") > MAX_DEPTH:
            _check(value, 0)  # bounds the nesting depth
        canonical = _dumps(value)
    except (TypeError, UnicodeEncodeError) as err:  # lone surrogates written as escapes
        raise DecodeError(f"not a canonical value: {err}") from None
    if canonical != data:
        json.loads(text, object_pairs_hook=_pairs)  # names a key that appears twice
        raise DecodeError(
            "not in canonical form (keys sorted, no spaces, characters unescaped, integers)"
        )
    return value  # type: ignore[no-any-return]
