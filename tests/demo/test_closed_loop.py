"""The closed loop through real processes: the short plan opens stores in a
new region; the drift service notices, the trainer's policies keep the online
alias current every business day and the batch alias every week on their own,
a model fitted on rows from after the event serves online within 10 days, and
in between online forecasts beat the batch's."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rxcast.demo import measures
from rxcast.demo.plan import short_plan
from rxcast.demo.report import write_report

os.environ.setdefault("FEAST_USAGE", "False")

#: The trainer trains every played day (the online alias) and every seventh
#: (the batch alias): the run takes minutes, more than the default timeout.
pytestmark = pytest.mark.timeout(1800)


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
    assert event.first_incident_day is not None and event.first_incident_day >= event.day
    # The trainer, not the player, trained: a policy job of the online alias,
    # fitted on labelled rows from after the event, served online within 10 days.
    assert event.version is not None, "no model fitted on rows from after the event was promoted"
    training = next(t for t in ledger.trainings if t.version == event.version)
    assert training.alias == "online" and training.reason.startswith("policy online: ")
    assert training.trained_through >= event.day
    assert event.online_day is not None and (event.online_day - event.day).days <= 10
    # Trained overnight after business day D, it answers the forecasts asked
    # the morning after D, which the ledger files under D.
    assert event.online_day == training.day


def test_each_predictor_follows_its_own_alias(ledger):
    aliases = {t.version: t.alias for t in ledger.trainings if t.promoted}
    online = {int(v) for log in ledger.days for v in np.unique(log.online.versions)}
    batch = {r.model_version for r in ledger.batch_runs}
    assert {aliases[v] for v in online} == {"online"} and {aliases[v] for v in batch} == {"batch"}
    assert all(r.state == "succeeded" for r in ledger.batch_runs)
    # The online alias refreshes on new business days; the batch alias weekly.
    jobs = {mode: [t for t in ledger.trainings if t.alias == mode] for mode in ("online", "batch")}
    assert len(jobs["online"]) >= len(ledger.days) and len(jobs["batch"]) <= len(ledger.days) // 7 + 2


def test_online_recovers_from_the_event_and_beats_batch(ledger):
    (event,) = measures.adaptation(ledger)
    before_online, _, _ = measures.pooled_mae(ledger, ledger.days[0].day, event.day)
    during_online, _, _ = measures.pooled_mae(ledger, event.day, event.online_day)
    after_online, _, days = measures.pooled_mae(ledger, event.online_day, None)
    assert during_online > before_online, "the new region should hurt the old model"
    assert days >= 1 and after_online < during_online, "the model fitted after the event should recover"
    overall_online, overall_batch, _ = measures.pooled_mae(ledger, ledger.days[0].day, None)
    assert overall_online < overall_batch


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
