"""Prometheus metrics of the trainer (the per-RPC ones come from the runtime)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_FINISHED = Counter("rxcast_trainer_jobs_finished_total", "Training jobs finished, by outcome.", ["outcome"])
JOBS_ACTIVE = Gauge("rxcast_trainer_jobs_active", "Training jobs queued or running.")
JOBS_QUEUED = Gauge("rxcast_trainer_jobs_queued", "Training jobs waiting for a worker.")
TRIGGERS_WAITING = Gauge(
    "rxcast_trainer_triggers_waiting", "Retraining triggers waiting for a job, counted once per alias they name."
)
STAGE_SECONDS = Histogram(
    "rxcast_trainer_stage_seconds",
    "Time a training job spent in each stage.",
    ["stage"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
ROWS_LOADED = Counter("rxcast_trainer_rows_loaded_total", "Training rows loaded from the feature service.")
VERSIONS_PUBLISHED = Counter("rxcast_trainer_versions_published_total", "Model versions published.")
ALIAS_MOVES = Counter("rxcast_trainer_alias_moves_total", "Alias moves, by alias and kind.", ["alias", "kind"])
GATE_DECISIONS = Counter("rxcast_trainer_gate_decisions_total", "Gate decisions, by outcome.", ["outcome"])
LAST_HOLDOUT_METRIC = Gauge(
    "rxcast_trainer_last_holdout_metric",
    "Holdout metrics of the last trained model, the naive baseline and the champion.",
    ["model", "metric"],
)
TRIGGERS = Counter("rxcast_trainer_triggers_total", "Retraining triggers accepted, by kind.", ["kind"])
POLICY_JOBS = Counter("rxcast_trainer_policy_jobs_total", "Training jobs the policies started, by alias.", ["alias"])
