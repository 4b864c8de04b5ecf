"""Tariff files: the shipped examples, every error with its key path, exact prices, TOU days."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.concentrator.tariff import (
    ALL_YEAR,
    PathError,
    Prices,
    Tariff,
    TariffError,
    format_price,
    load_tariff,
    parse_tariff,
    price_decimal,
    price_units,
)
from ledger_core.types.tx import MAX_PRICE

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tariffs"
TOU = DOCS / "example-residential-tou.toml"
BLOCK = DOCS / "example-block-1c.toml"

SMALL = """\
name = "Small"
currency = "MXN"
kind = "time_of_use"
export_price = 1.05
network_fee = 0.4

[periods.base]
import_price = 1.2

[periods.peak]
import_price = 3.5
network_fee = 0.6

[[schedule]]
days = ["all"]
from = "00:00"
to = "18:00"
period = "base"

[[schedule]]
days = ["weekdays"]
from = "18:00"
to = "22:00"
period = "peak"

[[schedule]]
days = ["weekend"]
from = "18:00"
to = "22:00"
period = "base"

[[schedule]]
days = ["all"]
from = "22:00"
to = "24:00"
period = "base"
"""

BLOCKS = """\
name = "Blocks"
currency = "MXN"
kind = "block"
export_price = 1
network_fee = 0.25
reference_kwh = 150

[[blocks]]
name = "basic"
up_to_kwh = 150
import_price = 0.9

[[blocks]]
name = "intermediate"
up_to_kwh = 300
import_price = 1.1

[[blocks]]
name = "excess"
import_price = 3.2
"""


def mx(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    """Unix time of a local time in Mexico City (UTC-6 all year since 2022)."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) + 6 * 3600


def periods_of_day(tariff: Tariff, day: date) -> list[str]:
    start, end = tariff.day_bounds(day)
    return [tariff.rate_at(t).period for t in range(start, end, 900)]


def runs(periods: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for name in periods:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + 1)
        else:
            out.append((name, 1))
    return out


# -- the shipped examples --------------------------------------------------------------


def test_the_time_of_use_example_across_winter_and_summer_days() -> None:
    tariff = load_tariff(TOU)
    assert tariff.timezone == "America/Mexico_City"
    assert (tariff.export_price, tariff.network_fee) == (10_500, 4_130)
    assert tariff.periods["peak"].import_price == 34_520
    # Tuesday 10 March 2026 (winter): base 0-6, intermediate 6-18, peak 18-22, intermediate.
    assert runs(periods_of_day(tariff, date(2026, 3, 10))) == [
        ("base", 24),
        ("intermediate", 48),
        ("peak", 16),
        ("intermediate", 8),
    ]
    # Winter Saturday and Sunday.
    assert runs(periods_of_day(tariff, date(2026, 3, 14))) == [
        ("base", 32),
        ("intermediate", 44),
        ("peak", 8),
        ("intermediate", 12),
    ]
    sunday = periods_of_day(tariff, date(2026, 3, 15))
    assert runs(sunday) == [("base", 72), ("intermediate", 24)]
    # Monday 16 March 2026 is a rest day: it follows the Sunday schedule.
    assert periods_of_day(tariff, date(2026, 3, 16)) == sunday
    assert runs(periods_of_day(tariff, date(2026, 3, 17)))[2] == ("peak", 16)
    # Summer weekday: the peak moves to 20-22.
    assert runs(periods_of_day(tariff, date(2026, 7, 7))) == [
        ("base", 24),
        ("intermediate", 56),
        ("peak", 8),
        ("intermediate", 8),
    ]
    # The local clock, not UTC: 18:00 in Mexico City is midnight UTC.
    assert tariff.rate_at(int(datetime(2026, 3, 11, 0, 0, tzinfo=UTC).timestamp())).period == (
        "peak"
    )
    assert tariff.rate_at(mx(2026, 3, 10, 17, 45)).period == "intermediate"
    rate = tariff.rate_at(mx(2026, 3, 10, 21, 45))
    assert (rate.season, rate.period, rate.prices.import_price) == ("winter", "peak", 34_520)


