"""Seasonal activity curves: a regional flu season and pollen season whose
timing and strength vary from year to year, and a summer curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rxcast.sim.catalog import RegionProfile


def region_seasons(
    rng: np.random.Generator, region: RegionProfile, dates: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray]:
    """Flu and pollen activity per date (0 off-season, about 1 at a typical peak)."""
    ordinal = dates.to_numpy().astype("datetime64[D]").astype(np.int64).astype(float)
    years = range(dates[0].year - 1, dates[-1].year + 2)
    flu = np.zeros(len(dates))
    pollen = np.zeros(len(dates))
    for year in years:
        jan1 = float(np.datetime64(f"{year}-01-01", "D").astype(np.int64))
        # A mild or a hard season, a little early or late.
        flu_peak = jan1 + region.flu_peak_day_of_year - 1 + rng.normal(0.0, 10.0)
        flu_width = max(10.0, rng.normal(22.0, 4.0))
        flu += rng.lognormal(np.log(0.8), 0.35) * np.exp(-0.5 * ((ordinal - flu_peak) / flu_width) ** 2)
        pollen_peak = jan1 + region.allergy_peak_day_of_year - 1 + rng.normal(0.0, 7.0)
        pollen += rng.lognormal(np.log(0.8), 0.25) * np.exp(-0.5 * ((ordinal - pollen_peak) / 25.0) ** 2)
    return flu, pollen


def summer(dates: pd.DatetimeIndex) -> np.ndarray:
    """1 in mid-July, 0 in mid-January."""
    return 0.5 * (1.0 + np.cos(2.0 * np.pi * (dates.dayofyear.to_numpy() - 196) / 365.25))
