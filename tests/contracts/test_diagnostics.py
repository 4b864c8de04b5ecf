"""Every kind of mistake gets its own message, at the right line and column."""

from __future__ import annotations

import pytest

from contracts import Severity, check
from contracts.parser import MAX_CONDITION_DEPTH, MAX_SOURCE_BYTES

HEAD = "Contract 'x'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
TAIL = "Parties: ISO\n"


def errors_of(source: str | bytes) -> list[tuple[int, int, str, str | None, str | None]]:
    result = check(source)
    assert result.contract is None, "expected the contract to be rejected"
    return [
        (d.line, d.column, d.message, d.expected, d.hint)
        for d in result.diagnostics
        if d.severity is Severity.ERROR
    ]


def only_error(source: str | bytes) -> tuple[int, int, str, str | None, str | None]:
    found = errors_of(source)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("source", "line", "column", "message", "hint"),
    [
        # calendar and clock
        (
            "Contract 'x'\nValid from 2019/02/29 00:00:00 to 2019/12/31 00:00:00\n" + TAIL,
            2,
            12,
            "2019/02/29 is not a calendar date: February 2019 has 28 days",
            "the last day is 2019/02/28",
        ),
        (
            "Contract 'x'\nValid from 2026/13/01 00:00:00 to 2027/01/01 00:00:00\n" + TAIL,
            2,
            12,
            "2026/13/01 is not a calendar date: there is no month 13",
            None,
        ),
        (
            "Contract 'x'\nValid from 2023/02/29 00:00:00 to 2027/01/01 00:00:00\n" + TAIL,
            2,
            12,
            "2023/02/29 is not a calendar date: February 2023 has 28 days",
            None,
        ),
        (
            "Contract 'x'\nValid from 2026/01/00 00:00:00 to 2027/01/01 00:00:00\n" + TAIL,
            2,
            12,
            "2026/01/00 is not a calendar date: January 2026 has 31 days",
            "the last day is 2026/01/31",
        ),
        (
            "Contract 'x'\nValid from 0000/01/01 00:00:00 to 2027/01/01 00:00:00\n" + TAIL,
            2,
            12,
            "0000/01/01 is not a calendar date: there is no year 0",
            None,
        ),
        (
            "Contract 'x'\nValid from 2026/01/01 24:00:00 to 2027/01/01 00:00:00\n" + TAIL,
            2,
            23,
            "24:00:00 is not a time of day",
            None,
        ),
        (
            "Contract 'x'\nValid from 2026/06/01 00:00:00 to 2026/05/01 00:00:00\n" + TAIL,
            2,
            35,
            "the validity window ends (2026/05/01 00:00:00) before it starts (2026/06/01 00:00:00)",
            None,
        ),
        (
            "Contract 'x'\nValid from 2026/06/01 00:00:00 to 2026/06/01 00:00:00\n" + TAIL,
            2,
            35,
            "the validity window ends (2026/06/01 00:00:00) when it starts (2026/06/01 00:00:00)",
            None,
        ),
        # parties
        (HEAD + "Parties:\n", 3, 8, "empty party list", None),
        (HEAD + "Parties: SUPLIER\n", 3, 10, "unknown role 'SUPLIER'", "did you mean SUPPLIER?"),
        (HEAD + "Parties: ISO, ISO\n", 3, 15, "party ISO is listed twice", None),
        (HEAD + "Parties: 'casa 12'\n", 3, 10, "'casa 12' is not a participant identifier", None),
        # devices
        (
            HEAD + "Devices: 'Lavadora'\nIF Price < 3 THEN TURN ON DEVICE 'Lavadra' ENDIF\n" + TAIL,
            4,
            34,
            "device 'Lavadra' is not declared in Devices",
            "did you mean 'Lavadora'?",
        ),
        (
            HEAD + "Devices: 'Lavadora'\nDemandResponse true shed 'Secadora'\n" + TAIL,
            4,
            26,
            "device 'Secadora' is not declared in Devices",
            None,
        ),
        (HEAD + "Devices: 'A', 'A'\n" + TAIL, 3, 15, "device 'A' is declared twice", None),
        (HEAD + "Devices: 'A', ' '\n" + TAIL, 3, 15, "a device name is empty", None),
        (
            HEAD + "DemandResponse true shed 'A', 'A'\n" + TAIL,
            3,
            31,
            "device 'A' is listed twice",
            None,
        ),
        (HEAD + "DemandResponse true shed ''\n" + TAIL, 3, 26, "a device name is empty", None),
        (
            HEAD + "IF Price < 3 THEN TURN ON DEVICE '' ENDIF\n" + TAIL,
            3,
            34,
            "a device name is empty",
            None,
        ),
        (
            HEAD + "Devices: 'A'\nIF Price < 3 THEN TURN ON DEVICE '' ENDIF\n" + TAIL,
            4,
            34,
            "a device name is empty",
            None,
        ),
        (
            HEAD + "IF Weekday = 3 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            14,
            "Weekday is compared with a day",
            None,
        ),
        (
            HEAD + "IF Price < 22:00 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "Price is a price, not a time of day",
            None,
        ),
        (
            HEAD + "IF Price < cheap THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "unknown variable 'cheap'",
            None,
        ),
        (
            HEAD + "IF Foo IN 10:00-12:00 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            4,
            "unknown variable 'Foo'",
            None,
        ),
        (
            HEAD + "IF Time IN 25:00-06:00 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "25:00 is not a time of day",
            None,
        ),
        (
            HEAD + "IF Service < Service THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "service status values are compared with = or !=",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN SELL SURPLUS AT MIN 1.1234567 ENDIF\n" + TAIL,
            3,
            39,
            "1.1234567 has too many digits",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN BUY 1.1234567 kWh AT MAX 3 ENDIF\n" + TAIL,
            3,
            23,
            "1.1234567 has too many digits",
            None,
        ),
        # units and types
        (
            HEAD + "IF Price < 500 W THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            16,
            "cannot compare Price (MXN/kWh) with 500 W (power)",
            None,
        ),
        (
            HEAD + "IF Consumption > 2 MXN/kWh THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            20,
            "cannot compare Consumption (power or energy) with 2 MXN/kWh (price)",
            None,
        ),
        (
            HEAD + "IF Consumption > 500 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            18,
            "Consumption needs a unit",
            None,
        ),
        (
            HEAD + "IF Battery < 20 kWh THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            17,
            "cannot compare Battery (%) with 20 kWh (energy)",
            None,
        ),
        (
            HEAD + "IF Battery < 120 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            14,
            "Battery is between 0 and 100 %",
            None,
        ),
        (
            HEAD + "IF DRLevel > 4 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            14,
            "DRLevel is 0, 1, 2 or 3 (OpenADR SIMPLE levels)",
            None,
        ),
        (
            HEAD + "IF DRLevel > 1 W THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            16,
            "DRLevel is a plain number from 0 to 3, without unit",
            None,
        ),
        (
            HEAD + "IF Price < Consumption THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            10,
            "cannot compare Price (price) with Consumption (power or energy)",
            None,
        ),
        (
            HEAD + "IF 3 < 4 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            6,
            "this comparison has no variable; it is always true or false",
            None,
        ),
        (
            HEAD + "IF Prise < 3 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            4,
            "unknown variable 'Prise'",
            "did you mean Price?",
        ),
        (
            HEAD + "IF Time < 3 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            11,
            "Time is compared with a time of day",
            None,
        ),
        (
            HEAD + "IF Time < 25:00 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            11,
            "25:00 is not a time of day",
            None,
        ),
        (
            HEAD + "IF Weekday < sat THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "Weekday is compared with = or !=",
            "use Weekday IN mon-fri for several days",
        ),
        (
            HEAD + "IF Weekday = funday THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            14,
            "unknown day 'funday'",
            None,
        ),
        (
            HEAD + "IF Service = cutt THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            14,
            "Service is 'connected' or 'cut'",
            "did you mean cut?",
        ),
        (
            HEAD + "IF Price IN 10:00-12:00 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            10,
            "a range of times applies to Time",
            None,
        ),
        (
            HEAD + "IF Time IN 10:00-10:00 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "the range 10:00-10:00 is empty",
            None,
        ),
        (
            HEAD + "IF Price IN weekends THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            10,
            "a set of days applies to Weekday",
            None,
        ),
        (
            HEAD + "IF Weekday IN mon-weekends THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            19,
            "'weekends' cannot be the end of a day range like mon-fri",
            None,
        ),
        (
            HEAD + "IF Price < 1.1234567 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            12,
            "1.1234567 has too many digits",
            None,
        ),
        # actions
        (HEAD + "IF Price < 3 THEN ENDIF\n" + TAIL, 3, 14, "THEN has no actions", None),
        (
            HEAD + "IF Price < 3 THEN NOTIFY 'a' ELSE ENDIF\n" + TAIL,
            3,
            30,
            "ELSE has no actions",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN NOTIFY '' ENDIF\n" + TAIL,
            3,
            26,
            "the notification is empty",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN BUY up to 2 AT MAX 3 ENDIF\n" + TAIL,
            3,
            29,
            "the energy to buy has no unit",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN BUY up to 0 kWh AT MAX 3 ENDIF\n" + TAIL,
            3,
            29,
            "the energy to buy must be more than zero",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN BUY up to 1.5 Wh AT MAX 3 ENDIF\n" + TAIL,
            3,
            29,
            "1.5 Wh is not a whole Wh",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN BUY up to 1 kWh AT MAX 3 kW ENDIF\n" + TAIL,
            3,
            44,
            "the maximum price is in kW (power)",
            None,
        ),
        (
            HEAD + "IF Price < 3 THEN SELL SURPLUS AT MIN 2 Wh ENDIF\n" + TAIL,
            3,
            41,
            "the minimum price is in Wh (energy)",
            None,
        ),
        (
            HEAD + "Contract 'y'\n" + TAIL,
            3,
            1,
            "second Contract clause; a contract has one",
            "the first is at line 1",
        ),
        (
            HEAD + "Consumption programmed 10:00-10:00\n" + TAIL,
            3,
            24,
            "the window 10:00-10:00 is empty",
            None,
        ),
        (
            HEAD + "Consumption programmed 10:00-12:00 holidays\n" + TAIL,
            3,
            36,
            "unknown day 'holidays'",
            None,
        ),
        (
            HEAD + "Consumption programmed 24:00-12:00\n" + TAIL,
            3,
            24,
            "24:00 is not a time of day",
            None,
        ),
        (
            "Contract ''\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n" + TAIL,
            1,
            10,
            "the contract name is empty",
            None,
        ),
        (
            "Contract '"
            + "n" * 101
            + "'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
            + TAIL,
            1,
            10,
            "the contract name is 101 characters long; the limit is 100",
            None,
        ),
        (
            "Contract 'a\u0007b'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n" + TAIL,
            1,
            10,
            "the contract name contains a control character",
            None,
        ),
    ],
)
def test_semantic_errors(
    source: str, line: int, column: int, message: str, hint: str | None
) -> None:
    found_line, found_column, found_message, _expected, found_hint = only_error(source)
    assert (found_line, found_column) == (line, column)
    assert found_message == message
    if hint is not None:
        assert found_hint == hint