def test_the_block_example_uses_the_marginal_block_of_the_reference_household() -> None:
    tariff = load_tariff(BLOCK)
    summer = tariff.rate_at(mx(2026, 7, 1, 12))
    assert (summer.season, summer.period, summer.prices.import_price) == (
        "summer",
        "intermediate_low",
        10_690,
    )
    winter = tariff.rate_at(mx(2026, 1, 15, 3))
    assert (winter.season, winter.period, winter.prices.import_price) == (
        "rest_of_year",
        "intermediate",
        13_180,
    )
    # Every interval of a day has the same block price.
    assert set(periods_of_day(tariff, date(2026, 7, 1))) == {"intermediate_low"}
    metadata = tariff.to_json()
    assert metadata["kind"] == "block"
    seasons = metadata["seasons"]
    assert isinstance(seasons, list)
    assert seasons[0] == {
        "name": "summer",
        "months": [5, 6, 7, 8, 9, 10],
        "reference_kwh": 280,
        "marginal_block": "intermediate_low",
        "blocks": [
            {"name": "basic", "up_to_kwh": 150, "import_price": 9_120},
            {"name": "intermediate_low", "up_to_kwh": 300, "import_price": 10_690},
            {"name": "intermediate_high", "up_to_kwh": 450, "import_price": 13_720},
            {"name": "excess", "up_to_kwh": None, "import_price": 32_380},
        ],
    }


@pytest.mark.parametrize(
    ("reference", "block", "price"),
    [(0, "basic", 9_000), (149, "basic", 9_000), (150, "intermediate", 11_000),
     (299, "intermediate", 11_000), (300, "excess", 32_000), (10**6, "excess", 32_000)],
)  # fmt: skip
def test_the_marginal_block_is_the_one_holding_the_next_kwh(
    reference: int, block: str, price: int
) -> None:
    tariff = parse_tariff(BLOCKS.replace("reference_kwh = 150", f"reference_kwh = {reference}"))
    rate = tariff.rate_at(mx(2026, 5, 5, 5))
    assert (rate.season, rate.period, rate.prices) == (
        ALL_YEAR,
        block,
        Prices(price, 10_000, 2_500),
    )


def test_periods_override_the_default_export_price_and_network_fee() -> None:
    tariff = parse_tariff(SMALL)
    peak = tariff.rate_at(mx(2026, 3, 10, 19))
    assert (peak.period, peak.prices.import_price, peak.prices.network_fee) == (
        "peak",
        35_000,
        6_000,
    )
    assert peak.prices.export_price == 10_500
    assert tariff.rate_at(mx(2026, 3, 14, 19)).period == "base"  # Saturday
    assert tariff.to_json()["periods"] == {
        "base": {"import_price": 12_000, "export_price": 10_500, "network_fee": 4_000},
        "peak": {"import_price": 35_000, "export_price": 10_500, "network_fee": 6_000},
    }


def test_a_daylight_saving_zone_has_days_of_23_and_25_hours() -> None:
    tariff = parse_tariff('timezone = "America/Tijuana"\n' + SMALL)
    assert tariff.timezone == "America/Tijuana"
    spring = tariff.day_bounds(date(2026, 3, 8))
    autumn = tariff.day_bounds(date(2026, 11, 1))
    assert spring[1] - spring[0] == 23 * 3600
    assert autumn[1] - autumn[0] == 25 * 3600
    assert len(periods_of_day(tariff, date(2026, 3, 8))) == 92
    assert len(periods_of_day(tariff, date(2026, 11, 1))) == 100
    # The peak is 18:00-22:00 local on both sides of the change (UTC-8, then UTC-7).
    assert tariff.rate_at(utc(2026, 3, 6, 2)).period == "peak"  # Thu 18:00 PST
    assert tariff.rate_at(utc(2026, 3, 10, 1)).period == "peak"  # Mon 18:00 PDT
    assert tariff.rate_at(utc(2026, 3, 10, 0, 45)).period == "base"  # Mon 17:45 PDT


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


