"""Evaluate drift detection and print the results as markdown tables.

    .venv/bin/python bench/drift_evaluate.py [--part sim|synthetic|all] [--seeds 5]

(a) On the simulator (rxcast.sim): for each drift kind, a world with that
drift injected on day 400 (35 days into the monitored period). Features are
the feature service's derived features (rxcast.feature.derive) plus the
medication category and store region; a LightGBM demand model (7-day
horizon) is trained in-process on the 100 days before the monitored period,
its holdout errors and training data make the reference profile, and every
monitored day is logged to a DriftEngine (one window per day), with each
day's actuals arriving 7 days later. Reported: the day the first alert came
after injection, which kind of alert and which signals fired, alerts before
the injection, and the alerts over a long run with no drift at all.

(b) On synthetic concept-drift streams (rxcast.drift.synthetic): a LightGBM
classifier trained on the first concept, its 0/1 errors monitored by each
detector. Reported per detector: the median detection delay after the drift
starts, misses, and false alarms per 10,000 samples of drift-free stream.

It composes the feature service's derivation with the drift engine offline,
in one process, so it lives beside the benchmarks rather than in either service.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import lightgbm as lgb
import numpy as np
import pandas as pd
from river import drift as river_drift

from rxcast.drift import synthetic
from rxcast.drift.alerts import Alert
from rxcast.drift.detectors import DETECTORS, DetectorSettings, ErrorStreamMonitor
from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.feature.derive import derive_rows
from rxcast.feature.history import RecordHistory
from rxcast.feature.records import RecordBatch
from rxcast.model.profile import build_reference_profile
from rxcast.model.residuals import forecast_residuals
from rxcast.runtime.logs import configure_logging
from rxcast.sim import DRIFT_KINDS, DriftEvent, Scenario, default_scenario, simulate

DAY_MS = 86_400_000
CATEGORICAL = ("medication_category", "store_region")
#: Calendar position features: they move with the calendar by construction.
NOT_MODELLED = ("day_of_year", "week_of_year")
#: Modelled but not monitored: constant within a daily window by construction.
NOT_MONITORED = ("day_of_week",)
HORIZON = 7
INJECTION_DAY = 400
HISTORY_DAYS = 365
#: The first 28 days of a world fill the 28-day aggregates: not trained on.
FIRST_TRAIN_DAY = 28
#: Windows are a week of event time: a weekly cycle is the world's own rhythm.
WINDOW_DAYS = 7
#: Time blocks of the training days whose out-of-fold errors are the reference errors.
ERROR_FOLDS = 3
LGB_PARAMS = {
    "objective": "poisson",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "verbose": -1,
    "num_threads": 2,
    "seed": 1,
}


# ---------------------------------------------------------------- (a) simulator


def world_frame(scenario: Scenario) -> pd.DataFrame:
    """One row per record: derived features, categories, the day index and the 7-day target."""
    world = simulate(scenario)
    records = world.records
    columns = {c: records[c].to_numpy() for c in records.columns if c != "business_day"}
    for name in ("store_id", "medication_id", *CATEGORICAL):
        columns[name] = records[name].astype(str).to_numpy()
    columns["business_day"] = records["business_day"].dt.strftime("%Y-%m-%d").to_numpy()
    batch, _ = RecordBatch.from_columns(columns)
    history = RecordHistory()
    history.upsert(batch)
    codes = history.all_codes()
    derived = derive_rows(history, codes, history.first_day(codes), history.last_day(codes))
    first_epoch_day = int(world.days[0].value // (DAY_MS * 1_000_000))
    frame = pd.DataFrame(
        {name: values.astype(float) for name, values in derived.features.items() if name not in NOT_MODELLED}
    )
    frame["store_id"] = history.store_ids(derived.codes).astype(str)
    frame["medication_id"] = history.medication_ids(derived.codes).astype(str)
    frame["day"] = derived.days - first_epoch_day
    keys = pd.DataFrame(
        {
            "store_id": columns["store_id"],
            "medication_id": columns["medication_id"],
            "day": (records["business_day"] - world.days[0]).dt.days.to_numpy(),
            **{c: columns[c] for c in CATEGORICAL},
        }
    )
    frame = frame.merge(keys, on=["store_id", "medication_id", "day"], how="left")
    frame["business_day"] = world.days[frame["day"].to_numpy()]
    frame["target"] = world.actuals(frame[["store_id", "medication_id", "business_day"]], HORIZON).to_numpy()
    frame["event_ms"] = (first_epoch_day + frame["day"].to_numpy()) * DAY_MS
    return frame.sort_values(["day", "store_id", "medication_id"]).reset_index(drop=True)


def _model_input(frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    data = frame[features].copy()
    for name in CATEGORICAL:
        data[name] = pd.Categorical(frame[name], categories=categories[name])
    return data


@dataclasses.dataclass
class SimRun:
    kind: str
    alerts: list[tuple[int, Alert]]  # (day, alert)
    reports: dict[str, object]


def run_world(scenario: Scenario, engine_settings: EngineSettings) -> SimRun:
    frame = world_frame(scenario)
    features = [
        c for c in frame.columns if c not in ("store_id", "medication_id", "day", "business_day", "target", "event_ms")
    ]
    numeric = [f for f in features if f not in CATEGORICAL and f not in NOT_MONITORED]
    train = frame[(frame["day"] >= FIRST_TRAIN_DAY) & (frame["day"] < HISTORY_DAYS - HORIZON) & frame["target"].notna()]
    categories = {name: sorted(train[name].unique()) for name in CATEGORICAL}

    def fit(rows: pd.DataFrame) -> lgb.Booster:
        # The model learns from a sample of its days; the profile describes them all.
        sample = rows.sample(n=min(len(rows), 60_000), random_state=1)
        return lgb.train(
            LGB_PARAMS, lgb.Dataset(_model_input(sample, features, categories), sample["target"]), num_boost_round=60
        )

    model = fit(train)
    train_predictions = model.predict(_model_input(train, features, categories))
    # Reference errors: out-of-fold over time blocks, so they cover every season the model was trained on.
    blocks = np.array_split(np.arange(FIRST_TRAIN_DAY, HISTORY_DAYS - HORIZON), ERROR_FOLDS)
    residuals = []
    for block in blocks:
        inside = train["day"].isin(block).to_numpy()
        fold = fit(train[~inside])
        held = train[inside]
        residuals.append(
            forecast_residuals(held["target"].to_numpy(), fold.predict(_model_input(held, features, categories)))
        )
    holdout_errors = np.concatenate(residuals)
    profile = build_reference_profile(
        {**{n: train[n].to_numpy() for n in numeric}, **{c: train[c].to_numpy(dtype=object) for c in CATEGORICAL}},
        CATEGORICAL,
        train_predictions,
        holdout_errors,
    )
    clock = _SimClock()
    engine = DriftEngine(engine_settings, clock=clock)
    engine.register_reference(1, profile.to_dict())
    raised: list[tuple[int, Alert]] = []
    monitored = frame[frame["day"] >= HISTORY_DAYS]
    predictions = model.predict(_model_input(monitored, features, categories))
    for day in range(HISTORY_DAYS, int(frame["day"].max()) + 1):
        clock.day = day
        rows = (monitored["day"] == day).to_numpy()
        today = monitored[rows]
        outcome = engine.log_predictions(
            1,
            today["store_id"].to_numpy(object),
            today["medication_id"].to_numpy(object),
            today["event_ms"].to_numpy(np.int64),
            {**{n: today[n].to_numpy(float) for n in numeric}, **{c: today[c].to_numpy(object) for c in CATEGORICAL}},
            predictions[rows],
        )
        # Alerts are dated by the day they are raised: a window closes when a later window's rows arrive.
        raised.extend((day, a) for a in outcome.alerts)
        # Actuals of the forecasts made HORIZON days ago have now elapsed.
        due = monitored[(monitored["day"] == day - HORIZON) & monitored["target"].notna()]
        if len(due):
            actuals = engine.log_actuals(
                due["store_id"].to_numpy(object),
                due["medication_id"].to_numpy(object),
                due["event_ms"].to_numpy(np.int64),
                due["target"].to_numpy(float),
            )
            raised.extend((day, a) for a in actuals.alerts)
    reports = {r.report_id: r for r in engine.list_reports(limit=engine_settings.max_reports)}
    return SimRun(scenario.events[0].kind if scenario.events else "none", raised, reports)


class _SimClock:
    """Simulated wall time: the monitored day."""

    day = 0

    def __call__(self) -> float:
        return self.day * 86_400.0


def _signals(run: SimRun, alert: Alert) -> str:
    if alert.detector:
        return alert.detector
    report = run.reports.get(alert.report_id)
    if report is None:
        return ""
    results = [*report.features, *([report.prediction] if report.prediction else [])]
    named = []
    for result in results:
        if result.feature in alert.features:
            fired = [s.name for s in result.signals if s.fired]
            named.append(f"{result.feature} ({', '.join(fired)})")
    return "; ".join(named[:3]) + (f"; +{len(named) - 3} more" if len(named) > 3 else "")


def evaluate_simulator(seed: int, no_drift_days: int, settings: EngineSettings) -> None:
    print(
        f"### (a) Simulator: drift injected on day {INJECTION_DAY} (monitoring from day {HISTORY_DAYS}), seed {seed}\n"
    )
    print(
        "| drift kind | first alert (days after injection) | alert kind | signals that fired | "
        "alerts before injection |"
    )
    print("|---|---|---|---|---|")
    for kind in DRIFT_KINDS:
        scenario = default_scenario(seed, [DriftEvent(kind, INJECTION_DAY)])
        run = run_world(scenario, settings)
        before = [a for day, a in run.alerts if day < INJECTION_DAY]
        after = sorted(((day, a) for day, a in run.alerts if day >= INJECTION_DAY), key=lambda x: x[0])
        if after:
            day, alert = after[0]
            kinds = sorted({a.kind for d, a in after if d == day})
            print(
                f"| {kind} | {day - INJECTION_DAY} | {', '.join(kinds)} | {_signals(run, alert)} | {len(before)} |",
                flush=True,
            )
        else:
            print(f"| {kind} | not detected | | | {len(before)} |", flush=True)
    scenario = Scenario(
        n_stores=30,
        n_medications=100,
        start_day="2025-01-01",
        n_days=HISTORY_DAYS + no_drift_days,
        seed=seed,
        history_days=HISTORY_DAYS,
    )
    run = run_world(scenario, settings)
    by_kind: dict[str, int] = {}
    for _, alert in run.alerts:
        by_kind[alert.kind] = by_kind.get(alert.kind, 0) + 1
    print(
        f"\nNo drift injected, {no_drift_days} monitored days ({len(run.reports)} weekly windows scored): "
        f"**{len(run.alerts)} alerts**"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(by_kind.items()))})" if by_kind else "")
        + "\n"
    )
    for day, alert in run.alerts:
        print(f"- day {day}: {alert.kind} {', '.join(alert.features)}: {_signals(run, alert)}")


# ---------------------------------------------------------------- (b) synthetic streams


def _classifier_errors(train_x, train_y, holdout_x, holdout_y, stream_x, stream_y) -> tuple[np.ndarray, np.ndarray]:
    params = {"objective": "binary", "verbose": -1, "num_threads": 2, "seed": 1, "min_data_in_leaf": 20}
    model = lgb.train(params, lgb.Dataset(train_x, train_y), num_boost_round=100)
    holdout = ((model.predict(holdout_x) >= 0.5).astype(int) != holdout_y).astype(float)
    stream = ((model.predict(stream_x) >= 0.5).astype(int) != stream_y).astype(float)
    return holdout, stream


#: The monitor as a whole (its first alarm from either detector), and river's
#: plain ADWIN (default delta, fed the same 0/1 errors) as the peer to match.
MONITOR = "rxcast monitor"
RIVER_ADWIN = "river ADWIN (default)"
COLUMNS = (MONITOR, *DETECTORS, RIVER_ADWIN)


def _detect(reference: np.ndarray, stream: np.ndarray, settings: DetectorSettings, seed: int) -> dict[str, list[int]]:
    monitor = ErrorStreamMonitor(settings, reference, seed=seed)
    found: dict[str, list[int]] = {d: [] for d in COLUMNS}
    for detection in monitor.update(stream):
        found[detection.detector].append(detection.sample)
        found[MONITOR].append(detection.sample)
    adwin = river_drift.ADWIN()
    for i, loss in enumerate(stream.tolist(), start=1):
        adwin.update(loss)
        if adwin.drift_detected:
            found[RIVER_ADWIN].append(i)
    return found


def small_rise(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """`n` 0/1 errors of a Bernoulli error rate."""
    return (rng.random(n) < rate).astype(float)


def evaluate_synthetic(seeds: int, settings: DetectorSettings) -> None:
    change, after, quiet = 10_000, 10_000, 50_000
    rows: dict[tuple[str, str], dict[str, list]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        streams = {}
        for a, b in zip(synthetic.SEA_THRESHOLDS, synthetic.SEA_THRESHOLDS[1:], strict=False):
            train = synthetic.sea(5000, a, rng)
            holdout = synthetic.sea(2000, a, rng)
            before_x, before_y = synthetic.sea(change, a, rng)
            after_x, after_y = synthetic.sea(after, b, rng)
            quiet_x, quiet_y = synthetic.sea(quiet, a, rng)
            streams[f"SEA {a:g} -> {b:g} (sudden)"] = (
                train,
                holdout,
                np.vstack([before_x, after_x]),
                np.concatenate([before_y, after_y]),
                (quiet_x, quiet_y),
            )
        weights = rng.random(10)
        train = synthetic.hyperplane(5000, rng, weights=weights)
        holdout = synthetic.hyperplane(2000, rng, weights=weights)
        x, y = synthetic.hyperplane(change + after, rng, drift_from=change, magnitude=0.001, weights=weights)
        streams["rotating hyperplane, 10 dims (gradual, 0.001/sample)"] = (
            train,
            holdout,
            x,
            y,
            synthetic.hyperplane(quiet, rng, weights=weights),
        )
        errors = {}
        for name, (train, holdout, x, y, (qx, qy)) in streams.items():
            reference, stream = _classifier_errors(*train, *holdout, x, y)
            _, quiet_stream = _classifier_errors(*train, *holdout, qx, qy)
            errors[name] = reference, stream, quiet_stream
        # The error rate alone rises a little, at a known sample: 2% -> 6.5%.
        errors["small rise, error rate 2% -> 6.5% (sudden)"] = (
            small_rise(2000, 0.02, rng),
            np.concatenate([small_rise(change, 0.02, rng), small_rise(after, 0.065, rng)]),
            small_rise(quiet, 0.02, rng),
        )
        for name, (reference, stream, quiet_stream) in errors.items():
            drifting = _detect(reference, stream, settings, seed)
            calm = _detect(reference, quiet_stream, settings, seed)
            for detector in COLUMNS:
                row = rows.setdefault((name, detector), {"delays": [], "false": 0, "quiet": 0})
                late = [s - change for s in drifting[detector] if s > change]
                row["delays"].append(late[0] if late else None)
                row["false"] += len(calm[detector]) + sum(1 for s in drifting[detector] if s <= change)
                row["quiet"] += quiet + change
    print(
        f"### (b) Synthetic concept-drift streams: {seeds} seeds, drift at sample {change:,}, "
        f"{after:,} samples after; false alarms over {quiet:,}-sample drift-free streams plus the "
        f"{change:,} samples before each drift\n"
    )
    print("| stream | detector | median delay (samples) | missed | false alarms / 10k samples |")
    print("|---|---|---|---|---|")
    for (name, detector), row in rows.items():
        found = [d for d in row["delays"] if d is not None]
        delay = f"{statistics.median(found):.0f}" if found else "-"
        missed = len(row["delays"]) - len(found)
        print(
            f"| {name} | {detector} | {delay} | {missed}/{len(row['delays'])} | "
            f"{row['false'] * 1e4 / row['quiet']:.3f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/drift_evaluate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("sim", "synthetic", "all"), default="all")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--no-drift-days", type=int, default=365, help="monitored days of the no-drift world")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the synthetic streams")
    parser.add_argument("--log-level", default="warning", help="level of the engine's logs (JSON on stderr)")
    args = parser.parse_args(argv)
    # The tables go to stdout; the engine's window and alert logs to stderr.
    configure_logging("drift-evaluate", args.log_level)
    # Windows close by time only; the prediction log holds the horizon's worth of days.
    settings = EngineSettings(
        window_rows=1_000_000, window_seconds=WINDOW_DAYS * 86_400.0, max_reports=2000, max_logged_predictions=100_000
    )
    if args.part in ("sim", "all"):
        evaluate_simulator(args.seed, args.no_drift_days, settings)
        print()
    if args.part in ("synthetic", "all"):
        evaluate_synthetic(args.seeds, settings.detectors)


if __name__ == "__main__":
    main()