@pytest.mark.parametrize(
    ("source", "line", "column", "message", "expected_part", "hint"),
    [
        ("", 1, 1, "empty contract", "Contract 'name'", None),
        (
            HEAD + "Consumption programed 10:00-12:00\n" + TAIL,
            3,
            13,
            "unexpected 'programed'",
            "programmed",
            "did you mean programmed?",
        ),
        (
            HEAD + "DemandResponce true\n" + TAIL,
            3,
            1,
            "unexpected 'DemandResponce'",
            "DemandResponse",
            "did you mean DemandResponse?",
        ),
        (
            HEAD + "IF Price < 3 THEN\nNOTIFY 'x'\n" + TAIL,
            5,
            1,
            "unexpected 'Parties'",
            "ENDIF",
            "every IF needs an ENDIF",
        ),
        (
            HEAD + "IF Price < 3 THEN\nNOTIFY 'x'\n",
            5,
            1,
            "unexpected end of contract",
            "ENDIF",
            "every IF needs an ENDIF",
        ),
        (
            HEAD + "Store false Production true\n" + TAIL,
            3,
            13,
            "unexpected 'Production'",
            "the end of the line",
            "put each clause and each action on its own line",
        ),
        (
            HEAD + "IF Price < 3 NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            14,
            "unexpected 'NOTIFY'",
            "THEN",
            None,
        ),
        (
            HEAD + "IF Price 3 THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            10,
            "unexpected '3'",
            "a comparison (<, <=, >, >=, =, !=)",
            None,
        ),
        (
            HEAD + "IF Consumption > 500 watts THEN NOTIFY 'x' ENDIF\n" + TAIL,
            3,
            22,
            "unexpected 'watts'",
            "a unit",
            "units are W, kW, MW, Wh, kWh, MWh, MXN/kWh, MXN/MWh and %",
        ),
        (
            'Contract "x"\n',
            1,
            10,
            "unexpected character '\"'",
            None,
            "strings are written in single quotes: 'Lavadora'",
        ),
        (
            "Contract 'x\n",
            1,
            10,
            "this string is not closed on its line",
            "a closing single quote",
            "write a quote inside a string as two quotes: 'Juan''s'",
        ),
        (
            HEAD + "IF Price < $3 THEN NOTIFY 'x' ENDIF\n",
            3,
            12,
            "unexpected character '$'",
            None,
            "prices are written with the currency code: 2.5 MXN/kWh",
        ),
        (
            HEAD + "IF Price < .5 THEN NOTIFY 'x' ENDIF\n",
            3,
            12,
            "unexpected character '.'",
            None,
            "write numbers with a digit before the point: 0.5",
        ),
        ("Contract 'x'\u0000\n", 1, 13, "unexpected character U+0000", None, None),
        (
            b"Contract 'caf\xe9'\n",
            1,
            14,
            "byte 0xE9 is not valid UTF-8",
            None,
            "save the contract as UTF-8",
        ),
        ("Contract '\ud800'\n", 1, 11, "character U+D800 cannot be written in UTF-8", None, None),
    ],
)
def test_syntax_errors(
    source: str | bytes,
    line: int,
    column: int,
    message: str,
    expected_part: str | None,
    hint: str | None,
) -> None:
    found_line, found_column, found_message, expected, found_hint = only_error(source)
    assert (found_line, found_column, found_message) == (line, column, message)
    if expected_part is not None:
        assert expected is not None
        assert expected_part in expected
    assert found_hint == hint