# -- errors, each with its key path ---------------------------------------------------------

WINTER_SUMMER = """\
[[seasons]]
name = "summer"
months = [4, 5, 6, 7, 8, 9, 10]

[[seasons]]
name = "winter"
months = [11, 12, 1, 2, 3]
"""

CASES = [
    # (base, old text, new text, key path, message fragment)
    (SMALL, 'currency = "MXN"', 'currency = "USD"', "currency", 'must be "MXN"'),
    (SMALL, 'name = "Small"\n', "", "name", "is missing"),
    (SMALL, 'name = "Small"', 'name = ""', "name", "non-empty string"),
    (SMALL, 'name = "Small"', 'name = "Small"\ncolour = 1', "colour", "is not a known key"),
    (SMALL, 'kind = "time_of_use"', 'kind = "flat"', "kind", "time_of_use"),
    (SMALL, 'name = "Small"', 'name = "S"\ntimezone = "Mars/Olympus"', "timezone", "IANA"),
    (SMALL, 'name = "Small"', 'name = "S"\ntimezone = 5', "timezone", "IANA"),
    (SMALL, "export_price = 1.05", "export_price = 1.00005", "export_price", "4 decimal places"),
    (SMALL, "export_price = 1.05", 'export_price = "1.05"', "export_price", "without quotes"),
    (SMALL, "export_price = 1.05", "export_price = true", "export_price", "must be a number"),
    (SMALL, "network_fee = 0.4", "network_fee = -0.1", "network_fee", "between 0 and 100000"),
    (SMALL, "network_fee = 0.4", "network_fee = 100000.5", "network_fee", "between 0 and"),
    (SMALL, "network_fee = 0.4", "network_fee = nan", "network_fee", "finite"),
    (SMALL, "network_fee = 0.4", "network_fee = inf", "network_fee", "finite"),
    (SMALL, "import_price = 1.2", "colour = 1", "periods.base.import_price", "is missing"),
    (SMALL, "import_price = 1.2", "import_price = 1.2\ncolour = 1", "periods.base.colour",
     "not a known key"),
    (SMALL, "import_price = 3.5", "import_price = 3.55555", "periods.peak.import_price",
     "4 decimal places"),
    (SMALL, "network_fee = 0.6", "network_fee = 0.66666", "periods.peak.network_fee", "decimal"),
    (SMALL, "[periods.peak]", "[periods.Peak]", "periods.Peak", "lower-case letters"),
    (SMALL, 'days = ["weekdays"]', 'days = ["mon", "funday"]', "schedule[1].days[1]",
     "must be one of mon, tue"),
    (SMALL, 'days = ["weekdays"]', 'days = ["mon", "mon"]', "schedule[1].days[1]",
     "listed twice"),
    (SMALL, 'days = ["weekdays"]', "days = []", "schedule[1].days", "at least one weekday"),
    (SMALL, 'days = ["weekdays"]', 'days = "weekdays"', "schedule[1].days", "must be an array"),
    (SMALL, 'from = "00:00"', 'from = "0:00"', "schedule[0].from", '"HH:MM"'),
    (SMALL, 'from = "00:00"', "from = 00:00:00", "schedule[0].from", '"HH:MM"'),
    (SMALL, 'from = "00:00"', 'from = "00:10"', "schedule[0].from", "15-minute boundary"),
    (SMALL, 'from = "00:00"', 'from = "24:00"', "schedule[0].from", "00:00 to 23:45"),
    (SMALL, 'to = "24:00"', 'to = "24:15"', "schedule[3].to", "00:00 to 24:00"),
    (SMALL, 'to = "18:00"', 'to = "00:00"', "schedule[0].to", "crosses midnight"),
    (SMALL, 'period = "peak"', 'period = "mid"', "schedule[1].period", "[periods]"),
    (SMALL, 'from = "18:00"\nto = "22:00"\nperiod = "peak"',
     'from = "17:00"\nto = "22:00"\nperiod = "peak"', "schedule[1]",
     "overlaps schedule[0] on mon at 17:00"),
    (SMALL, 'from = "22:00"', 'from = "22:15"', "schedule", "mon 22:00 has no period"),
    (SMALL, "[periods.peak]", "[periods.spare]\nimport_price = 1\n\n[periods.peak]",
     "periods.spare", "not used by any schedule entry"),
    (SMALL, SMALL[SMALL.index("[periods.base]"):SMALL.index("[[schedule]]")], "periods = 5\n",
     "periods", "must be a table"),
    (SMALL, "[periods.base]", "[periods.base", "", "not valid TOML"),
    (SMALL, 'name = "Small"', 'name = "S"\nreference_kwh = 5', "reference_kwh",
     "block tariffs"),
    (SMALL, "[[schedule]]", "[[blocks]]\nname = \"b\"\nimport_price = 1\n\n[[schedule]]",
     "blocks", "block tariffs"),
    (SMALL, "[periods.base]", WINTER_SUMMER.replace("11, 12", "10, 11, 12") + "[periods.base]",
     "seasons[1].months[0]", "month 10 is already in season summer"),
    (SMALL, "[periods.base]", WINTER_SUMMER.replace("11, 12, ", "11, ") + "[periods.base]",
     "seasons", "month 12 belongs to no season"),
    (SMALL, "[periods.base]", WINTER_SUMMER.replace("months = [11, 12, 1, 2, 3]", "months = []")
     + "[periods.base]", "seasons[1].months", "at least one month"),
    (SMALL, "[periods.base]", WINTER_SUMMER.replace('"winter"', '"summer"') + "[periods.base]",
     "seasons[1].name", "defined twice"),
    (SMALL, "[periods.base]", WINTER_SUMMER.replace("[4, ", "[0, 4, ") + "[periods.base]",
     "seasons[0].months[0]", "between 1 and 12"),
    (SMALL, "[periods.base]", WINTER_SUMMER.replace("\nmonths = [11, 12, 1, 2, 3]", "")
     + "[periods.base]", "seasons[1].months", "is missing"),
    (SMALL.replace("[periods.base]", WINTER_SUMMER + "[periods.base]"), 'from = "22:00"',
     'seasons = ["winter"]\nfrom = "22:00"', "schedule", "mon 22:00 in season summer has no"),
    (SMALL, "[periods.base]", 'seasons = []\n\n[periods.base]', "seasons", "at least one"),
    (SMALL, 'days = ["weekdays"]', 'days = ["weekdays"]\nseasons = ["monsoon"]',
     "schedule[1].seasons[0]", "must be one of all_year"),
    (SMALL, 'name = "Small"', 'name = "S"\nholidays = ["2026-01-01"]', "holidays[0]",
     "must be a date"),
    (SMALL, 'name = "Small"', 'name = "S"\nholidays = [2026-01-01T10:00:00]', "holidays[0]",
     "must be a date"),
    (SMALL, 'name = "Small"', ('name = "S"\nholidays = [2026-01-01, 2026-01-01]\n'
     'holidays_as = "sun"'), "holidays[1]", "listed twice"),
    (SMALL, 'name = "Small"', 'name = "S"\nholidays = [2026-01-01]', "holidays_as", "is missing"),
    (SMALL, 'name = "Small"', 'name = "S"\nholidays_as = "sunday"', "holidays_as",
     "must be one of mon"),
    (SMALL, 'name = "Small"', 'name = "S"\nmarket_band = {below = 0.5}', "market_band.above",
     "is missing"),
    (SMALL, 'name = "Small"', 'name = "S"\nmarket_band = {below = 0.5, above = -1}',
     "market_band.above", "between 0"),
    (SMALL, 'name = "Small"', 'name = "S"\nmarket_band = [1]', "market_band", "must be a table"),
    (SMALL, "[[schedule]]\ndays = [\"all\"]\nfrom = \"00:00\"", ("[[schedule]]\ndays = "
     "[\"all\"]\nfrom = \"00:00\"\nextra = 1"), "schedule[0].extra", "not a known key"),
    (BLOCKS, "up_to_kwh = 300", "up_to_kwh = 100", "blocks[1].up_to_kwh",
     "must be above 150 kWh (blocks[0])"),
    (BLOCKS, "up_to_kwh = 300\n", "", "blocks[2]", "comes after the open block blocks[1]"),
    (BLOCKS, "import_price = 3.2", "import_price = 3.2\nup_to_kwh = 900", "blocks[2].up_to_kwh",
     "must be open"),
    (BLOCKS, "up_to_kwh = 300", "up_to_kwh = 0", "blocks[1].up_to_kwh", "between 1 and"),
    (BLOCKS, 'name = "intermediate"', 'name = "basic"', "blocks[1].name", "defined twice"),
    (BLOCKS, "reference_kwh = 150\n", "", "reference_kwh", "is missing"),
    (BLOCKS, "reference_kwh = 150", "reference_kwh = -1", "reference_kwh", "between 0 and"),
    (BLOCKS, "reference_kwh = 150", "reference_kwh = 1.5", "reference_kwh", "whole number"),
    (BLOCKS, "reference_kwh = 150", 'reference_kwh = 1\nholidays_as = "sun"', "holidays_as",
     "no effect"),
    (BLOCKS, "reference_kwh = 150", "reference_kwh = 1\nschedule = []", "schedule",
     "time_of_use tariffs"),
    (BLOCKS, "import_price = 0.9", "import_price = 0.90001", "blocks[0].import_price",
     "4 decimal places"),
    (BLOCKS, "[[blocks]]\nname = \"basic\"", ("[[blocks]]\nname = \"basic\"\n"
     "seasons = [\"summer\"]"), "blocks[0].seasons[0]", "must be one of all_year"),
    (BLOCKS, "reference_kwh = 150\n", WINTER_SUMMER, "seasons[0].reference_kwh",
     "is missing here and at the top level"),
    (BLOCKS.replace("reference_kwh = 150\n", "reference_kwh = 150\n" + WINTER_SUMMER)
     .replace("[[blocks]]\n", '[[blocks]]\nseasons = ["winter"]\n'), "Blocks", "Blocks",
     "blocks", "season summer has no blocks"),
    (BLOCKS, BLOCKS[BLOCKS.index("[[blocks]]"):], "", "blocks", "is missing"),
    (SMALL, SMALL[SMALL.index("[[schedule]]"):], "", "schedule", "is missing"),
    (SMALL, SMALL[SMALL.index("[periods.base]"):SMALL.index("[[schedule]]")], "", "periods",
     "is missing"),
    (SMALL, SMALL[SMALL.index("[periods.base]"):SMALL.index("[[schedule]]")], "[periods]\n",
     "periods", "at least one period"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "old", "new", "path", "message"), CASES, ids=[f"{c[3]}:{c[4]}" for c in CASES]
)
def test_each_error_names_the_file_the_key_path_and_the_problem(
    base: str, old: str, new: str, path: str, message: str
) -> None:
    assert old in base
    with pytest.raises(TariffError) as info:
        parse_tariff(base.replace(old, new, 1), "tariff.toml")
    assert (info.value.source, info.value.path) == ("tariff.toml", path), info.value
    assert message in info.value.message
    where = f"tariff.toml: {path}: " if path else "tariff.toml: "
    assert str(info.value).startswith(where)


