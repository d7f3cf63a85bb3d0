"""The report's drift timeline stays readable over a run of a hundred model
versions: its windows are drawn per model line, so its legend fits the figure,
and a window of a version no training job names is drawn apart, not lost."""

from __future__ import annotations

import datetime as dt
import warnings

from rxcast.demo import report
from rxcast.demo.ledger import IncidentLog, Ledger, TrainingLog

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _training(version: int, alias: str) -> TrainingLog:
    day = (START + dt.timedelta(days=version)).date()
    return TrainingLog(
        day=day, job_id=f"job-{version}", reason="data cadence", window=("", ""), state="succeeded",
        version=version, promoted=True, error="", wall_seconds=1.0, metrics={}, alias=alias,
    )  # fmt: skip


def _report(version: int, day: int, drifted: int) -> dict:
    end = START + dt.timedelta(days=day + 1)
    return {"model_version": version, "window_end_ms": int(end.timestamp() * 1000), "drifted_features": ["f"] * drifted}


def test_a_hundred_versions_draw_as_two_lines_whose_legend_fits(tmp_path):
    ledger = Ledger(plan_name="many versions", events=[])
    batch = list(range(1, 121, 7))
    ledger.trainings = [_training(v, "batch" if v in batch else "online") for v in range(1, 121)]
    ledger.reports = [_report(v, v, v % 5) for v in range(1, 121)]
    ledger.incidents = [
        IncidentLog("inc-1", "data_drift", "critical", "open", 30, ["f"], "", None, None, (START + dt.timedelta(days=30)).date())
    ]  # fmt: skip
    path = tmp_path / "drift.png"
    with warnings.catch_warnings():
        # matplotlib's only sign that a legend outgrew its figure and was cut off
        warnings.filterwarnings("error", message="Tight layout not applied")
        report._plot_drift(ledger, path)
    assert path.stat().st_size > 10_000


def test_windows_go_to_their_versions_line_and_unknown_versions_are_kept_apart():
    ledger = Ledger(plan_name="lines", events=[])
    ledger.trainings = [_training(2, "batch"), _training(3, "online"), _training(4, "online")]
    ledger.reports = [_report(v, day, 1) for day, v in enumerate((1, 2, 3, 4, 3, 9))]
    lines = report.windows_by_line(ledger)
    assert {line: [r["model_version"] for r in picked] for line, picked in lines.items()} == {
        "online": [3, 4, 3],
        "batch": [2],
        report.OTHER_LINE: [1, 9],
    }
    assert report.windows_by_line(Ledger(plan_name="none", events=[])) == {}
