"""How a policy job should ship the freshest model: a daily refresh compared
three ways on the same origins, in-process with the trainer's own code.

    .venv/bin/python bench/refresh.py                   # ~1 minute
    .venv/bin/python bench/refresh.py --days 20 --stores 20

For each origin (a newest labelled day L, one per played day) a model serves
the rows of day L + horizon (the day it answers for) and is scored on their
labels:

- holdout: the model the holdout judged, trained through L - holdout - horizon
  (what a job shipped before the refit);
- refit: the same recipe fitted again on every labelled row of the window,
  through L (what policy jobs ship, `--ship-refit`);
- incremental: the previous origin's shipped model continued by
  `--extra-rounds` boosting rounds on the newest day's rows only (LightGBM
  `init_model`), from a refit on the first origin.

Prints MAE per strategy (mean over origins, and its ratio to the refit's) and
the median seconds of one refresh. The synthetic world of the trainer's tests
(a weekly cycle, promotions, per-entity levels; no drift event) stands in for
the simulator, so that no feature service is needed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import lightgbm as lgb
import numpy as np

from rxcast.model import FeatureEncoder
from rxcast.trainer.dataset import LoadRequest, split_by_time
from rxcast.trainer.fit import encoding_manifest, fit_model
from rxcast.trainer.params import TrainingParams
from tests.trainer.synthetic import WorldSource, make_world

HORIZON = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=12)
    parser.add_argument("--medications", type=int, default=30)
    parser.add_argument("--window", type=int, default=90, help="days of rows a job uses")
    parser.add_argument("--days", type=int, default=14, help="origins (played days)")
    parser.add_argument("--holdout", type=int, default=7)
    parser.add_argument("--extra-rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    world = make_world(args.stores, args.medications, args.window + args.days + 2 * HORIZON + 1)
    source = WorldSource(world, horizon_days=HORIZON)
    params = TrainingParams(num_boost_round=150, learning_rate=0.08, num_leaves=31, holdout_days=args.holdout)
    first_origin = world.first_day + args.window - 1
    errors: dict[str, list[float]] = {"holdout": [], "refit": [], "incremental": []}
    seconds: dict[str, list[float]] = {name: [] for name in errors}
    previous = None
    for origin in range(first_origin, first_origin + args.days):
        data = source.load(LoadRequest(origin - args.window + 1, origin, (), HORIZON), lambda a, b: None)
        served = source.load(LoadRequest(origin + HORIZON, origin + HORIZON, (), HORIZON), lambda a, b: None)
        split = split_by_time(data, args.holdout, 100, 20)

        started = time.perf_counter()
        judged = fit_model(split.train, params, args.threads)
        seconds["holdout"].append(time.perf_counter() - started)
        started = time.perf_counter()
        refit = fit_model(data, params, args.threads)
        seconds["refit"].append(time.perf_counter() - started)

        manifest = encoding_manifest(data)
        newest = data.take(data.row_days == origin)
        started = time.perf_counter()
        if previous is None:
            booster = refit.booster
        else:
            matrix = FeatureEncoder(manifest).encode(newest.columns).matrix
            dataset = lgb.Dataset(
                matrix, newest.labels, feature_name=list(manifest.feature_names),
                categorical_feature=list(manifest.categorical_features), free_raw_data=False,
            )  # fmt: skip
            booster = lgb.train(
                params.lightgbm_params(args.threads), dataset, num_boost_round=args.extra_rounds,
                init_model=previous, keep_training_booster=True,
            )  # fmt: skip
        seconds["incremental"].append(time.perf_counter() - started)
        previous = booster

        for name, model, encoding in (
            ("holdout", judged.booster, judged.manifest),
            ("refit", refit.booster, refit.manifest),
            ("incremental", booster, manifest),
        ):
            forecasts = model.predict(FeatureEncoder(encoding).encode(served.columns).matrix)
            errors[name].append(float(np.abs(forecasts - served.labels).mean()))

    base = statistics.mean(errors["refit"])
    print(f"{args.stores} stores x {args.medications} medications, window {args.window} d, {args.days} origins")
    print(f"{'strategy':<12} {'MAE':>8} {'vs refit':>9} {'s per refresh (p50)':>20}")
    for name, values in errors.items():
        mae = statistics.mean(values)
        print(f"{name:<12} {mae:>8.3f} {mae / base:>9.3f} {statistics.median(seconds[name]):>20.3f}")


if __name__ == "__main__":
    main()
