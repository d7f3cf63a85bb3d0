"""The forecast page's data: for one store, the online and the batch forecasts
over time with their model versions and flags, and the actuals as they arrive.

Online forecasts are sampled by the dashboard itself (a `dry_run` Predict, not
logged as production traffic) once per data day for each watched store, as of
the newest feature the store has; the batch forecasts are the batch runs' own,
read back by lookup. Both are kept in bounded caches: the dashboard holds no
state the services do not."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from rxcast.clients.feature import FeatureClient
from rxcast.clients.predictor import PredictorClient
from rxcast.dashboard.views import flag_names
from rxcast.model.timebase import as_of_day, day_text
from rxcast.predictor.v1.predictor_pb2 import BATCH_RUN_STATE_SUCCEEDED as SUCCEEDED

#: How long an answer of actuals not all elapsed yet is reused before asking again.
INCOMPLETE_SECONDS = 10.0

#: Features read to learn a store's newest data instant and its catalogue.
CATALOG_FEATURES = ("medication_category", "store_region")


def business_day(instant_ms: int) -> str:
    """The business day a forecast made at `instant_ms` stands on."""
    return day_text(int(as_of_day(instant_ms)))


@dataclass(frozen=True)
class Sample:
    """Forecasts for every medication of one store, made as of one instant."""

    as_of_ms: int
    medication_ids: np.ndarray
    forecasts: np.ndarray
    flags: np.ndarray
    versions: np.ndarray


@dataclass
class StoreCatalog:
    """A store's medications, their categories, and its region."""

    store_id: str
    medication_ids: np.ndarray
    categories: np.ndarray
    region: str
    newest_ms: int


class SampleCache:
    """Bounded per-store histories of samples, one per as-of day (the newest
    sample of a day wins: a model promoted during the day replaces it)."""

    def __init__(self, points: int):
        self.points = points
        self._lock = threading.Lock()
        self._by_store: dict[str, OrderedDict[str, Sample]] = {}

    def add(self, store_id: str, sample: Sample) -> bool:
        """Whether the history changed."""
        day = business_day(sample.as_of_ms)
        with self._lock:
            history = self._by_store.setdefault(store_id, OrderedDict())
            old = history.get(day)
            if old is not None and np.array_equal(old.forecasts, sample.forecasts, equal_nan=True):
                return False
            history[day] = sample
            history.move_to_end(day)
            while len(history) > self.points:
                history.popitem(last=False)
            return True

    def samples(self, store_id: str) -> list[Sample]:
        with self._lock:
            return sorted(self._by_store.get(store_id, {}).values(), key=lambda s: s.as_of_ms)


