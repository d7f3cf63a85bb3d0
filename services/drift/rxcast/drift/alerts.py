"""Alerts: one per drift episode, a persisted history, and live watchers.

An episode is keyed by (model version, alert kind, feature). A window in
which features start to drift opens their episodes and raises one alert
naming them; later windows in which they still drift extend the episodes
silently; an episode ends after `clean_windows` consecutive scored windows
in which its feature did not fire, and the next firing opens a new one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rxcast.runtime.durable import JsonLines, read_json, write_json

DATA_DRIFT = "data_drift"
PREDICTION_DRIFT = "prediction_drift"
CONCEPT_DRIFT = "concept_drift"
DATA_QUALITY = "data_quality"
KINDS = (DATA_DRIFT, PREDICTION_DRIFT, CONCEPT_DRIFT, DATA_QUALITY)


@dataclasses.dataclass
class Alert:
    alert_id: int
    kind: str
    model_version: int
    features: list[str]
    reason: str
    episode_id: str
    raised_ms: int
    report_id: str = ""
    detector: str = ""
    retrain_job_id: str = ""
    data_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Episode:
    episode_id: str
    alert_id: int
    clean: int = 0
    windows: int = 1


class AlertBook:
    """Alert history, open episodes and watchers (thread-safe)."""

    def __init__(self, directory: Path | None, clean_windows: int):
        self.clean_windows = clean_windows
        self._cond = threading.Condition()
        self._closed = False
        self._file = None if directory is None else JsonLines(directory / "alerts.jsonl")
        self._episodes_path = None if directory is None else directory / "episodes.json"
        self._history = [Alert(**r) for r in (self._file.read() if self._file else [])]
        stored = read_json(self._episodes_path, {}) if self._episodes_path else {}
        self._episodes = {key: Episode(**value) for key, value in stored.items()}

    @staticmethod
    def _key(model_version: int, kind: str, feature: str) -> str:
        return f"{model_version}/{kind}/{feature}"

    @property
    def last_id(self) -> int:
        with self._cond:
            return self._history[-1].alert_id if self._history else 0

    def open_episodes(self, model_version: int, kind: str) -> dict[str, Episode]:
        """The open episodes of a version and kind, by feature."""
        prefix = self._key(model_version, kind, "")
        with self._cond:
            return {k[len(prefix):]: dataclasses.replace(e) for k, e in self._episodes.items() if k.startswith(prefix)}

    def observe(self, model_version: int, kind: str, firing: dict[str, str], *, report_id: str = "",
                data_ms: int = 0, detector: str = "", now_ms: int = 0) -> Alert | None:
        """Record one scored window's outcome for a kind: `firing` maps each
        feature whose signal fired to why. Features without an open episode
        open one, together under one alert (returned); features with one
        extend it; open episodes of features not firing count a clean window."""
        prefix = self._key(model_version, kind, "")
        with self._cond:
            changed = False
            for key in [k for k in self._episodes if k.startswith(prefix) and k[len(prefix):] not in firing]:
                episode = self._episodes[key]
                episode.clean += 1
                if episode.clean >= self.clean_windows:
                    del self._episodes[key]
                changed = True
            new = []
            for feature in firing:
                episode = self._episodes.get(prefix + feature)
                if episode is None:
                    new.append(feature)
                else:
                    episode.clean = 0
                    episode.windows += 1
                    changed = True
            alert = None
            if new:
                alert_id = (self._history[-1].alert_id if self._history else 0) + 1
                reason = "; ".join(f"{f}: {firing[f]}" if firing[f] else f for f in new)
                alert = Alert(alert_id, kind, model_version, sorted(new), reason,
                              f"v{model_version}-{kind}-{alert_id}", now_ms, report_id, detector, "", data_ms)
                for feature in new:
                    self._episodes[prefix + feature] = Episode(alert.episode_id, alert_id)
                self._history.append(alert)
                if self._file is not None:
                    self._file.append(alert.to_dict())
                changed = True
                self._cond.notify_all()
            if changed:
                self._save_episodes()
            return alert

    def set_retrain_job(self, alert_id: int, job_id: str) -> None:
        with self._cond:
            for alert in self._history:
                if alert.alert_id == alert_id:
                    alert.retrain_job_id = job_id
            if self._file is not None:
                self._file.compact([a.to_dict() for a in self._history])
            self._cond.notify_all()

    def list(self, model_version: int = 0, limit: int = 100) -> list[Alert]:
        with self._cond:
            chosen = [a for a in reversed(self._history) if not model_version or a.model_version == model_version]
        return [dataclasses.replace(a) for a in chosen[:limit]]

    def watch(self, after_id: int, active: Callable[[], bool], poll_seconds: float = 0.5) -> Iterator[Alert]:
        """Alerts with ids above `after_id` (-1: none of the past), then new ones live,
        while `active()` holds and the book is open."""
        with self._cond:
            last = (self._history[-1].alert_id if self._history else 0) if after_id < 0 else after_id
        while True:
            with self._cond:
                pending = [dataclasses.replace(a) for a in self._history if a.alert_id > last]
                if not pending:
                    if self._closed or not active():
                        return
                    self._cond.wait(poll_seconds)
                    continue
            for alert in pending:
                yield alert
                last = alert.alert_id

    def close(self) -> None:
        """Wake and end every watcher."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _save_episodes(self) -> None:
        if self._episodes_path is not None:
            write_json(self._episodes_path, {k: dataclasses.asdict(v) for k, v in self._episodes.items()})
