"""Transactiva's contract language: grammar, parser, checker and evaluator.

A pure library: no I/O, no clocks (time is passed in), no randomness. Parsing
any input returns a :class:`Contract` or raises :class:`ContractError`.

    >>> from contracts import parse, short_id
    >>> c = parse("Contract 'x'\\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\\n"
    ...           "IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF\\nParties: ISO\\n")
    >>> c.name
    'x'
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.canonical import content_hash, format_contract, receipt, short_id
from contracts.checker import check_items
from contracts.conflicts import Conflict, ConflictKind, conflicts, find_conflicts
from contracts.decide import Decided, Devices, DrInForce, HomeDecision, Member, Status, decide
from contracts.errors import ContractError, Diagnostic, Severity
from contracts.evaluator import (
    Action,
    Event,
    MeterState,
    Program,
    Reason,
    compile_contract,
    evaluate,
)
from contracts.model import Contract
from contracts.parser import decode, parse_raw
from contracts.reader import read as read_contract

__all__ = [
    "Action",
    "CheckResult",
    "Conflict",
    "ConflictKind",
    "Contract",
    "ContractError",
    "Decided",
    "Devices",
    "Diagnostic",
    "DrInForce",
    "Event",
    "HomeDecision",
    "Member",
    "MeterState",
    "Program",
    "Reason",
    "Severity",
    "Status",
    "check",
    "compile_contract",
    "conflicts",
    "content_hash",
    "decide",
    "evaluate",
    "find_conflicts",
    "format_contract",
    "parse",
    "receipt",
    "short_id",
]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A contract (None when there are errors) and every diagnostic, warnings included."""

    contract: Contract | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when the source is a valid contract (warnings allowed)."""
        return self.contract is not None

    def render(self, filename: str = "<contract>") -> str:
        """The diagnostics, one ``FILE:LINE:COL: severity: message`` per line."""
        return "\n".join(d.render(filename) for d in self.diagnostics)


def check(source: str | bytes, filename: str = "<contract>") -> CheckResult:
    """Parse and check; never raises for bad input, whatever it is.

    A valid contract is read in one pass (:mod:`contracts.reader`); any other text
    goes through the parser and the checker, which name every error.
    """
    try:
        text = decode(source, filename)
        if (read := read_contract(text)) is not None:
            return CheckResult(*read)
        items = parse_raw(text, filename)
    except ContractError as err:
        return CheckResult(None, err.diagnostics)
    contract, diagnostics = check_items(items)
    return CheckResult(contract, diagnostics)


def parse(source: str | bytes, filename: str = "<contract>") -> Contract:
    """The contract in ``source``, or ContractError naming every error."""
    result = check(source, filename)
    if result.contract is None:
        raise ContractError(result.diagnostics, filename)
    return result.contract
