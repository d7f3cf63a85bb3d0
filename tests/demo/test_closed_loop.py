"""The closed loop through real processes: the short plan opens stores in a
new region; the drift service notices, a retrained model passes the gate, the
online predictor serves it at once, the batch predictor from its next run, and
in between online forecasts beat the batch's."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rxcast.demo import measures
from rxcast.demo.plan import short_plan
from rxcast.demo.report import write_report

os.environ.setdefault("FEAST_USAGE", "False")


@pytest.fixture(scope="module")
def ledger(played):
    return played.ledger


def test_every_played_day_was_served_by_both_modes(ledger):
    plan = short_plan()
    assert len(ledger.days) == plan.days_to_play
    for log in ledger.days:
        assert log.rejected == 0 and log.records == len(log.store_ids)
        assert (log.online.versions > 0).all(), f"{log.day}: online forecasts without a model"
        assert np.isfinite(log.batch.forecasts).all(), f"{log.day}: entities missing from the batch run"
    assert ledger.days[-8].actuals is not None and ledger.days[-7].actuals is None


def test_the_loop_closed_after_the_injected_drift(ledger):
    (event,) = measures.adaptation(ledger)
    assert event.event == "new_region"
    assert event.first_alert_day is not None and event.first_alert_day >= event.day
    assert event.version is not None and event.version > 1, "no model trained after the event was promoted"
    training = next(t for t in ledger.trainings if t.version == event.version)
    assert training.state == "succeeded" and "drift alert" in training.reason
    assert training.online_pickup_seconds is not None
    # The online predictor serves the new champion from the next played day on.
    assert (event.online_day - training.day).days == 1
    # The batch predictor's next run after the promotion uses it.
    next_run = next(r for r in ledger.batch_runs if r.day > training.day)
    assert next_run.state == "succeeded" and next_run.model_version == event.version
    assert event.batch_day == next_run.day


def test_online_beats_batch_until_the_batch_catches_up(ledger):
    (event,) = measures.adaptation(ledger)
    online, batch, days = measures.pooled_mae(ledger, event.online_day, event.batch_day)
    assert days >= 1
    assert online < batch
    before_online, _, _ = measures.pooled_mae(ledger, ledger.days[0].day, event.day)
    after_online, _, _ = measures.pooled_mae(ledger, event.online_day, None)
    during_online, _, _ = measures.pooled_mae(ledger, event.day, event.online_day)
    assert during_online > before_online, "the new region should hurt the old model"
    assert after_online < during_online, "the retrained model should recover"


def test_the_report_is_written(ledger, tmp_path):
    path = write_report(ledger, tmp_path)
    text = path.read_text()
    for section in ("## Online against batch", "## Time to adapt", "## Drift timeline", "## Model versions"):
        assert section in text
    for plot in ("accuracy", "latency", "freshness", "drift", "versions"):
        assert (tmp_path / f"{plot}.png").stat().st_size > 10_000


def test_the_command_rewrites_a_report_from_a_saved_ledger(ledger, tmp_path):
    import pickle
    import subprocess
    import sys

    saved = tmp_path / "ledger.pickle"
    saved.write_bytes(pickle.dumps(ledger))
    done = subprocess.run(
        [sys.executable, "-m", "rxcast.demo", "--from-ledger", str(saved), "--out", str(tmp_path / "report")],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stderr and (tmp_path / "report" / "report.md").exists()
