"""The examples in docs/contract-language.md are what the library does."""

from __future__ import annotations

import re
from pathlib import Path

from contracts import Severity, check, parse, short_id

DOC = (Path(__file__).resolve().parents[2] / "docs" / "contract-language.md").read_text(
    encoding="utf-8"
)
EXAMPLES = re.findall(r"```\n(Contract '.*?)```", DOC, re.DOTALL)


def test_the_reference_has_the_papers_example_and_more() -> None:
    assert len(EXAMPLES) >= 4
    assert EXAMPLES[0].startswith("Contract 'prueba'\nValid from 2019/08/01 00:00:00 to 2019/09/31")


def test_the_papers_example_fails_exactly_as_documented() -> None:
    result = check(EXAMPLES[0], "fig7.contract")
    rendered = result.render("fig7.contract").splitlines()
    for line in rendered:
        assert line in DOC
    assert [d.severity for d in result.diagnostics] == [Severity.ERROR, Severity.WARNING]


def test_the_documented_receipt_id_is_the_fixed_examples_id() -> None:
    fixed = parse(EXAMPLES[0].replace("2019/09/31", "2019/09/30"))
    assert f"Timestamp 2019/07/11 18:23:47 to 'prueba' [{short_id(fixed)}]" in DOC


def test_every_other_example_is_a_valid_contract() -> None:
    for example in EXAMPLES[1:]:
        result = check(example)
        assert result.ok, result.render()
        assert not result.diagnostics, result.render()
