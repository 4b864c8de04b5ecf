"""Short rolling-origin backtests: the model beats the seasonal naive baseline."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ledger_core.analytics import backtest
from ledger_core.analytics.backtest import (
    END_MARK,
    START_MARK,
    meter_series,
    origins_for,
    run,
    synthetic_series,
    tmy_pv_series,
    write_into,
)
from ledger_core.analytics.localtime import Site


def test_model_beats_seasonal_naive_on_the_synthetic_household() -> None:
    """Eight weeks: four of warm-up, then a 48-hour forecast every day."""
    series = synthetic_series(58, seed=7)
    consumption = run(series, Site(), "consumption", data="synthetic", warmup_days=28)
    assert consumption.origins == 28
    assert consumption.overall.skill > 0.15
    for bucket in consumption.buckets:
        assert bucket.model.mae < bucket.naive.mae, bucket
        assert bucket.model.wape < bucket.naive.wape, bucket
    assert consumption.overall.model.mape < consumption.overall.naive.mape
    assert 0.6 < consumption.overall.coverage < 0.95
    production = run(series, Site(), "production", data="synthetic", warmup_days=28)
    assert production.overall.skill > 0.1
    table = production.table()
    assert table.count("\n") == 6
    assert "| 0-48 h |" in table


def test_model_beats_seasonal_naive_on_the_meter_household() -> None:
    """The meter simulator's home is regular: last week is a strong baseline there."""
    series = meter_series(58, seed=3)
    result = run(series, Site(), "consumption", data="meter", warmup_days=28)
    assert result.overall.model.mae < result.overall.naive.mae
    assert result.overall.model.mae < result.overall.persistence.mae


def test_real_irradiance_series_and_pv_backtest() -> None:
    series, site = tmy_pv_series(kwp=3.0)
    assert site.latitude == pytest.approx(25.8)
    assert site.timezone == "Etc/GMT+5"
    assert series.t.size == 2 * 365 * 96
    pv = series.pv_wh[: 365 * 96]
    assert (pv >= 0).all()
    # Miami: about 1,300-1,700 kWh per kWp and year on a 20-degree south-facing array.
    assert 1300 < pv.sum() / 1000 / 3.0 < 1700
    hours = ((series.t[: 365 * 96] - 5 * 3600) % 86_400) // 3600  # local standard time
    assert pv[(hours < 5) | (hours >= 21)].max() == 0
    short = series.rows(120 * 96, 178 * 96)
    result = run(short, site, "production", data="tmy", warmup_days=28)
    assert result.overall.skill > 0.1


def test_origins_move_through_the_day() -> None:
    origins = origins_for(40 * 96, warmup_days=28)
    # Day 28 at 00:00, day 29 at 07:00, day 30 at 14:00, ... while 48 hours still fit.
    assert origins == [day * 96 + 4 * ((7 * k) % 24) for k, day in enumerate(range(28, 38))]
    assert origins[-1] + 192 <= 40 * 96
    with pytest.raises(ValueError, match="too short"):
        run(synthetic_series(20, 1), Site(), "consumption", data="x", warmup_days=28)


def test_report_is_written_between_markers(tmp_path: Path) -> None:
    doc = tmp_path / "analytics.md"
    doc.write_text(f"# A\n\nbefore\n{START_MARK}\nold\n{END_MARK}\nafter\n", encoding="utf-8")
    write_into(doc, "new table\n")
    assert doc.read_text(encoding="utf-8") == (
        f"# A\n\nbefore\n{START_MARK}\nnew table\n{END_MARK}\nafter\n"
    )
    other = tmp_path / "other.md"
    other.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        write_into(other, "x")


def test_command_line_runs_every_backtest_and_writes_the_report(tmp_path: Path) -> None:
    doc = tmp_path / "analytics.md"
    doc.write_text(f"{START_MARK}\n{END_MARK}\n", encoding="utf-8")
    out = io.StringIO()
    code = backtest.main(["--days", "7", "--quiet", "--write", str(doc)], out)
    text = doc.read_text(encoding="utf-8")
    # The exit status says whether the model beat the baseline everywhere.
    assert code == (1 if "% higher" in text else 0)
    assert text.count("| 0-48 h |") == 5
    assert "--days 7 --write docs/analytics.md" in text
    assert "Miami TMY2" in text
    assert out.getvalue() in text
    with pytest.raises(SystemExit):
        backtest.main(["--days", "3"], out)