def test_leap_days_are_calendar_dates() -> None:
    assert check("Contract 'x'\nValid from 2024/02/29 00:00:00 to 2027/01/01 00:00:00\n" + TAIL).ok


def test_missing_clauses_are_each_reported() -> None:
    found = errors_of("IF Price < 3 THEN NOTIFY 'x' ENDIF\n")
    messages = [message for _, _, message, _, _ in found]
    assert messages == [
        "a contract starts with its name",
        "missing Contract clause",
        "missing Valid clause",
        "missing Parties clause",
    ]


def test_all_semantic_errors_are_reported_at_once_in_source_order() -> None:
    source = (
        "Contract 'x'\n"
        "Valid from 2026/01/01 00:00:00 to 2025/01/01 00:00:00\n"
        "IF Prise < 3 AND Consumption > 3 MXN/kWh THEN NOTIFY 'x' ENDIF\n"
        "Parties: SUPLIER\n"
    )
    found = errors_of(source)
    assert [(line, column) for line, column, *_ in found] == [(2, 35), (3, 4), (3, 34), (4, 10)]


def test_warnings_do_not_reject_the_contract() -> None:
    result = check(
        HEAD
        + "Production false\nConsumption false\nDemandResponse true\n"
        + "IF Price < 3 THEN SELL SURPLUS ENDIF\n"
        + "IF Price < 3 THEN BUY up to 1 kWh AT MAX 3 ENDIF\n"
        + TAIL
    )
    assert result.ok
    messages = [d.message for d in result.diagnostics]
    assert all(d.severity is Severity.WARNING for d in result.diagnostics)
    assert any("SELL SURPLUS in a contract with Production false" in m for m in messages)
    assert any("BUY in a contract with Consumption false" in m for m in messages)
    assert any(
        "DemandResponse true, but the contract controls no device to shed" in m for m in messages
    )