class ForecastSources:
    """Reads and caches what the forecast chart of a store needs."""

    def __init__(
        self,
        feature: FeatureClient | None,
        online: PredictorClient | None,
        batch: PredictorClient | None,
        points: int,
        runs_shown: int,
    ):
        self.feature = feature
        self.online = online
        self.batch = batch
        self.runs_shown = runs_shown
        self.samples = SampleCache(points)
        self._batch_cache: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self._actuals_cache: OrderedDict[tuple[str, int], tuple[float | None, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        #: Stores someone looked at recently, with when: the poller samples these.
        self._watched: dict[str, float] = {}

    # -- what is watched -------------------------------------------------

    def watch(self, store_id: str) -> None:
        with self._lock:
            self._watched[store_id] = time.monotonic()

    def watched(self, always: list[str] = (), for_seconds: float = 600.0, most: int = 20) -> list[str]:
        """The stores viewed in the last `for_seconds` (the most recent `most`), then `always`."""
        now = time.monotonic()
        with self._lock:
            for store, seen in list(self._watched.items()):
                if now - seen > for_seconds:
                    del self._watched[store]
            viewed = sorted(self._watched, key=self._watched.__getitem__, reverse=True)[:most]
        return viewed + [s for s in always if s not in viewed]

    # -- reading ---------------------------------------------------------

    def catalog(self, store_id: str, medication_ids: np.ndarray) -> StoreCatalog:
        """The store's medications with their category and the newest instant
        any of their features was observed at."""
        meds = np.asarray(medication_ids, dtype=str)
        columns = self.feature.online(np.full(meds.size, store_id), meds, CATALOG_FEATURES)
        categories = columns.values["medication_category"]
        regions = columns.values["store_region"]
        newest = columns.newest_ms()
        present_regions = [r for r in np.asarray(regions, dtype=object) if isinstance(r, str) and r]
        return StoreCatalog(
            store_id=store_id,
            medication_ids=meds,
            categories=np.asarray([c if isinstance(c, str) else "" for c in categories], dtype=str),
            region=present_regions[0] if present_regions else "",
            newest_ms=int(newest.max()) if newest.size and newest.max() > 0 else 0,
        )

    def sample_online(self, catalog: StoreCatalog) -> bool:
        """Ask the online predictor for the store's forecasts as of its newest
        data, without logging them; whether the history changed."""
        if self.online is None or not catalog.newest_ms or not catalog.medication_ids.size:
            return False
        meds = catalog.medication_ids
        answer = self.online.predict(np.full(meds.size, catalog.store_id), meds, catalog.newest_ms, dry_run=True)
        sample = Sample(
            as_of_ms=catalog.newest_ms,
            medication_ids=meds,
            forecasts=np.asarray(answer.forecasts, dtype=float),
            flags=np.asarray(answer.flags, dtype=np.uint32),
            versions=np.full(meds.size, answer.model_version, dtype=np.int64),
        )
        return self.samples.add(catalog.store_id, sample)

    def batch_series(self, catalog: StoreCatalog) -> list[dict]:
        """The store's forecasts from each of the newest succeeded batch runs."""
        if self.batch is None:
            return []
        runs = [r for r in self.batch.list_batch_runs(self.runs_shown) if r.state == SUCCEEDED]
        found = []
        for run in runs:
            key = (run.run_id, catalog.store_id)
            with self._lock:
                cached = self._batch_cache.get(key)
            if cached is None:
                meds = catalog.medication_ids
                answer = self.batch.batch_predictions(np.full(meds.size, catalog.store_id), meds, run.run_id)
                cached = {
                    "as_of_ms": run.as_of_time.ToMilliseconds(),
                    "forecasts": np.where(np.asarray(answer.found), np.asarray(answer.forecasts), np.nan),
                    "flags": np.asarray(answer.flags, dtype=np.uint32),
                    "version": answer.model_version,
                }
                with self._lock:
                    self._batch_cache[key] = cached
                    while len(self._batch_cache) > 2000:
                        self._batch_cache.popitem(last=False)
            found.append(cached)
        return sorted(found, key=lambda r: r["as_of_ms"])

    def actuals(self, store_id: str, medication_ids: np.ndarray, as_of_ms: int) -> np.ndarray:
        """Demand over the horizon after `as_of_ms` per medication; NaN until
        it has elapsed. Complete answers are kept; incomplete ones are asked
        again after `INCOMPLETE_SECONDS`."""
        key = (store_id, as_of_ms)
        with self._lock:
            cached = self._actuals_cache.get(key)
        if cached is not None and cached[1].size == medication_ids.size:
            asked, values = cached
            if asked is None or time.monotonic() - asked < INCOMPLETE_SECONDS:
                return values
        values = self.feature.actuals(
            np.full(medication_ids.size, store_id), medication_ids, np.full(medication_ids.size, as_of_ms)
        ).values
        complete = bool(np.isfinite(values).all())
        with self._lock:
            self._actuals_cache[key] = (None if complete else time.monotonic(), values)
            while len(self._actuals_cache) > 5000:
                self._actuals_cache.popitem(last=False)
        return values

    def paired_errors(self, stores: list[str]) -> dict:
        """MAE of each mode on the same rows, as the app is served: on each
        data day an online forecast was sampled, the online forecast and the
        newest batch run's forecast of that day are both judged against the
        demand over the horizon after the day (once it has elapsed). Over all
        days and per day, with the newest data day sampled."""
        by_day: dict[str, dict[str, list[np.ndarray]]] = {}
        newest = 0
        for store in stores:
            samples = self.samples.samples(store)
            if not samples:
                continue
            newest = max(newest, samples[-1].as_of_ms)
            meds = samples[-1].medication_ids
            plain = StoreCatalog(store, meds, np.full(meds.size, ""), "", samples[-1].as_of_ms)
            runs = self.batch_series(plain)
            run_days = np.asarray([as_of_day(r["as_of_ms"]) for r in runs], dtype=np.int64)
            for sample in samples:
                served = np.searchsorted(run_days, as_of_day(sample.as_of_ms), side="right") - 1
                if served < 0 or not np.array_equal(sample.medication_ids, meds):
                    continue
                batch = runs[served]["forecasts"]
                actual = self.actuals(store, meds, sample.as_of_ms)
                both = np.isfinite(actual) & np.isfinite(sample.forecasts) & np.isfinite(batch)
                day = by_day.setdefault(business_day(sample.as_of_ms), {"online": [], "batch": []})
                day["online"].append(np.abs(sample.forecasts - actual)[both])
                day["batch"].append(np.abs(batch - actual)[both])
        return {"data_day": business_day(newest) if newest else None, **mean_errors(by_day)}


def mean_errors(by_day: dict[str, dict[str, list[np.ndarray]]]) -> dict:
    """Each mode's MAE over every day's absolute errors (with the rows
    judged), and per day the days with any row, in day order."""
    modes = ("online", "batch")
    every = {mode: [e for errors in by_day.values() for e in errors[mode]] for mode in modes}
    rows = int(sum(e.size for e in every["online"]))
    result: dict = {"rows": rows}
    for mode in modes:
        result[mode] = float(np.concatenate(every[mode]).mean()) if rows else None
    result["by_day"] = []
    for day in sorted(by_day):
        errors = {mode: np.concatenate(by_day[day][mode]) for mode in modes}
        if errors["online"].size:
            result["by_day"].append(
                {"day": day, "rows": int(errors["online"].size), **{m: float(errors[m].mean()) for m in modes}}
            )
    return result


def _select(catalog: StoreCatalog, medication_ids: np.ndarray, medication: str, category: str) -> np.ndarray:
    """Which of `medication_ids` the chart sums: one medication, a category, or all."""
    if medication:
        return medication_ids == medication
    if category:
        by_med = dict(zip(catalog.medication_ids.tolist(), catalog.categories.tolist(), strict=True))
        return np.asarray([by_med.get(m, "") == category for m in medication_ids.tolist()], dtype=bool)
    return np.ones(medication_ids.size, dtype=bool)


def _point(as_of_ms: int, forecasts, flags, versions, actuals, chosen) -> dict:
    """One chart point: the chosen medications' summed forecast and actual."""
    f = np.asarray(forecasts)[chosen]
    a = np.asarray(actuals)[chosen]
    combined_flags = int(np.bitwise_or.reduce(np.asarray(flags, dtype=np.uint32)[chosen])) if chosen.any() else 0
    return {
        "day": business_day(as_of_ms),
        "forecast": float(np.nansum(f)) if np.isfinite(f).any() else None,
        "actual": float(a.sum()) if a.size and np.isfinite(a).all() else None,
        "flags": flag_names(combined_flags),
        "versions": sorted({int(v) for v in np.asarray(versions)[chosen].tolist()}),
    }


def store_chart(sources: ForecastSources, catalog: StoreCatalog, medication: str = "", category: str = "") -> dict:
    """Both modes' series for the store (one medication, a category, or all)."""
    online = []
    for sample in sources.samples.samples(catalog.store_id):
        chosen = _select(catalog, sample.medication_ids, medication, category)
        actuals = sources.actuals(catalog.store_id, sample.medication_ids, sample.as_of_ms)
        online.append(_point(sample.as_of_ms, sample.forecasts, sample.flags, sample.versions, actuals, chosen))
    batch = []
    for run in sources.batch_series(catalog):
        chosen = _select(catalog, catalog.medication_ids, medication, category)
        actuals = sources.actuals(catalog.store_id, catalog.medication_ids, run["as_of_ms"])
        versions = np.full(catalog.medication_ids.size, run["version"])
        batch.append(_point(run["as_of_ms"], run["forecasts"], run["flags"], versions, actuals, chosen))
    return {
        "store_id": catalog.store_id,
        "region": catalog.region,
        "medication": medication,
        "category": category,
        "medications": catalog.medication_ids.tolist(),
        "categories": sorted({c for c in catalog.categories.tolist() if c}),
        "online": online,
        "batch": batch,
    }
