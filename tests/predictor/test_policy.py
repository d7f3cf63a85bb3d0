"""The serving core: fallback policy, flags and lookups, on a real LightGBM model."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.model import ModelBundle
from rxcast.predictor import flags as F
from rxcast.predictor.frame import EntityBatch, FeatureFrame
from rxcast.predictor.lookup import KeySet, KeyTable
from rxcast.predictor.policy import forecast, unavailable_forecast
from rxcast.predictor.serving import ServingModel
from rxcast.runtime.errors import InvalidArgument
from tests.predictor.models import train

NOW_MS = 1_800_000_000_000


@pytest.fixture(scope="module")
def trained():
    return train(1)


@pytest.fixture(scope="module")
def model(trained):
    return ServingModel.build(ModelBundle.from_bytes(trained.model_text, trained.manifest))


def _frame(stores, medications, **overrides):
    rows = len(stores)
    columns = {
        "dispensed_sum_7d": np.full(rows, 10.0),
        "dispensed_sum_28d": np.full(rows, 40.0),
        "unit_price": np.full(rows, 5.0),
        "on_promotion": np.zeros(rows),
        "medication_category": np.full(rows, "statin"),
        "store_region": np.full(rows, "north"),
    }
    columns.update({k: np.asarray(v) for k, v in overrides.items()})
    newest = np.full(rows, NOW_MS - 3_600_000, dtype=np.int64)
    return FeatureFrame(EntityBatch(np.asarray(stores), np.asarray(medications)), columns, newest)


def test_known_entities_with_full_features_are_the_models_forecasts(model):
    frame = _frame(["S0", "S1"], ["M0", "M1"])
    result = forecast(model, frame, NOW_MS)
    expected = model.bundle.predict(frame.columns)
    np.testing.assert_allclose(result.values, expected)
    assert result.flags.tolist() == [0, 0]
    np.testing.assert_allclose(result.feature_ages_seconds, [3600.0, 3600.0])
    assert result.model_version == 1 and result.horizon_days == 7


def test_missing_feature_of_a_known_entity_goes_to_the_model_as_missing(model):
    frame = _frame(["S0", "S0"], ["M0", "M0"], unit_price=[np.nan, 5.0])
    result = forecast(model, frame, NOW_MS)
    assert result.flags[0] == F.MISSING_FEATURES and result.flags[1] == 0
    matrix = frame.columns | {"unit_price": np.array([np.nan, 5.0])}
    np.testing.assert_allclose(result.values, model.bundle.predict(matrix))


def test_unseen_category_level_is_flagged_missing(model):
    result = forecast(model, _frame(["S0"], ["M0"], medication_category=["oncology"]), NOW_MS)
    assert result.flags[0] == F.MISSING_FEATURES


def test_unseen_medication_gets_its_category_prior(model, trained):
    frame = _frame(["S0", "S0"], ["NEW", "M0"], medication_category=["antiviral", "statin"])
    result = forecast(model, frame, NOW_MS)
    assert result.flags[0] == F.COLD_START_MEDICATION | F.FALLBACK
    assert result.values[0] == pytest.approx(trained.manifest.priors["by_category"]["antiviral"])
    assert result.flags[1] == 0


def test_unseen_medication_of_a_new_category_gets_the_store_then_region_then_global_prior(model, trained):
    priors = trained.manifest.priors
    frame = _frame(
        ["S2", "NEWSTORE", "NEWSTORE"],
        ["NEW", "NEW", "NEW"],
        medication_category=["oncology", "oncology", "oncology"],
        store_region=["north", "south", "east"],
    )
    result = forecast(model, frame, NOW_MS)
    np.testing.assert_allclose(
        result.values, [priors["by_store"]["S2"], priors["by_region"]["south"], priors["global"]]
    )
    both = F.COLD_START_MEDICATION | F.COLD_START_STORE | F.FALLBACK | F.MISSING_FEATURES
    assert result.flags[0] == F.COLD_START_MEDICATION | F.FALLBACK | F.MISSING_FEATURES
    assert result.flags[1] == both and result.flags[2] == both


def test_known_entity_without_any_feature_falls_back(model, trained):
    rows = {name: [np.nan] for name in ("dispensed_sum_7d", "dispensed_sum_28d", "unit_price", "on_promotion")}
    frame = _frame(["S1"], ["M2"], medication_category=[""], store_region=[""], **rows)
    frame = FeatureFrame(frame.keys, frame.columns, np.zeros(1, dtype=np.int64))
    result = forecast(model, frame, NOW_MS)
    assert result.flags[0] == F.MISSING_FEATURES | F.FALLBACK
    assert result.values[0] == pytest.approx(trained.manifest.priors["by_store"]["S1"])
    assert result.feature_ages_seconds[0] == -1.0


def test_stale_features_are_flagged_but_still_modelled(model):
    frame = _frame(["S0"], ["M0"])
    assert forecast(model, frame, NOW_MS, max_feature_age_seconds=60).flags[0] == F.STALE_FEATURES
    assert forecast(model, frame, NOW_MS, max_feature_age_seconds=7200).flags[0] == 0


def test_features_unavailable_answers_priors_with_flags(model, trained):
    keys = EntityBatch(np.array(["S3", "X"]), np.array(["M0", "M0"]))
    result = unavailable_forecast(model, FeatureFrame.empty_features(keys))
    base = F.FEATURES_UNAVAILABLE | F.FALLBACK
    assert result.flags.tolist() == [base, base | F.COLD_START_STORE]
    np.testing.assert_allclose(
        result.values, [trained.manifest.priors["by_store"]["S3"], trained.manifest.priors["global"]]
    )


def test_manifest_without_entities_seen_treats_every_entity_as_known(trained):
    manifest = trained.manifest.with_updates(entities_seen={}, priors={})
    bare = ServingModel.build(ModelBundle.from_bytes(trained.model_text, manifest))
    result = forecast(bare, _frame(["ANY"], ["ANY"]), NOW_MS)
    assert result.flags[0] == 0
    result = forecast(bare, _frame(["ANY"], ["ANY"], dispensed_sum_7d=[np.nan], dispensed_sum_28d=[np.nan],
                                   unit_price=[np.nan], on_promotion=[np.nan], medication_category=[""],
                                   store_region=[""]), NOW_MS)  # fmt: skip
    assert result.values[0] == 0.0 and result.flags[0] == F.MISSING_FEATURES | F.FALLBACK


@pytest.mark.parametrize(
    "stores, medications, message",
    [
        (["S0"], ["M0", "M1"], "differ in length"),
        ([], [], "at least one entity"),
        (["S0", " "], ["M0", "M1"], r"keys.store_ids\[1\]: must not be empty"),
        (["S0"], [""], r"keys.medication_ids\[0\]"),
        (["S0", "x" * 60_000], ["M0", "M1"], r"keys.store_ids\[1\]: at most 128 characters, got 60000$"),
        (["S0\n"], ["M0"], r"keys.store_ids\[0\]: must not contain control"),
        (["S0"], ["\u202eM0"], r"keys.medication_ids\[0\]: must not contain control, invisible or bidi"),
    ],
)
def test_malformed_keys_are_named(stores, medications, message):
    with pytest.raises(InvalidArgument, match=message):
        EntityBatch.validated(stores, medications)


def test_key_limit():
    with pytest.raises(InvalidArgument, match="limit of 2"):
        EntityBatch.validated(["a"] * 3, ["b"] * 3, max_rows=2)


def test_lookups():
    seen = KeySet(["b", "a", "c"])
    assert seen.contains(np.array(["a", "z", "c", ""])).tolist() == [True, False, True, False]
    assert KeySet([]).contains(np.array(["a"])).tolist() == [False]
    table = KeyTable({"x": 1.5, "y": None, "z": float("nan"), "w": 2})
    np.testing.assert_array_equal(table.get(np.array(["w", "x", "y", "q"])), [2.0, 1.5, np.nan, np.nan])


def test_flag_names():
    assert F.describe(int(F.FALLBACK | F.COLD_START_STORE)) == ["cold_start_store", "fallback"]
    assert F.counts(np.array([F.FALLBACK, 0, F.FALLBACK | F.STALE_FEATURES], dtype=np.uint32))["fallback"] == 2


def test_staleness_is_only_flagged_on_model_forecasts(model):
    frame = _frame(["S0", "S0"], ["M0", "NEW"])
    result = forecast(model, frame, NOW_MS, max_feature_age_seconds=60)
    assert result.flags.tolist() == [F.STALE_FEATURES, F.COLD_START_MEDICATION | F.FALLBACK]


@pytest.mark.parametrize("rows", [1, 16, 17, 60])
def test_small_batch_fast_path_matches_booster_predict(model, rows):
    from rxcast.predictor.serving import FAST_PATH_MAX_ROWS
    from tests.predictor.models import training_rows

    matrix = model.bundle.encode(training_rows(rows, seed=rows)).matrix
    matrix[0, 0] = np.nan
    matrix[-1, 4] = np.nan
    expected = np.maximum(model.bundle.booster.predict(matrix, num_threads=1), 0.0)
    np.testing.assert_allclose(model.predict(matrix), expected, rtol=1e-12)
    assert model.fast is not None and FAST_PATH_MAX_ROWS == 16  # the cases straddle the switch-over
    with pytest.raises(InvalidArgument, match="shape"):
        model.predict(matrix[:, :3])


def test_serving_model_survives_pickling_for_dask_workers(model):
    import pickle

    again = pickle.loads(pickle.dumps(model))
    matrix = model.bundle.encode(_frame(["S0"], ["M0"]).columns).matrix
    np.testing.assert_allclose(again.predict(matrix), model.predict(matrix))