def _alternating(levels: int) -> str:
    """``Price < 1 AND (Price < 2 OR (Price < 3 AND (...)))``: one tree level per operator."""
    text = "Price < 0"
    for i in range(levels):
        text = f"Price < {i + 1} {'AND' if i % 2 else 'OR'} ({text})"
    return text


def test_condition_depth_is_bounded() -> None:
    deep = _alternating(MAX_CONDITION_DEPTH)
    line, _column, message, _expected, hint = only_error(
        HEAD + f"IF {deep} THEN NOTIFY 'x' ENDIF\n" + TAIL
    )
    assert line == 3
    assert message == f"condition is nested more than {MAX_CONDITION_DEPTH} levels deep"
    assert hint == "split it into several rules"

    nots = "NOT " * (MAX_CONDITION_DEPTH + 5) + "Price < 3"
    assert "nested more than" in only_error(HEAD + f"IF {nots} THEN NOTIFY 'x' ENDIF\n" + TAIL)[2]

    assert check(
        HEAD + f"IF {_alternating(MAX_CONDITION_DEPTH - 2)} THEN NOTIFY 'x' ENDIF\n" + TAIL
    ).ok
    # Redundant parentheses add no depth to the tree, so they are harmless.
    parens = "(" * 200 + "Price < 3" + ")" * 200
    assert check(HEAD + f"IF {parens} THEN NOTIFY 'x' ENDIF\n" + TAIL).ok


def test_source_size_is_bounded() -> None:
    big = HEAD + "# " + "x" * MAX_SOURCE_BYTES + "\n" + TAIL
    message = only_error(big)[2]
    assert message.endswith(f"the limit is {MAX_SOURCE_BYTES}")
    assert only_error(big.encode())[2].endswith(f"the limit is {MAX_SOURCE_BYTES}")


def test_rendering_names_file_line_column_expectation_and_hint() -> None:
    result = check(HEAD + "Parties: SUPLIER\n", "casa.contract")
    assert result.render("casa.contract") == (
        "casa.contract:3:10: error: unknown role 'SUPLIER'; expected a role "
        "(ISO, SUPPLIER, DSO, RETAILER, AGGREGATOR) or a participant identifier in quotes "
        "(did you mean SUPPLIER?)"
    )
