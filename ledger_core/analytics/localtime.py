"""Where and when a home is: its site, local time of day, and the kind of day.

Analytics works on Unix seconds (like the ledger) and turns them into local
quantities only here, vectorised over numpy arrays:

- the UTC offset of the site's time zone (``zoneinfo``), so daylight-saving
  rules of any period are honoured;
- the 15-minute slot of the local day (0-95), the local calendar day (days since
  1970-01-01) and the weekday (0 = Monday);
- the *day type* used by the consumption model and by the load generator:
  0 weekday, 1 Saturday, 2 Sunday or public holiday (``holidays.Mexico`` by
  default, plus any extra dates a caller names).

The default site is Morelia, Michoacán (the paper's city): 19.7060 N,
101.1950 W, 1920 m, ``America/Mexico_City`` (no daylight saving since 2022).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import numpy as np
import numpy.typing as npt

SLOT: Final = 900  # seconds in an interval
SLOTS_PER_DAY: Final = 96
DAY: Final = 86_400
WEEK: Final = 7 * DAY
WEEKDAY, SATURDAY, SUNDAY_OR_HOLIDAY = 0, 1, 2

type IntArray = npt.NDArray[np.int64]
type FloatArray = npt.NDArray[np.float64]


def whole(values: npt.ArrayLike) -> list[int]:
    """Values rounded to whole numbers, as a list of Python ints (for JSON and SQLite)."""
    return cast(
        "list[int]", np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64).tolist()
    )


@dataclass(frozen=True, slots=True)
class Site:
    """A home's location and PV installation (``kwp`` None: learn it from history)."""

    latitude: float = 19.7060
    longitude: float = -101.1950
    altitude_m: float = 1920.0
    timezone: str = "America/Mexico_City"
    tilt_deg: float = 20.0
    azimuth_deg: float = 180.0
    kwp: float | None = None
    country: str = "MX"
    extra_holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        checks = (
            ("latitude", -90.0 <= self.latitude <= 90.0, "must be between -90 and 90"),
            ("longitude", -180.0 <= self.longitude <= 180.0, "must be between -180 and 180"),
            ("altitude_m", -500.0 <= self.altitude_m <= 9000.0, "must be between -500 and 9000"),
            ("tilt_deg", 0.0 <= self.tilt_deg <= 90.0, "must be between 0 and 90"),
            ("azimuth_deg", 0.0 <= self.azimuth_deg <= 360.0, "must be between 0 and 360"),
        )
        for name, ok, message in checks:
            value = getattr(self, name)
            if not ok or not math.isfinite(value):
                raise ValueError(f"{name}: {message}")
        if self.kwp is not None and not (0.0 < self.kwp <= 500.0):
            raise ValueError("kwp: must be above 0 and at most 500 (distributed generation)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        if self.country not in holidays.list_supported_countries():
            raise ValueError(f"country: no holiday calendar for {self.country!r}")


def utc_offsets(times: IntArray, timezone: str) -> IntArray:
    """Seconds to add to each Unix time to get local wall-clock time.

    Offsets are looked up at each UTC day's edges; only days whose edges differ
    (a daylight-saving change) are looked up quarter-hour by quarter-hour.
    """
    times = np.asarray(times, dtype=np.int64)
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    zone = ZoneInfo(timezone)
    days, inverse = np.unique(times // DAY, return_inverse=True)
    edges = np.fromiter(
        (_offset(int(d) * DAY, zone) for d in np.concatenate([days, days[-1:] + 1])),
        dtype=np.int64,
        count=days.size + 1,
    )
    following = np.fromiter(
        (_offset(int(d + 1) * DAY, zone) for d in days), dtype=np.int64, count=days.size
    )
    result = edges[:-1][inverse.reshape(times.shape)]
    changing = np.isin(times // DAY, days[edges[:-1] != following])
    if changing.any():
        quarters, back = np.unique(times[changing] // SLOT, return_inverse=True)
        table = np.fromiter(
            (_offset(int(q) * SLOT, zone) for q in quarters), dtype=np.int64, count=quarters.size
        )
        result[changing] = table[back]
    out: IntArray = result
    return out


def _offset(t: int, zone: ZoneInfo) -> int:
    offset = dt.datetime.fromtimestamp(t, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def local_times(times: IntArray, timezone: str) -> IntArray:
    """Local wall-clock time as seconds since a local 1970-01-01 00:00."""
    times = np.asarray(times, dtype=np.int64)
    return times + utc_offsets(times, timezone)


def local_days(times: IntArray, timezone: str) -> IntArray:
    """The local calendar day of each time (days since 1970-01-01)."""
    return local_times(times, timezone) // DAY


def slots_of_day(times: IntArray, timezone: str) -> IntArray:
    """The 15-minute slot of the local day (0 = 00:00-00:15) of each time."""
    return (local_times(times, timezone) % DAY) // SLOT


def local_midnight(t: int, timezone: str) -> int:
    """The Unix time at which the local day containing ``t`` began."""
    return midnight(dt.datetime.fromtimestamp(t, ZoneInfo(timezone)).date(), timezone)


def midnight(day: dt.date, timezone: str) -> int:
    """The Unix time of local midnight at the start of ``day``."""
    zone = ZoneInfo(timezone)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


@lru_cache(maxsize=64)
def _holiday_days(country: str, years: tuple[int, ...]) -> frozenset[int]:
    calendar = holidays.country_holidays(country, years=years)
    epoch = dt.date(1970, 1, 1)
    return frozenset((day - epoch).days for day in calendar)


def holiday_days(site: Site, years: Iterable[int]) -> frozenset[int]:
    """Public holidays (and the site's extra dates) as days since 1970-01-01."""
    epoch = dt.date(1970, 1, 1)
    extra = frozenset((day - epoch).days for day in site.extra_holidays)
    return _holiday_days(site.country, tuple(sorted(set(years)))) | extra


def day_types(days: IntArray, site: Site) -> IntArray:
    """0 weekday, 1 Saturday, 2 Sunday or holiday, for local days since 1970-01-01."""
    days = np.asarray(days, dtype=np.int64)
    if days.size == 0:
        return np.zeros(0, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    kinds = np.where(weekday == 6, SUNDAY_OR_HOLIDAY, np.where(weekday == 5, SATURDAY, WEEKDAY))
    first = dt.date(1970, 1, 1) + dt.timedelta(days=int(days.min()))
    last = dt.date(1970, 1, 1) + dt.timedelta(days=int(days.max()))
    holiday = np.fromiter(holiday_days(site, range(first.year, last.year + 1)), dtype=np.int64)
    return np.where(np.isin(days, holiday), SUNDAY_OR_HOLIDAY, kinds).astype(np.int64)
