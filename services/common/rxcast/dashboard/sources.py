"""What the pages show, read from the services through the shared clients and
turned into JSON-ready snapshots. A service that is not configured or does not
answer leaves its part of a page empty with the reason, never the whole page."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rxcast.clients.drift import DriftClient
from rxcast.clients.feature import FeatureClient
from rxcast.clients.predictor import PredictorClient
from rxcast.clients.trainer import TrainerClient
from rxcast.dashboard import health, views
from rxcast.dashboard.config import DashboardConfig
from rxcast.dashboard.forecasts import CATALOG_FEATURES, ForecastSources, business_day, store_chart
from rxcast.model.timebase import day_text, today
from rxcast.runtime import metrics_http, tls
from rxcast.runtime.errors import NotFound, RxcastError, Unauthenticated, Unavailable
from rxcast.runtime.healthcheck import check
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.dashboard.sources")

#: Aliases whose history the models page draws.
ALIASES = ("champion", "online", "batch")


def _attempt(what: Callable[[], Any]) -> tuple[Any, str]:
    """(result, "") or (None, why it failed): one service down blanks only its part."""
    try:
        return what(), ""
    except RxcastError as exc:
        return None, exc.message
    except grpc.RpcError as exc:
        return None, f"{exc.code().name}: {exc.details()}"
    except Exception as exc:  # noqa: BLE001 - a page part shows any failure as its reason
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class Entities:
    """Every (store, medication) the feature service knows, by store."""

    by_store: dict[str, np.ndarray] = field(default_factory=dict)
    loaded: float = 0.0


class Sources:
    """The services the dashboard reads, with the caches its pages share."""

    def __init__(self, config: DashboardConfig, trust: tls.Trust | None = None):
        self.config = config
        self.trust = tls.client_trust() if trust is None else trust
        timeout = config.call_timeout_seconds
        self.addresses = {
            "feature": config.feature_address,
            "trainer": config.trainer_address,
            "drift": config.drift_address,
            "predictor-online": config.online_address,
            "predictor-batch": config.batch_address,
        }
        trust = self.trust
        self.feature = (
            FeatureClient(config.feature_address, timeout=timeout, trust=trust) if config.feature_address else None
        )
        self.trainer = (
            TrainerClient(config.trainer_address, timeout=timeout, trust=trust) if config.trainer_address else None
        )
        self.drift = DriftClient(config.drift_address, timeout=timeout, trust=trust) if config.drift_address else None
        self.online = (
            PredictorClient(config.online_address, timeout=timeout, trust=trust) if config.online_address else None
        )
        self.batch = (
            PredictorClient(config.batch_address, timeout=timeout, trust=trust) if config.batch_address else None
        )
        self.metrics_urls = {
            "feature": config.feature_metrics_url,
            "trainer": config.trainer_metrics_url,
            "drift": config.drift_metrics_url,
            "predictor-online": config.online_metrics_url,
            "predictor-batch": config.batch_metrics_url,
        }
        self.forecasts = ForecastSources(
            self.feature, self.online, self.batch, config.history_points, config.batch_runs_shown
        )
        self._entities = Entities()
        self._measured: tuple[float, dict[str, Any]] | None = None

    def close(self) -> None:
        for client in (self.feature, self.trainer, self.drift, self.online, self.batch):
            if client is not None:
                client.close()

    # -- operator actions ------------------------------------------------------

    def _operator(self, token: str) -> tls.Trust:
        """The dashboard's transport with the operator's own token: the service
        decides whether that operator may act, as it would for any caller."""
        if self.trust.plaintext:
            return self.trust
        if not token:
            raise Unauthenticated("an operator's bearer token is required (for example certs/operator.token)")
        return replace(self.trust, token=token)

    def rollback(self, token: str, alias: str, to_version: int, reason: str):
        if not self.config.trainer_address:
            raise Unavailable("no trainer configured")
        with TrainerClient(
            self.config.trainer_address, timeout=self.config.call_timeout_seconds, trust=self._operator(token)
        ) as trainer:
            return trainer.rollback(alias, to_version, reason)

    def acknowledge(self, token: str, incident_id: str, by: str, note: str):
        if not self.config.drift_address:
            raise Unavailable("no drift service configured")
        with DriftClient(
            self.config.drift_address, timeout=self.config.call_timeout_seconds, trust=self._operator(token)
        ) as drift:
            return drift.acknowledge_incident(incident_id, by, note)

    # -- entities ----------------------------------------------------------

    def entities(self) -> Entities:
        """Stores and their medications, from a one-day point-in-time grid
        (every entity known by today), cached for `entities_ttl_seconds`."""
        if self.feature is None:
            return self._entities
        if time.monotonic() - self._entities.loaded < self.config.entities_ttl_seconds and self._entities.by_store:
            return self._entities
        day = day_text(today())
        stores, meds = [], []
        for chunk in self.feature.historical(CATALOG_FEATURES, grid=(day, day)):
            stores.append(chunk.store_ids)
            meds.append(chunk.medication_ids)
        by_store: dict[str, np.ndarray] = {}
        if sum(len(chunk) for chunk in stores):  # no entity yet: no store to split by
            store_ids, medication_ids = np.concatenate(stores), np.concatenate(meds)
            order = np.lexsort((medication_ids, store_ids))
            store_ids, medication_ids = store_ids[order], medication_ids[order]
            names, starts = np.unique(store_ids, return_index=True)
            for name, part in zip(names.tolist(), np.split(medication_ids, starts[1:]), strict=True):
                by_store[name] = part
        self._entities = Entities(by_store, time.monotonic())
        return self._entities

    # -- page snapshots ------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Every service's health, the queues that matter in it and the last
        problem it logged (both from its /metrics), and for the predictors
        the model they serve."""
        rows = []
        for name, address in self.addresses.items():
            if not address:
                rows.append({"service": name, "address": "", "status": "NOT CONFIGURED"})
                continue
            status, error = _attempt(
                lambda a=address: check(a, timeout=self.config.call_timeout_seconds, trust=self.trust)
            )
            row: dict[str, Any] = {"service": name, "address": address, "status": status or "UNREACHABLE"}
            samples, scrape_error = _attempt(lambda n=name: self.scrape(n))
            if samples:
                row["queues"] = health.queue_depths(samples)
                row["last_error"] = health.last_error(samples)
            elif scrape_error and not error:
                error = f"metrics: {scrape_error}"
            if error:
                row["error"] = error
            rows.append(row)
        for name, client in (("predictor-online", self.online), ("predictor-batch", self.batch)):
            if client is None:
                continue
            status, error = _attempt(client.model_status)
            row = next(r for r in rows if r["service"] == name)
            if status is not None:
                model = views.model_status(status)
                model_error = model.pop("last_error")
                row.update(model)
                if model_error and not row.get("last_error"):
                    row["last_error"] = {"level": "error", "message": model_error, "time": None}
            if error and not row.get("error"):
                row["error"] = error
        return {"services": rows}

    def models(self) -> dict[str, Any]:
        if self.trainer is None:
            return {"error": "no trainer configured"}
        versions, error = _attempt(self.trainer.list_versions)
        if versions is None:
            return {"error": error}
        history = []
        for alias in ALIASES:
            changes, _ = _attempt(lambda a=alias: self.trainer.alias_history(a))
            history.extend(views.alias_change(c) for c in changes or ())
        policies, _ = _attempt(self.trainer.policies)
        return {
            "policies": [self._policy(p) for p in policies or ()],
            "versions": [views.model_version(v) for v in versions],
            "aliases": {alias: _alias_target(versions, alias) for alias in ALIASES},
            "history": sorted(history, key=lambda c: c["time"] or ""),
        }

    def _policy(self, status) -> dict[str, Any]:
        """A training policy's state with its newest job's live progress."""
        job = None
        if status.last_job_id:
            job, _ = _attempt(lambda: self.trainer.job(status.last_job_id))
        return views.policy_status(status, job)

    def drift_page(self) -> dict[str, Any]:
        if self.drift is None:
            return {"error": "no drift service configured"}
        incidents, error = _attempt(lambda: self.drift.list_incidents(limit=200))
        if incidents is None:
            return {"error": error}
        reports, _ = _attempt(lambda: self.drift.list_reports(limit=self.config.drift_reports_shown))
        measured, error = _attempt(self.measured_errors)
        return {
            "incidents": [views.incident(i) for i in incidents],
            "reports": [views.drift_report(r) for r in reports or ()],
            "errors": {
                "estimated": views.estimated_errors(reports or ()),
                "measured": measured["by_day"] if measured else [],
                "measured_error": error,
            },
        }

    def measured_errors(self) -> dict[str, Any]:
        """Both modes' errors on the same rows of the watched stores (see
        ForecastSources.paired_errors), overall and per day; read once per
        refresh for the comparison and the drift pages."""
        cached = self._measured
        if cached is not None and time.monotonic() - cached[0] < self.config.refresh_seconds / 2:
            return cached[1]
        stores = sorted(self._entities.by_store)[: self.config.watch_stores]
        measured = self.forecasts.paired_errors(self.forecasts.watched(stores))
        self._measured = (time.monotonic(), measured)
        return measured

    def scrape(self, name: str) -> list[Sample]:
        """A service's Prometheus samples (empty when its metrics URL is not configured)."""
        url = self.metrics_urls.get(name, "")
        if not url:
            return []
        status, text = metrics_http.get(url, self.trust, timeout=self.config.call_timeout_seconds)
        if status != 200:
            raise Unavailable(f"{name} /metrics answered {status}: {text.strip()[:200]}")
        return [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def comparison(self) -> dict[str, Any]:
        """The report's online-against-batch table, live: accuracy on the
        same rows, latency, freshness, model age and cost per mode."""
        versions, _ = _attempt(self.trainer.list_versions) if self.trainer else (None, "")
        window_end = {v.version: v.training_window.end_day for v in versions or ()}
        accuracy = self.measured_errors()
        data_day = accuracy["data_day"]
        modes = {}
        for mode, client, method in (
            ("online", self.online, "Predict"),
            ("batch", self.batch, "GetBatchPredictions"),
        ):
            row: dict[str, Any] = {"mae": accuracy.get(mode), "rows": accuracy.get("rows", 0)}
            status, error = _attempt(client.model_status) if client else (None, "not configured")
            if status is not None:
                row["model_version"] = status.model_version
                end = window_end.get(status.model_version)
                row["model_fitted_through"] = end
                if end and data_day:
                    row["model_age_days"] = _days_between(end, data_day)
            elif error:
                row["error"] = error
            samples, _ = _attempt(lambda m=mode: self.scrape(f"predictor-{m}"))
            if samples:
                row["latency_p50_ms"] = histogram_quantile(samples, "rxcast_rpc_duration_seconds", method, 0.5)
                row["latency_p99_ms"] = histogram_quantile(samples, "rxcast_rpc_duration_seconds", method, 0.99)
                row["cpu_seconds"] = metric_total(samples, "process_cpu_seconds_total")
            modes[mode] = row
        newest_run, _ = _attempt(lambda: self.batch.list_batch_runs(1)) if self.batch else (None, "")
        if newest_run and data_day:
            run_day = business_day(newest_run[0].as_of_time.ToMilliseconds())
            modes["batch"]["forecast_age_days"] = _days_between(run_day, data_day)
            modes["online"]["forecast_age_days"] = 0
        return {"data_day": data_day, "modes": modes}

    def forecast_store(self, store_id: str, medication: str = "", category: str = "") -> dict[str, Any]:
        entities = self.entities()
        meds = entities.by_store.get(store_id)
        if meds is None:
            raise NotFound(f"unknown store {store_id[:64]!r}")
        self.forecasts.watch(store_id)
        catalog = self.forecasts.catalog(store_id, meds)
        self.forecasts.sample_online(catalog)
        chart = store_chart(self.forecasts, catalog, medication, category)
        chart["stores"] = sorted(entities.by_store)
        chart["data_day"] = business_day(catalog.newest_ms) if catalog.newest_ms else None
        return chart

    def watched_stores(self) -> list[str]:
        """Stores viewed recently, then the first `watch_stores` the feature service knows."""
        first = sorted(self.entities().by_store)[: self.config.watch_stores] if self.feature else []
        return self.forecasts.watched(first)

    def sample_watched(self) -> list[str]:
        """Sample the online forecasts of every watched store; the stores whose history changed."""
        changed = []
        stores, error = _attempt(self.watched_stores)
        if error:
            log.warning("listing stores failed", reason=error)
        entities = self._entities
        for store in stores or ():
            meds = entities.by_store.get(store)
            if meds is None:
                continue
            catalog, error = _attempt(lambda s=store, m=meds: self.forecasts.catalog(s, m))
            if catalog is not None:
                grew, error = _attempt(lambda c=catalog: self.forecasts.sample_online(c))
                if grew:
                    changed.append(store)
            if error:
                log.warning("sampling failed", store_id=store[:64], reason=error)
        return changed


def metric_total(samples: list[Sample], name: str) -> float:
    return float(sum(s.value for s in samples if s.name == name))


def histogram_quantile(samples: list[Sample], name: str, method: str, q: float) -> float | None:
    """The upper bound, in ms, of the bucket holding quantile `q` of `method`'s calls."""
    buckets: dict[float, float] = {}
    for s in samples:
        if s.name == f"{name}_bucket" and s.labels.get("method", "").endswith(f"/{method}"):
            bound = float(s.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + s.value
    if not buckets or max(buckets.values()) == 0:
        return None
    total = buckets[max(buckets)]
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound * 1000.0 if np.isfinite(bound) else None
    return None


def _days_between(first: str, last: str) -> int:
    return (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days


def _alias_target(versions, alias: str) -> int:
    return next((v.version for v in versions if alias in v.aliases), 0)
