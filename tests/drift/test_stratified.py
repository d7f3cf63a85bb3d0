"""Like with like: a window is judged against the reference on its own
population (the regions and weekday it holds), so a window of some stores of
an unchanged world raises nothing, while a real regional shift, or a new
region, does. Real profiles and the real engine, on a small synthetic chain
whose regions and weekdays differ as much as pharmacies' do."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.drift.incidents import DATA_DRIFT, Incident
from rxcast.model.profile import build_reference_profile

DAY_MS = 86_400_000
REGIONS = {"north": 4.0, "south": 15.0, "east": 40.0}
STORES = [(f"{region}-{i}", region) for region in REGIONS for i in range(10)]
MEDICATIONS = [f"m{i}" for i in range(60)]
CATEGORICAL = ("store_region",)


def _day(day: int, rng: np.random.Generator, stores=STORES, scale: dict[str, float] | None = None) -> dict:
    """One day of rows: every (store, medication) of `stores`; weekends half as busy."""
    weekday = (day + 3) % 7  # day 0 is a Thursday
    keys = [(s, r, m) for s, r in stores for m in MEDICATIONS]
    region = np.array([r for _, r, _ in keys], dtype=object)
    mean = np.array([REGIONS[r] * (scale or {}).get(r, 1.0) for r in region]) * (0.5 if weekday >= 5 else 1.0)
    demand = rng.poisson(mean).astype(float)
    return {
        "store_ids": np.array([s for s, _, _ in keys], dtype=object),
        "medication_ids": np.array([m for _, _, m in keys], dtype=object),
        "event_ms": np.full(len(keys), day * DAY_MS + 8 * 3_600_000, dtype=np.int64),
        "features": {
            "prescriptions_1d": demand,
            "dispensed_sum_7d": rng.poisson(mean * 7).astype(float),
            "store_region": region,
            "day_of_week": np.full(len(keys), float(weekday)),
        },
        "predictions": mean + rng.normal(0, 0.5, len(keys)),
    }


def _reference(stratified: bool) -> dict:
    rng = np.random.default_rng(1)
    days = [_day(d, rng) for d in range(28)]
    features = {n: np.concatenate([d["features"][n] for d in days]) for n in days[0]["features"]}
    predictions = np.concatenate([d["predictions"] for d in days])
    strata = ("store_region", "day_of_week") if stratified else ()
    return build_reference_profile(features, CATEGORICAL, predictions, strata_by=strata).to_dict()


@pytest.fixture(scope="module")
def references() -> dict[bool, dict]:
    return {stratified: _reference(stratified) for stratified in (True, False)}


def _engine(reference: dict, opened: list[Incident]) -> DriftEngine:
    engine = DriftEngine(
        EngineSettings(window_rows=100_000, ignore_features=("day_of_week",)),
        on_incident=lambda incident: opened.append(incident) or "",
    )
    engine.register_reference(1, reference)
    return engine


def _play(engine: DriftEngine, days: list[dict]) -> list:
    reports = []
    for day in days:
        engine.log_predictions(
            1, day["store_ids"], day["medication_ids"], day["event_ms"], day["features"], day["predictions"]
        )
        reports.append(engine.flush(1))
    return reports


def _drifted(reports) -> set[str]:
    return {f.feature for r in reports for f in [*r.features, *([r.prediction] if r.prediction else [])]
            if f.verdict == "drift"}  # fmt: skip


def test_windows_of_some_stores_on_one_weekday_of_an_unchanged_world_raise_nothing(references):
    rng = np.random.default_rng(2)
    some = [s for s in STORES if s[1] != "east"][:12]  # the quiet regions' stores, on a weekend and weekdays
    days = [_day(d, rng, some) for d in range(28, 40)]
    opened: list[Incident] = []
    engine = _engine(references[True], opened)
    assert _drifted(_play(engine, days)) == set()
    assert engine.list_incidents() == [] and opened == []

    # The same windows against the unstratified reference: the mix of stores and the
    # weekday read as drift, which is what the stratified comparison removes.
    unstratified = _engine(references[False], [])
    assert {"store_region", "prescriptions_1d", "prediction"} <= _drifted(_play(unstratified, days))
    assert unstratified.list_incidents()


def test_a_regional_shift_opens_one_incident_naming_its_features(references):
    rng = np.random.default_rng(3)
    opened: list[Incident] = []
    engine = _engine(references[True], opened)
    _play(engine, [_day(d, rng) for d in range(28, 32)])
    assert engine.list_incidents() == []
    reports = _play(engine, [_day(d, rng, scale={"south": 1.6}) for d in range(32, 36)])
    assert "prescriptions_1d" in _drifted(reports)
    (incident,) = engine.list_incidents()
    assert incident.kind == DATA_DRIFT and {"prescriptions_1d", "dispensed_sum_7d"} <= set(incident.features)
    assert incident.changed_ms == 32 * DAY_MS + 8 * 3_600_000  # the first window of the shift
    assert [i.incident_id for i in opened] == [incident.incident_id]  # a retraining cause: the hook is called once
    histogram = incident.evidence["prescriptions_1d"]["histogram"]
    assert len(histogram["reference"]) == len(histogram["current"]) == len(histogram["bin_edges"]) + 1
    assert any(s["fired"] for s in incident.evidence["prescriptions_1d"]["signals"])


def test_a_new_region_is_drift_of_the_region(references):
    rng = np.random.default_rng(4)
    engine = _engine(references[True], [])
    coastal = [*STORES, *[(f"coastal-{i}", "coastal") for i in range(6)]]
    REGIONS["coastal"] = 15.0
    try:
        reports = _play(engine, [_day(d, rng, coastal) for d in range(28, 31)])
    finally:
        del REGIONS["coastal"]
    assert "store_region" in _drifted(reports)
    assert any("store_region" in i.features for i in engine.list_incidents())
