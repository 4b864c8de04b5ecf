"""Diagnostics and the library's one error type."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How serious a diagnostic is: errors reject the contract, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about a contract's source, at a 1-based line and column."""

    severity: Severity
    line: int
    column: int
    message: str
    expected: str | None = None
    hint: str | None = None

    def render(self, filename: str = "<contract>") -> str:
        """``FILE:LINE:COL: error: MESSAGE (expected ...) [hint: ...]`` on one line."""
        text = f"{filename}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ContractError(Exception):
    """A contract's source was rejected; ``diagnostics`` says what and where.

    Parsing any input either returns a contract or raises this error, never
    anything else.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic], filename: str = "<contract>") -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.filename = filename
        super().__init__(self.render())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics that are errors."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    def render(self) -> str:
        """Every diagnostic, one per line."""
        return "\n".join(d.render(self.filename) for d in self.diagnostics)


def did_you_mean(word: str, choices: Iterable[str], *, quoted: bool = False) -> str | None:
    """A hint naming the closest choice to a misspelt word, or None.

    Case is ignored; ``quoted`` writes the suggestion as a string literal.
    """
    lowered = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.75)
    if not matches:
        return None
    best = lowered[matches[0]]
    return f"did you mean '{best}'?" if quoted else f"did you mean {best}?"
