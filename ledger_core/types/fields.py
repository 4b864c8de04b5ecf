"""Validation of untrusted JSON values, field by field: the helpers every decoder shares.

Transactions, blocks, votes, proposals, commits, evidence and genesis files all
arrive as canonical JSON values from someone else. Their decoders check each
field with these helpers, which either return the value with its type narrowed
or raise :class:`FieldError` naming the field (``tx.body.amount``,
``block.header.height``) and saying what is wrong with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from enum import StrEnum
from typing import Final

from ledger_core.types import codec

_HEX_DIGITS: Final = b"0123456789abcdef"
_MEMBERS: dict[type[StrEnum], dict[str, StrEnum]] = {}


class FieldError(ValueError):
    """A value that cannot be decoded or is malformed: ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def expect_object(value: object, field: str) -> dict[str, codec.Value]:
    """``value`` as a JSON object."""
    if not isinstance(value, dict):
        raise FieldError(field, "must be an object")
    return value


def expect_keys(
    obj: Mapping[str, object], field: str, required: AbstractSet[str], optional: AbstractSet[str]
) -> None:
    """That ``obj`` has every ``required`` key and no key outside ``required | optional``."""
    keys = obj.keys()
    if keys == required or (optional and required <= keys and keys <= required | optional):
        return
    missing = required - obj.keys()
    if missing:
        raise FieldError(
            f"{field}.{sorted(missing)[0]}" if field else sorted(missing)[0], "is missing"
        )
    extra = obj.keys() - required - optional
    if extra:
        name = sorted(extra)[0]
        raise FieldError(f"{field}.{name}" if field else name, "is not a known field")


def expect_int(value: object, field: str, low: int, high: int) -> int:
    """``value`` as an integer in ``[low, high]`` (booleans are not integers)."""
    if type(value) is int and low <= value <= high:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, "must be an integer")
    if not low <= value <= high:
        raise FieldError(field, f"must be between {low} and {high}")
    return value


def expect_str(
    value: object, field: str, pattern: re.Pattern[str] | None = None, limit: int = 256
) -> str:
    """``value`` as printable text of at most ``limit`` characters matching ``pattern``."""
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if len(value) > limit:
        raise FieldError(field, f"is longer than {limit} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise FieldError(field, f"does not match {pattern.pattern}")
    if not value.isprintable():
        raise FieldError(field, "contains a control character")
    return value


def expect_hex(
    value: object, field: str, pattern: re.Pattern[str], digits: int, prefix: str = ""
) -> str:
    """:func:`expect_str` with ``pattern``, which must be exactly ``prefix`` and ``digits``
    lower-case hexadecimal digits: the same result, without running the pattern for a
    value that fits it (the pattern names the error of one that does not)."""
    if (
        type(value) is str
        and len(value) == len(prefix) + digits
        and value.startswith(prefix)
        and value.isascii()
        and not value.encode()[len(prefix) :].translate(None, _HEX_DIGITS)
    ):
        return value
    return expect_str(value, field, pattern)


def expect_bool(value: object, field: str) -> bool:
    """``value`` as ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise FieldError(field, "must be true or false")
    return value


def expect_enum[E: StrEnum](value: object, field: str, kind: type[E]) -> E:
    """``value`` as a member of ``kind``."""
    members = _MEMBERS.get(kind)
    if members is None:
        members = _MEMBERS[kind] = {member.value: member for member in kind}
    if type(value) is str and (member := members.get(value)) is not None:
        return member  # type: ignore[return-value]
    text = expect_str(value, field, limit=64)
    try:
        return kind(text)
    except ValueError:
        raise FieldError(field, "must be one of " + ", ".join(e.value for e in kind)) from None