def test_unreadable_files_are_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(TariffError, match=r"missing\.toml: cannot read"):
        load_tariff(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "Tarifa de verano \xe1"\n')
    with pytest.raises(TariffError, match=r"latin\.toml: not UTF-8 at byte 25"):
        load_tariff(latin)
    good = tmp_path / "good.toml"
    good.write_text(SMALL, encoding="utf-8")
    assert load_tariff(good).source == str(good)


def test_the_syntax_error_says_where() -> None:
    with pytest.raises(TariffError) as info:
        parse_tariff("name = \n", "x.toml")
    assert info.value.path == ""
    assert "(at line 1, column 8)" in info.value.message


# -- exact prices ------------------------------------------------------------------------

LIMIT = Decimal(MAX_PRICE).scaleb(-4)


@given(st.decimals(min_value=-LIMIT, max_value=LIMIT, places=4, allow_nan=False))
def test_any_price_with_at_most_4_places_converts_exactly_and_back(value: Decimal) -> None:
    units = price_units(value, low=-MAX_PRICE)
    assert price_decimal(units) == value
    assert Decimal(format_price(units)) == value
    assert price_units(format_price(units), low=-MAX_PRICE) == units
    assert price_units(str(value), low=-MAX_PRICE) == units
    # However it is written: more zeros, an exponent.
    assert price_units(f"{value:.12f}", low=-MAX_PRICE) == units
    assert price_units(f"{value:E}", low=-MAX_PRICE) == units


@given(
    st.decimals(min_value=-LIMIT, max_value=LIMIT, places=4, allow_nan=False),
    st.integers(1, 9),
    st.integers(5, 40),
)
def test_a_fifth_decimal_is_refused_not_rounded(value: Decimal, digit: int, place: int) -> None:
    with localcontext(prec=200):
        finer = value + Decimal(digit).scaleb(-place)
    with pytest.raises(PathError, match="more than 4 decimal places"):
        price_units(finer, "x", low=-MAX_PRICE)


@given(st.one_of(st.text(max_size=30), st.floats(), st.integers(), st.booleans(), st.none()))
def test_any_input_is_a_price_or_a_path_error(value: object) -> None:
    try:
        units = price_units(value, "body.price")
    except PathError as err:
        problem = err
        assert problem.path == "body.price"
    else:
        assert isinstance(value, (int, str))
        assert not isinstance(value, bool)
        assert 0 <= units <= MAX_PRICE


def test_price_bounds_and_formats() -> None:
    assert price_units("100000") == MAX_PRICE
    assert price_units(Decimal("2.34560")) == 23_456
    assert price_units("0E+1000") == 0
    assert price_units(" 1e3 ") == 10_000_000
    assert format_price(-5) == "-0.0005"
    assert format_price(25_000) == "2.5000"
    for bad, message in [
        ("100000.0001", "between 0 and 100000 MXN/kWh"),
        ("-0.0001", "between 0 and"),
        ("1E+30", "between 0 and"),
        ("1E-1000000", "more than 4 decimal places"),
        ("2." + "0" * 5000 + "1", "more than 4 decimal places"),
        ("dos", "is not a number"),
        (2.5, "must be a number"),
    ]:
        with pytest.raises(PathError, match=message):
            price_units(bad)


# -- robustness -------------------------------------------------------------------------------


@given(st.randoms(use_true_random=False), st.integers(1, 6))
def test_mangled_tariff_files_are_tariffs_or_tariff_errors(rng: random.Random, edits: int) -> None:
    text = TOU.read_text(encoding="utf-8")
    pieces = ["", "\n", "=", "[", "]", '"', "0", "-1", "24:00", "peak", "mon", "{", ",", "9.99999"]
    for _ in range(edits):
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(pieces) + text[at + rng.randint(0, 8) :]
    try:
        tariff = parse_tariff(text, "mangled.toml")
    except TariffError as err:
        source = err.source
        assert source == "mangled.toml"
    else:
        assert Counter(periods_of_day(tariff, date(2026, 3, 10))).total() == 96
