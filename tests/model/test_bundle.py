"""The model bundle: manifest, encoding and loading shared by trainer and predictor."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from rxcast.model import FeatureEncoder, ModelBundle, ModelManifest
from rxcast.model.bundle import sha256_bytes
from rxcast.model.encoding import categorical_levels
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument

FEATURES = ("dispensed_sum_7d", "unit_price", "medication_category")


def _manifest(**changes) -> ModelManifest:
    base = {
        "version": 3,
        "feature_names": FEATURES,
        "categorical_levels": {"medication_category": ("analgesic", "antiviral", "statin")},
        "horizon_days": 7,
    }
    return ModelManifest(**{**base, **changes})


def test_manifest_round_trips_through_json():
    manifest = _manifest(priors={"global": 4.5}, entities_seen={"store_ids": ("S1",)}, reason="scheduled")
    again = ModelManifest.from_json(manifest.to_json())
    assert again == manifest
    assert again.categorical_features == ("medication_category",)
    assert json.loads(manifest.to_json())["format"] == "rxcast.model/1"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"feature_names": ()}, "feature_names is empty"),
        ({"feature_names": ("a", "a")}, "duplicates"),
        ({"categorical_levels": {"nope": ("x",)}}, "unknown features"),
        ({"horizon_days": 0}, "horizon_days"),
    ],
)
def test_manifest_rejects_inconsistent_content(changes, message):
    with pytest.raises(InvalidArgument, match=message):
        _manifest(**changes)


def test_manifest_rejects_other_formats():
    data = _manifest().to_dict() | {"format": "something/9"}
    with pytest.raises(InvalidArgument, match="format"):
        ModelManifest.from_dict(data)


def test_encoder_codes_levels_and_flags_unseen_and_missing():
    encoder = FeatureEncoder(_manifest())
    batch = encoder.encode(
        {
            "dispensed_sum_7d": [10.0, None, 3.0, 1.0],
            "unit_price": np.array([1.5, 2.0, np.inf, 4.0]),
            "medication_category": np.array(["statin", "analgesic", "oncology", None], dtype=object),
            "ignored_extra": [0, 0, 0, 0],
        }
    )
    codes = batch.matrix[:, 2]
    assert codes[0] == 2 and codes[1] == 0 and np.isnan(codes[2]) and np.isnan(codes[3])
    assert batch.unseen["medication_category"].tolist() == [False, False, True, False]
    assert np.isnan(batch.matrix[1, 0]) and np.isnan(batch.matrix[2, 1])
    assert batch.missing.tolist() == [False, True, True, True]


def test_encoder_names_absent_and_non_numeric_features():
    encoder = FeatureEncoder(_manifest())
    with pytest.raises(InvalidArgument, match="unit_price"):
        encoder.encode({"dispensed_sum_7d": [1.0], "medication_category": ["statin"]})
    with pytest.raises(InvalidArgument, match="unit_price"):
        encoder.encode({"dispensed_sum_7d": [1.0], "unit_price": ["cheap"], "medication_category": ["statin"]})


def test_categorical_levels_are_sorted_distinct_and_skip_missing():
    assert categorical_levels(np.array(["b", None, "a", "b", ""], dtype=object)) == ("a", "b")


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    rows = 2000
    category = rng.choice(["analgesic", "antiviral", "statin"], rows)
    columns = {
        "dispensed_sum_7d": rng.gamma(2.0, 5.0, rows),
        "unit_price": rng.uniform(1, 20, rows),
        "medication_category": category,
    }
    manifest = _manifest(categorical_levels={"medication_category": categorical_levels(category)})
    encoder = FeatureEncoder(manifest)
    matrix = encoder.encode(columns).matrix
    target = columns["dispensed_sum_7d"] * np.where(category == "antiviral", 2.0, 1.0) + rng.normal(0, 1, rows)
    dataset = lgb.Dataset(
        matrix, np.maximum(target, 0), feature_name=list(FEATURES), categorical_feature=encoder.categorical_indices
    )
    booster = lgb.train({"objective": "tweedie", "verbose": -1, "num_threads": 1}, dataset, num_boost_round=20)
    text = booster.model_to_string().encode()
    return text, manifest.with_updates(sha256=sha256_bytes(text)), columns, matrix


def test_bundle_predicts_like_the_booster(trained):
    text, manifest, columns, matrix = trained
    bundle = ModelBundle.from_bytes(text, manifest)
    reference = lgb.Booster(model_str=text.decode()).predict(matrix)
    np.testing.assert_allclose(bundle.predict(columns), np.maximum(reference, 0), rtol=1e-12)
    bundle.warm_up()
    assert bundle.predict_matrix(np.empty((0, 3))).shape == (0,)


def test_bundle_rejects_a_corrupt_or_mismatched_model(trained):
    text, manifest, _, _ = trained
    with pytest.raises(FailedPrecondition, match="sha256"):
        ModelBundle.from_bytes(text + b" ", manifest)
    with pytest.raises(FailedPrecondition, match="not a LightGBM model"):
        ModelBundle.from_bytes(b"garbage", manifest.with_updates(sha256=""))
    other = manifest.with_updates(feature_names=("a", "b", "medication_category"), sha256="")
    with pytest.raises(FailedPrecondition, match="differ"):
        ModelBundle.from_bytes(text, other)


def test_bundle_loads_from_a_version_directory(trained, tmp_path):
    text, manifest, columns, _ = trained
    (tmp_path / "model.txt").write_bytes(text)
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    bundle = ModelBundle.load(tmp_path)
    assert bundle.version == 3 and bundle.predict(columns).shape == (2000,)
