"""Price schedules and the day-ahead publisher against a real node and its HTTP API."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import date, time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.client import NodeClient
from ledger_core.clock import ManualClock
from ledger_core.concentrator.ledger import UNAVAILABLE, HttpLedger, NodeLedger
from ledger_core.concentrator.prices import (
    ClearingPriceBand,
    PricePublisher,
    PriceSchedule,
    align_down,
    align_up,
)
from ledger_core.concentrator.tariff import MarketBand, Prices, Rate, load_tariff, parse_tariff
from ledger_core.types.tx import MAX_PRICE, TxType
from tests.concentrator.harness import BLOCK, TOU, live_node, mx
from tests.state.chain import key

TUESDAY_NOON = mx(2026, 3, 10, 12, 0, 5)


def test_a_days_schedule_in_mexico_city() -> None:
    tariff = load_tariff(TOU)
    plan = PriceSchedule(tariff)
    day = plan.day_intervals(date(2026, 3, 10))
    assert (len(day), day[0], day[-1]) == (96, mx(2026, 3, 10, 0), mx(2026, 3, 10, 23, 45))
    schedule = plan.between(day[0], day[-1] + 900)
    assert Counter(p.period for p in schedule) == {"base": 24, "intermediate": 56, "peak": 16}
    assert [p.prices.import_price for p in schedule[71:74]] == [20_480, 34_520, 34_520]
    assert schedule[72].body() == {
        "interval_start": mx(2026, 3, 10, 18),
        "import_price": 34_520,
        "export_price": 10_500,
        "network_fee": 4_130,
    }
    assert schedule[72].to_json()["period"] == "peak"
    # Saturday and Sunday of the same week.
    saturday = plan.between(*load_tariff(TOU).day_bounds(date(2026, 3, 14)))
    sunday = plan.between(*load_tariff(TOU).day_bounds(date(2026, 3, 15)))
    assert Counter(p.period for p in saturday)["peak"] == 8
    assert "peak" not in {p.period for p in sunday}
    # Intervals are aligned: a range that starts mid-interval begins at the next boundary.
    assert plan.intervals(mx(2026, 3, 10, 12, 7), mx(2026, 3, 10, 13)) == [
        mx(2026, 3, 10, 12, 15),
        mx(2026, 3, 10, 12, 30),
        mx(2026, 3, 10, 12, 45),
    ]
    assert (align_down(mx(2026, 3, 10, 12, 14, 59)), align_up(mx(2026, 3, 10, 12, 0, 1))) == (
        mx(2026, 3, 10, 12),
        mx(2026, 3, 10, 12, 15),
    )
    # Day-ahead publication at 12:00 local, the next one strictly after.
    assert plan.next_publication(mx(2026, 3, 10, 11, 59)) == mx(2026, 3, 10, 12)
    assert plan.next_publication(mx(2026, 3, 10, 12)) == mx(2026, 3, 11, 12)
    late = PriceSchedule(tariff, publish_at=time(18, 30))
    assert late.next_publication(mx(2026, 3, 10, 12)) == mx(2026, 3, 10, 18, 30)


def test_days_when_the_clock_changes_have_92_and_100_intervals() -> None:
    text = TOU.read_text(encoding="utf-8").replace("America/Mexico_City", "America/Tijuana")
    plan = PriceSchedule(parse_tariff(text))
    assert len(plan.day_intervals(date(2026, 3, 8))) == 92
    assert len(plan.day_intervals(date(2026, 11, 1))) == 100
    assert len(plan.day_intervals(date(2026, 11, 2))) == 96


def rate(import_price: int) -> Rate:
    return Rate("winter", "peak", Prices(import_price, 10_500, 4_130))


def test_the_clearing_price_moves_the_import_price_within_the_band() -> None:
    band = ClearingPriceBand(MarketBand(below=5_000, above=8_000))
    assert band(0, rate(20_000)) == rate(20_000).prices  # nothing observed yet
    band.observe(23_000)
    assert band(0, rate(20_000)).import_price == 23_000
    band.observe(40_000)
    assert band(0, rate(20_000)).import_price == 28_000
    band.observe(1_000)
    assert band(0, rate(20_000)).import_price == 15_000
    assert band(0, rate(3_000)).import_price == 1_000
    band.observe(-9_000)
    assert band(0, rate(3_000)).import_price == 0
    assert band(0, rate(20_000)).export_price == 10_500


@given(
    st.integers(0, MAX_PRICE),
    st.integers(-MAX_PRICE, MAX_PRICE),
    st.integers(0, MAX_PRICE),
    st.integers(0, MAX_PRICE),
)
def test_the_band_rule_exactly(base: int, clearing: int, below: int, above: int) -> None:
    band = ClearingPriceBand(MarketBand(below, above))
    band.observe(clearing)
    moved = band(0, rate(base)).import_price
    low, high = max(0, base - below), min(MAX_PRICE, base + above)
    assert low <= moved <= high
    assert moved == min(max(clearing, low), high)


async def test_day_ahead_publication_is_complete_and_idempotent(tmp_path: Path) -> None:
    tariff = load_tariff(TOU)
    async with live_node(tmp_path, TUESDAY_NOON) as live:
        publisher = PricePublisher(PriceSchedule(tariff), live.http(), live.clock)
        report = await publisher.catch_up()
        # From the current interval (12:00) to midnight, and all of Wednesday (12:00 has passed).
        assert len(report.published) == 48 + 96
        assert (report.already, report.past, report.failed) == ((), (), ())
        assert report.published[0] == mx(2026, 3, 10, 12)
        assert report.published[-1] == mx(2026, 3, 11, 23, 45)
        body = await live.client.get(
            f"/signals/prices?from={mx(2026, 3, 10, 0)}&to={mx(2026, 3, 12, 0)}"
        )
        on_chain = {row["interval_start"]: row for row in body["prices"]}
        assert sorted(on_chain) == list(report.published)
        for start, row in on_chain.items():
            scheduled = publisher.schedule.price(start).prices
            assert (row["import_price"], row["export_price"], row["network_fee"]) == (
                scheduled.import_price,
                scheduled.export_price,
                scheduled.network_fee,
            )
        assert on_chain[mx(2026, 3, 11, 18)]["import_price"] == 34_520
        height = live.node.height

        again = await publisher.catch_up()
        assert again.published == ()
        assert len(again.already) == 144
        assert live.node.height == height  # nothing was sent
        day = await publisher.publish_day(date(2026, 3, 11))
        assert (day.published, len(day.already)) == ((), 96)

        # Tuesday before noon is past: skipped, not sent (the ledger would refuse it).
        morning = await publisher.publish_day(date(2026, 3, 10))
        assert (len(morning.past), len(morning.already), morning.published) == (48, 48, ())
        assert morning.to_json()["past"] == list(morning.past)


async def test_an_override_replaces_prices_and_later_publication_keeps_it(tmp_path: Path) -> None:
    tariff = load_tariff(TOU)
    async with live_node(tmp_path, TUESDAY_NOON) as live:
        publisher = PricePublisher(PriceSchedule(tariff), live.local(), live.clock)
        first = await publisher.publish(mx(2026, 3, 10, 12), mx(2026, 3, 10, 14))
        assert len(first.published) == 8
        report = await publisher.override(
            mx(2026, 3, 10, 13), mx(2026, 3, 10, 13, 30), import_price=20_000
        )
        assert report.published == (mx(2026, 3, 10, 13), mx(2026, 3, 10, 13, 15))
        prices = await live.local().prices(mx(2026, 3, 10, 12), mx(2026, 3, 10, 14))
        assert prices[mx(2026, 3, 10, 13)] == Prices(20_000, 10_500, 4_130)
        assert prices[mx(2026, 3, 10, 12, 45)] == Prices(20_480, 10_500, 4_130)
        again = await publisher.publish(mx(2026, 3, 10, 12), mx(2026, 3, 10, 14))
        assert (again.published, len(again.already)) == ((), 8)
        assert (await live.local().prices(mx(2026, 3, 10, 13), mx(2026, 3, 10, 13, 1)))[
            mx(2026, 3, 10, 13)
        ].import_price == 20_000
        # An override of the past publishes nothing.
        live.clock.set(mx(2026, 3, 10, 15))
        past = await publisher.override(mx(2026, 3, 10, 13), mx(2026, 3, 10, 14), network_fee=1)
        assert (past.published, len(past.past)) == ((), 4)
        # The block tariff publishes the marginal block's price for every interval.
        blocks = PricePublisher(PriceSchedule(load_tariff(BLOCK)), live.local(), live.clock)
        report = await blocks.publish(mx(2026, 3, 10, 15), mx(2026, 3, 10, 16))
        assert len(report.published) == 4
        prices = await live.local().prices(mx(2026, 3, 10, 15), mx(2026, 3, 10, 16))
        assert {p.import_price for p in prices.values()} == {13_180}
        with pytest.raises(ValueError, match="at most 768 intervals"):
            await blocks.publish(mx(2026, 3, 10, 15), mx(2026, 3, 20, 0))
        with pytest.raises(ValueError, match="at most 768 intervals"):
            await blocks.override(mx(2026, 3, 10, 15), mx(2026, 3, 20, 0))


async def test_refusals_and_an_unreachable_node_are_reported_per_interval(tmp_path: Path) -> None:
    tariff = load_tariff(TOU)
    async with live_node(tmp_path, TUESDAY_NOON) as live:
        outsider = PricePublisher(
            PriceSchedule(tariff), NodeLedger(live.node, key("outsider")), live.clock
        )
        report = await outsider.publish(mx(2026, 3, 10, 12), mx(2026, 3, 10, 12, 30))
        assert report.published == ()
        assert [(t, o.code) for t, o in report.failed] == [
            (mx(2026, 3, 10, 12), "unknown_signer"),
            (mx(2026, 3, 10, 12, 15), "unknown_signer"),
        ]
        assert report.to_json()["failed"][0]["code"] == "unknown_signer"
        # A non-operator participant through the HTTP API: refused by the ledger's rules.
        await live.register_meters(1)
        (outcome,) = await live.http().submit(
            [(TxType.PRICE_SIGNAL, {"interval_start": 1, "import_price": 1, "export_price": 1,
                                    "network_fee": 1})]
        )  # fmt: skip
        assert (outcome.ok, outcome.code) == (False, "misaligned_interval")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = HttpLedger(NodeClient(f"http://127.0.0.1:{port}", "t", timeout=2))
    outcomes = await down.submit([(TxType.PRICE_SIGNAL, {"interval_start": 0})])
    assert [o.code for o in outcomes] == [UNAVAILABLE]
    publisher = PricePublisher(PriceSchedule(tariff), down, ManualClock(TUESDAY_NOON))
    with pytest.raises(OSError, match="Cannot connect"):
        await publisher.publish(mx(2026, 3, 10, 12), mx(2026, 3, 10, 13))
