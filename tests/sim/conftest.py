"""Worlds shared by the simulator's tests (each is simulated once per session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rxcast.sim import Scenario, default_scenario, simulate

SMALL = Scenario(n_stores=8, n_medications=30, n_days=200, start_day="2025-01-01", seed=11)


@pytest.fixture(scope="session")
def small_world():
    return simulate(SMALL)


@pytest.fixture(scope="session")
def default_world():
    return simulate(default_scenario(seed=7))


def dense(world, column: str) -> np.ndarray:
    """A column as days × (store, medication) pairs; for worlds whose pairs all exist from day 0."""
    values = world.records[column].to_numpy(dtype=float)
    return values.reshape(len(world.days), -1)


def trailing_sum(values: np.ndarray, days: int) -> np.ndarray:
    """Sum over the `days` days ending at each day (NaN until there are enough)."""
    before = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    out = np.full(values.shape, np.nan)
    out[days - 1 :] = before[days:] - before[:-days]
    return out


def plain(records: pd.DataFrame) -> pd.DataFrame:
    """Records with categoricals as plain strings and a fresh index, for comparisons
    across worlds whose category sets differ."""
    categorical = [c for c in records.columns if isinstance(records[c].dtype, pd.CategoricalDtype)]
    return records.astype({c: str for c in categorical}).reset_index(drop=True)
