"""Participants' display names: their syntax and the one normalisation that makes them unique.

A name is what people call a home (``casa-12``): 1 to 32 characters of ASCII letters,
digits, ``.``, ``_`` and ``-``, starting and ending with a letter or digit. Names are
compared after :func:`normalise`, which only lower-cases the ASCII letters, so
``Casa-12`` and ``casa-12`` are the same name and the ledger keeps the lower-case one.

Why ASCII only: the state machine must give the same answer on every node whatever
Python or Unicode version it runs, and Unicode case folding and normalisation change
between versions; and names that look alike in another script (``casa`` written with
Cyrillic letters) would let one home pass for another. A name can never be an address (addresses
are 42 characters) nor one of the contract language's role keywords (``ISO``,
``SUPPLIER``, ``DSO``, ``RETAILER``, ``AGGREGATOR``) or ``operator``.
"""

from __future__ import annotations

import re
from typing import Final

NAME_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,30}[a-z0-9])?")
MAX_NAME: Final = 32
RESERVED: Final = frozenset({"iso", "supplier", "dso", "retailer", "aggregator", "operator"})
_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalise(text: str) -> str:
    """``text`` with its ASCII letters in lower case (nothing else changes)."""
    return text.translate(_LOWER)


def name_problem(text: str) -> str | None:
    """Why ``text`` (already normalised) is not a name, or None if it is one."""
    if not text:
        return "a name cannot be empty"
    if len(text) > MAX_NAME:
        return f"a name is at most {MAX_NAME} characters"
    if not NAME_RE.fullmatch(text):
        return (
            "a name is letters a-z, digits, '.', '_' and '-' (ASCII only), "
            "starting and ending with a letter or digit"
        )
    if text in RESERVED:
        return f"{text!r} is reserved (a role of the contract language)"
    return None


def is_name(text: str) -> bool:
    """Whether ``text`` is a name once normalised."""
    return name_problem(normalise(text)) is None


def checked_name(text: str) -> str:
    """The normalised name, or ValueError saying what is wrong with ``text``."""
    name = normalise(text.strip())
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"{text!r}: {problem}")
    return name
