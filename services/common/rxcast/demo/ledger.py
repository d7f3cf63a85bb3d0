"""What happened in a demo run, as plain data: per played day the forecasts of
each serving mode with their versions, ages and call latencies; batch runs;
drift incidents (and the deprecated alerts); training jobs; CPU by phase. The
report is computed from this alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from rxcast.sim import HORIZON_DAYS

#: Incident kinds opened by matched actuals: their data days are their
#: forecasts', and their labels came a horizon later.
FROM_LABELS = frozenset({"concept_drift"})


def labels_lag(kind: str) -> dt.timedelta:
    """How long after its data days an incident of `kind` could open: a horizon
    for an error incident, nothing for one judged on the forecasts' inputs."""
    return dt.timedelta(days=HORIZON_DAYS if kind in FROM_LABELS else 0)


@dataclass
class ModeDay:
    """One serving mode's forecasts for every entity of one day."""

    forecasts: np.ndarray
    versions: np.ndarray  # model version behind each forecast (0: none)
    feature_age_s: np.ndarray  # age of the features behind each forecast (NaN: none)
    flags: np.ndarray
    latencies_ms: list[float] = field(default_factory=list)  # one per call


@dataclass
class DayLog:
    index: int  # played day, 0-based
    day: dt.date
    as_of_ms: int
    store_ids: np.ndarray
    medication_ids: np.ndarray
    online: ModeDay
    batch: ModeDay
    batch_as_of_ms: int  # as-of of the batch run served that day
    records: int
    rejected: int
    actuals: np.ndarray | None = None  # demand over the horizon after the day, per entity
    actual_found: np.ndarray | None = None


@dataclass
class BatchRunLog:
    day: dt.date
    run_id: str
    model_version: int
    rows: int
    state: str
    error: str
    wall_seconds: float


@dataclass
class AlertLog:
    alert_id: int
    kind: str
    model_version: int
    features: list[str]
    reason: str
    detector: str
    data_day: dt.date | None
    seen_day: dt.date


@dataclass
class IncidentLog:
    """A drift incident as the drift service's book last showed it."""

    incident_id: str
    kind: str
    severity: str
    status: str
    model_version: int
    features: list[str]
    reason: str
    #: The data day its cause began, and the data day of the window that opened
    #: it; for an incident opened by actuals (concept drift), the day its
    #: labels were complete: the forecasts' day plus the horizon.
    changed_day: dt.date | None
    opened_day: dt.date | None
    #: The played day the player first saw it.
    seen_day: dt.date
    resolution: str = ""
    retrain_job_id: str = ""

    @property
    def day(self) -> dt.date:
        return self.opened_day or self.seen_day


@dataclass
class TrainingLog:
    day: dt.date
    job_id: str
    reason: str
    window: tuple[str, str]
    state: str
    version: int
    promoted: bool
    error: str
    wall_seconds: float
    metrics: dict[str, dict[str, float]]
    #: The last day whose row (and label) the model was fitted on.
    trained_through: dt.date | None = None
    online_pickup_seconds: float | None = None  # wall time from publish to the online predictor serving it
    #: The alias the trainer's policy trained for ("online", "batch").
    alias: str = ""
    #: CPU seconds of the trainer process attributed to the job.
    cpu_seconds: float = 0.0


@dataclass
class Ledger:
    plan_name: str
    events: list[dict]  # the scenario's drift events as they happened
    days: list[DayLog] = field(default_factory=list)
    batch_runs: list[BatchRunLog] = field(default_factory=list)
    alerts: list[AlertLog] = field(default_factory=list)
    incidents: list[IncidentLog] = field(default_factory=list)  # oldest first
    trainings: list[TrainingLog] = field(default_factory=list)
    #: CPU seconds by (phase, process name).
    cpu: dict[tuple[str, str], float] = field(default_factory=dict)
    reports: list[dict] = field(default_factory=list)  # drift reports, oldest first
    seed_seconds: float = 0.0
    seed_records: int = 0
    wall_seconds: float = 0.0

    def __setstate__(self, state: dict) -> None:
        # A ledger pickled before a field existed reads with the field's default.
        for f in fields(self):
            if f.name not in state and f.default_factory is not MISSING:
                state[f.name] = f.default_factory()
        self.__dict__.update(state)

    def add_cpu(self, phase: str, deltas: dict[str, float]) -> None:
        for name, seconds in deltas.items():
            self.cpu[(phase, name)] = self.cpu.get((phase, name), 0.0) + seconds
