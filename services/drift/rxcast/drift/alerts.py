"""Alerts: one per drift episode, a persisted history, and live watchers.

An episode is keyed by (model version, alert kind, feature). A window in
which features start to drift opens their episodes and raises one alert
naming them; later windows in which they still drift extend the episodes
silently; an episode ends after `clean_windows` consecutive scored windows
in which its feature did not fire, and the next firing opens a new one.

Alerts are appended to `alerts.jsonl`; the open episodes are rewritten whole
to `episodes.json` (format EPISODES_FORMAT). A record or file that cannot be
read is skipped or set aside (logged), and the book starts from the rest.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rxcast.runtime.durable import JsonLines, quarantine, read_json, write_json
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.alerts")

DATA_DRIFT = "data_drift"
PREDICTION_DRIFT = "prediction_drift"
CONCEPT_DRIFT = "concept_drift"
DATA_QUALITY = "data_quality"
EPISODES_FORMAT = "rxcast.drift.episodes/1"


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
        self._history = _records(Alert, self._file.read() if self._file else [], "alert")
        self._episodes = self._load_episodes()

    def _load_episodes(self) -> dict[str, Episode]:
        if self._episodes_path is None:
            return {}
        try:
            doc = read_json(self._episodes_path, {"format": EPISODES_FORMAT, "episodes": {}})
            if isinstance(doc, dict) and "format" not in doc:
                doc = {"format": EPISODES_FORMAT, "episodes": doc}  # written before the file had a format
            if not isinstance(doc, dict) or doc.get("format") != EPISODES_FORMAT:
                found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
                raise ValueError(f"format {found!r} is not {EPISODES_FORMAT!r}")
            return {str(key): Episode(**value) for key, value in doc["episodes"].items()}
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            quarantine(self._episodes_path, f"unreadable: {exc}")
            return {}

    @staticmethod
    def _key(model_version: int, kind: str, feature: str) -> str:
        return f"{model_version}/{kind}/{feature}"

    def open_episodes(self, model_version: int, kind: str) -> dict[str, Episode]:
        """The open episodes of a version and kind, by feature."""
        prefix = self._key(model_version, kind, "")
        with self._cond:
            return {k[len(prefix) :]: dataclasses.replace(e) for k, e in self._episodes.items() if k.startswith(prefix)}

    def observe(
        self,
        model_version: int,
        kind: str,
        firing: dict[str, str],
        *,
        report_id: str = "",
        data_ms: int = 0,
        detector: str = "",
        now_ms: int = 0,
    ) -> Alert | None:
        """Record one scored window's outcome for a kind: `firing` maps each
        feature whose signal fired to why. Features without an open episode
        open one, together under one alert (returned); features with one
        extend it; open episodes of features not firing count a clean window."""
        prefix = self._key(model_version, kind, "")
        with self._cond:
            changed = False
            for key in [k for k in self._episodes if k.startswith(prefix) and k[len(prefix) :] not in firing]:
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
                alert = Alert(
                    alert_id,
                    kind,
                    model_version,
                    sorted(new),
                    reason,
                    f"v{model_version}-{kind}-{alert_id}",
                    now_ms,
                    report_id,
                    detector,
                    "",
                    data_ms,
                )
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
            write_json(
                self._episodes_path,
                {"format": EPISODES_FORMAT, "episodes": {k: dataclasses.asdict(v) for k, v in self._episodes.items()}},
            )


def _records(kind: Any, records: list, what: str) -> list:
    """Records of a JSON-lines file as `kind`; one that does not fit is skipped and logged."""
    kept = []
    for number, record in enumerate(records, 1):
        try:
            kept.append(kind(**record))
        except TypeError as exc:
            log.warning("skipping unreadable record", kind=what, record=number, error=str(exc))
    return kept
