"""Clear-sky irradiance on a home's PV array, from ``pvlib``, on plain arrays.

The chain is pvlib's: NREL SPA solar position (``pvlib.spa``, numpy), Kasten-
Young air mass, the Ineichen-Perez clear-sky model with the climatological
Linke turbidity of the site (pvlib's monthly table, interpolated by day of
year), and the isotropic sky model onto the tilted plane. Only pvlib's
array-level functions are used: they take Unix seconds and numpy arrays, need no
pandas index, and so stay fast and free of pandas deprecation noise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd
from pvlib import atmosphere, clearsky, irradiance, spa

from ledger_core.analytics.localtime import FloatArray, IntArray, Site

DELTA_T: Final = 69.0  # seconds, TT - UT1 in the 2020s
MID_MONTH_DOY: Final = np.array([15, 45, 74, 105, 135, 166, 196, 227, 258, 288, 319, 349], float)


@lru_cache(maxsize=32)
def monthly_linke_turbidity(latitude: float, longitude: float) -> tuple[float, ...]:
    """pvlib's climatological Linke turbidity for the twelve months at a place."""
    months = pd.DatetimeIndex([f"2025-{m:02d}-15" for m in range(1, 13)], tz="UTC")
    values = clearsky.lookup_linke_turbidity(months, latitude, longitude, interp_turbidity=False)
    return tuple(float(v) for v in np.asarray(values))


def _day_of_year(times: IntArray) -> FloatArray:
    """Fractional day of year (1 = 1 January 00:00 UTC), ignoring leap-year drift."""
    result: FloatArray = ((times / 86_400.0) % 365.2425) + 1.0
    # 1970-01-01 is day 1; a tropical-year modulus keeps the phase within a day.
    return result


def clear_sky(times: IntArray, site: Site) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Clear-sky plane-of-array irradiance (W/m2), GHI and the apparent zenith (degrees)."""
    unixtime = np.asarray(times, dtype=np.float64)
    pressure = float(atmosphere.alt2pres(site.altitude_m))
    position = spa.solar_position(
        unixtime,
        site.latitude,
        site.longitude,
        site.altitude_m,
        pressure / 100.0,  # hPa
        20.0,
        DELTA_T,
        0.5667,
        numthreads=0,
    )
    apparent_zenith, zenith, azimuth = position[0], position[1], position[4]
    doy = _day_of_year(np.asarray(times, dtype=np.int64))
    monthly = np.array(monthly_linke_turbidity(site.latitude, site.longitude))
    linke = np.interp(
        doy, np.concatenate([[MID_MONTH_DOY[-1] - 365], MID_MONTH_DOY, [MID_MONTH_DOY[0] + 365]]),
        np.concatenate([[monthly[-1]], monthly, [monthly[0]]]),
    )  # fmt: skip
    # Below the horizon the models divide by cos(zenith) = 0 and yield inf or NaN,
    # which are zeroed below.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        airmass = atmosphere.get_absolute_airmass(
            atmosphere.get_relative_airmass(apparent_zenith), pressure
        )
        dni_extra = irradiance.get_extra_radiation(doy)
        sky = clearsky.ineichen(apparent_zenith, airmass, linke, site.altitude_m, dni_extra)
        ghi = np.nan_to_num(np.asarray(sky["ghi"], dtype=np.float64))
        dni = np.nan_to_num(np.asarray(sky["dni"], dtype=np.float64))
        dhi = np.nan_to_num(np.asarray(sky["dhi"], dtype=np.float64))
        total = irradiance.get_total_irradiance(
            site.tilt_deg, site.azimuth_deg, zenith, azimuth, dni, ghi, dhi, model="isotropic"
        )
    poa = np.clip(np.nan_to_num(np.asarray(total["poa_global"], dtype=np.float64)), 0.0, None)
    poa[apparent_zenith >= 90.0] = 0.0
    return poa, ghi, np.asarray(apparent_zenith, dtype=np.float64)


def clear_sky_poa(times: IntArray, site: Site) -> FloatArray:
    """Clear-sky plane-of-array irradiance (W/m2) at the given instants."""
    return clear_sky(times, site)[0]
