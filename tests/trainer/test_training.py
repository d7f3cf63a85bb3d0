"""Training-set splitting, fitting, evaluation and priors on a synthetic world."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from rxcast.model import FeatureEncoder, ModelBundle, ModelManifest
from rxcast.runtime.errors import FailedPrecondition
from rxcast.trainer.dataset import LoadRequest, split_by_time
from rxcast.trainer.evaluation import champion_predictions, error_statistics, evaluate, naive_baseline, score
from rxcast.trainer.fit import TrainingCancelled, fit_model
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.priors import cold_start_priors, entities_seen
from tests.trainer.synthetic import FEATURES, WorldSource, make_world

FAST = TrainingParams(num_boost_round=30, num_leaves=15, min_data_in_leaf=20)


@pytest.fixture(scope="module")
def world():
    return make_world(stores=5, medications=8, days=100)


@pytest.fixture(scope="module")
def data(world):
    return WorldSource(world).load(LoadRequest(world.first_day, world.last_day), lambda done, total: None)


def test_split_holds_out_the_last_days_behind_an_embargo(data):
    split = split_by_time(data, holdout_days=10, min_train_rows=100, min_holdout_rows=10)
    last = int(data.row_days.max())
    assert split.holdout_end == last and split.holdout_start == last - 9
    assert set(np.unique(split.holdout.row_days)) == set(range(last - 9, last + 1))
    # Training labels (days D+1..D+7) end by the holdout's first day; holdout labels start after it.
    assert split.train.row_days.max() + data.horizon_days <= split.holdout_start
    assert split.train.rows + split.holdout.rows < data.rows


def test_split_refuses_too_little_data_naming_the_counts(data):
    with pytest.raises(FailedPrecondition, match=r"training rows .* at least 1000000 are needed"):
        split_by_time(data, 10, min_train_rows=1_000_000, min_holdout_rows=1)
    with pytest.raises(FailedPrecondition, match="no labelled rows"):
        split_by_time(data.take(np.zeros(data.rows, dtype=bool)), 10, 1, 1)


def test_fit_is_deterministic_and_uses_categoricals(data):
    split = split_by_time(data, 10, 100, 10)
    first = fit_model(split.train, FAST, num_threads=2)
    again = fit_model(split.train, FAST, num_threads=2)
    assert first.model_text == again.model_text
    assert first.training_data_sha256 == again.training_data_sha256
    assert first.manifest.feature_names == FEATURES
    assert first.manifest.categorical_levels["store_region"] == ("east", "north", "south")
    dumped = first.booster.dump_model()
    categorical = {FEATURES.index(n) for n in ("medication_category", "store_region")}

    def split_kinds(node, found):
        if "split_feature" in node:
            found.add((node["split_feature"], node["decision_type"]))
            split_kinds(node["left_child"], found)
            split_kinds(node["right_child"], found)
        return found

    kinds = set()
    for tree in dumped["tree_info"]:
        split_kinds(tree["tree_structure"], kinds)
    assert {kind for feature, kind in kinds if feature in categorical} == {"=="}
    assert "objective=tweedie" in first.model_text.decode()


def test_round_progress_and_cancellation(data):
    split = split_by_time(data, 10, 100, 10)
    seen = []
    fit_model(split.train, FAST, 1, on_round=lambda done, total: seen.append((done, total)))
    assert seen == [(i, FAST.num_boost_round) for i in range(1, FAST.num_boost_round + 1)]
    with pytest.raises(TrainingCancelled):
        fit_model(split.train, FAST, 1, should_stop=lambda: True)


def test_metrics_by_hand():
    metrics = score(np.array([10.0, 0.0, 5.0]), np.array([8.0, 1.0, 5.0]))
    assert metrics.mae == pytest.approx(1.0)
    assert metrics.rmse == pytest.approx(np.sqrt(5.0 / 3.0))
    assert metrics.wape == pytest.approx(3.0 / 15.0)
    assert metrics.rows == 3
    with pytest.raises(FailedPrecondition, match="WAPE is undefined"):
        score(np.zeros(3), np.ones(3))
    stats = error_statistics(np.array([10.0, 0.0, 5.0]), np.array([8.0, 1.0, 5.0]))
    assert stats["mean"] == pytest.approx(1.0 / 3.0) and stats["mae"] == pytest.approx(1.0)


def test_naive_baseline_is_the_trailing_week_carried_over_the_horizon():
    columns = {"dispensed_sum_7d": np.array([14.0, np.nan, 7.0])}
    assert naive_baseline(columns, 7).tolist() == [14.0, 0.0, 7.0]
    assert naive_baseline(columns, 14).tolist() == [28.0, 0.0, 14.0]


def test_model_beats_the_naive_baseline(data):
    split = split_by_time(data, 10, 100, 10)
    fitted = fit_model(split.train, TrainingParams(num_boost_round=80, num_leaves=15), 2)
    predictions = fitted.predict(FeatureEncoder(fitted.manifest).encode(split.holdout.columns).matrix, 2)
    evaluation = evaluate(predictions, split.holdout, split.describe(), None, 2)
    assert evaluation.model.wape < evaluation.baseline.wape
    assert evaluation.model.rows == evaluation.baseline.rows == split.holdout.rows


def test_champion_is_scored_through_its_own_feature_list_and_levels(data, tmp_path):
    split = split_by_time(data, 10, 100, 10)
    # A champion trained on fewer features, in another order, knowing fewer levels.
    narrow = ("store_region", "dispensed_sum_7d", "on_promotion")
    rows = split.train.take(split.train.columns["store_region"] != "east")
    matrix_columns = {name: rows.columns[name] for name in narrow}
    manifest = ModelManifest(
        version=4, feature_names=narrow, categorical_levels={"store_region": ("north", "south")}, horizon_days=7
    )
    encoder = FeatureEncoder(manifest)
    booster = lgb.train(
        {"objective": "poisson", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(encoder.encode(matrix_columns).matrix, rows.labels, feature_name=list(narrow),
                    categorical_feature=encoder.categorical_indices),
        num_boost_round=10,
    )  # fmt: skip
    champion = ModelBundle(booster, manifest)
    predicted = champion_predictions(champion, split.holdout, 1)
    by_hand = np.maximum(booster.predict(encoder.encode(split.holdout.columns).matrix), 0)
    np.testing.assert_allclose(predicted, by_hand)
    # "east" was unseen by the champion: it is coded missing, not as another level.
    east = split.holdout.columns["store_region"] == "east"
    assert np.isnan(encoder.encode(split.holdout.columns).matrix[east, 0]).all()

    other_horizon = ModelBundle(booster, manifest.with_updates(horizon_days=14))
    evaluation = evaluate(np.ones(split.holdout.rows), split.holdout, split.describe(), other_horizon, 1)
    assert evaluation.champion is None and "forecasts 14 days" in evaluation.champion_note


def test_priors_are_label_means_per_group(data):
    priors = cold_start_priors(data)
    assert priors["global"] == pytest.approx(data.labels.mean(), rel=1e-6)
    north = data.columns["store_region"] == "north"
    assert priors["by_region"]["north"] == pytest.approx(data.labels[north].mean(), rel=1e-6)
    statin = data.columns["medication_category"] == "statin"
    assert priors["by_category"]["statin"] == pytest.approx(data.labels[statin].mean(), rel=1e-6)
    s0 = data.store_ids == "S000"
    assert priors["by_store"]["S000"] == pytest.approx(data.labels[s0].mean(), rel=1e-6)
    seen = entities_seen(data)
    assert seen["store_ids"] == tuple(f"S{i:03d}" for i in range(5))
    assert len(seen["medication_ids"]) == 8
    json.dumps(priors)
