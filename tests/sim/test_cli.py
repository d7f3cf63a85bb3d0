"""`python -m rxcast.sim`, run as a process the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from rxcast.sim import DRIFT_KINDS, DriftEvent, Scenario, simulate
from rxcast.sim.cli import main
from tests.sim.conftest import plain

SIZE = ["--stores", "3", "--medications", "5", "--days", "40", "--seed", "2"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rxcast.sim", *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def test_help_names_the_drift_kinds():
    done = run("--help")
    assert done.returncode == 0
    assert "--event KIND@DAY" in done.stdout and "concept_change" in done.stdout


def test_kinds_lists_every_kind_with_its_defaults(capsys):
    assert main(["--kinds"]) == 0
    listed = yaml.safe_load(capsys.readouterr().out)
    assert list(listed) == list(DRIFT_KINDS)
    assert listed["unit_change"] == {"field": "units_on_hand", "factor": 10.0, "stores": None}


def test_writes_parquet_and_events_matching_the_library(tmp_path):
    out, events = tmp_path / "records.parquet", tmp_path / "events.json"
    done = run(
        *SIZE,
        "--event",
        "unit_change@30:factor=100",
        "--out",
        str(out),
        "--events-out",
        str(events),
        "--summary",
        "event",
    )
    assert done.returncode == 0, done.stderr
    scenario = Scenario(
        n_stores=3, n_medications=5, n_days=40, seed=2, events=(DriftEvent("unit_change", 30, {"factor": 100}),)
    )
    expected = simulate(scenario).records
    pd.testing.assert_frame_equal(plain(pd.read_parquet(out)), plain(expected))
    assert json.loads(events.read_text())[0]["params"] == {"field": "units_on_hand", "factor": 100.0, "stores": None}
    assert "unit_change" in done.stdout and "wrote 600 records" in done.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_scenario_file_round_trip_and_csv(tmp_path):
    scenario_file = tmp_path / "scenario.yaml"
    dumped = run(*SIZE, "--event", "missing_values@2025-01-20:rate=0.5", "--dump-scenario", "yaml")
    assert dumped.returncode == 0, dumped.stderr
    scenario_file.write_text(dumped.stdout)
    scenario = Scenario.from_yaml(dumped.stdout)
    assert scenario.events == (DriftEvent("missing_values", 19, {"rate": 0.5}),)
    out = tmp_path / "records.csv"
    done = run("--scenario", str(scenario_file), "--out", str(out), "--summary", "day")
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(out)
    assert written["business_day"].iloc[0] == "2025-01-01"
    assert written["prescriptions_written"].isna().mean() == pytest.approx(
        simulate(scenario).records["prescriptions_written"].isna().mean()
    )
    assert "2025-02-09" in done.stdout  # the per-day table reaches the last day


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "meteor@3"], "events[0].kind: must be one of"),
        (["--event", "unit_change@3:factor=-2"], "params.factor: must be > 0.0"),
        (["--out", "records.xlsx"], "--out: must end in .parquet or .csv"),
        (["--scenario", "no-such-file.yaml"], "--scenario: cannot read"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_problem(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*SIZE, *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
