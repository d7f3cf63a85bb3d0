"""FeatureEncoder.check_matrix: a caller's own encoded matrix held to the rule
`encode` applies to feature columns, with every malformed value."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.model import FeatureEncoder, ModelManifest
from rxcast.model.encoding import code_levels, valid_codes

FEATURES = ("dispensed_sum_7d", "medication_category", "unit_price", "store_region")
LEVELS = {"medication_category": ("analgesic", "antiviral", "statin"), "store_region": ("north", "south")}
ENCODER = FeatureEncoder(ModelManifest(version=1, feature_names=FEATURES, categorical_levels=LEVELS, horizon_days=7))
GOOD_ROW = [3.0, 2.0, 4.5, 1.0]


def _read_only(matrix: np.ndarray) -> np.ndarray:
    """As a request's bytes arrive: a read-only view."""
    return np.frombuffer(np.ascontiguousarray(matrix, dtype="<f8").tobytes()).reshape(matrix.shape)


def test_valid_codes_are_whole_numbers_naming_a_level():
    codes = np.array([0.0, 1.0, 2.0, -0.0, 2.5, -0.5, 3.0, 99.0, -1.0, np.nan, np.inf, -np.inf, 1e300])
    assert valid_codes(codes, 3).tolist() == [True] * 4 + [False] * 9


def test_code_levels_names_the_level_of_each_valid_code():
    codes = np.array([2.0, 0.0, 2.5, -0.5, 3.0, np.nan, -0.0])
    assert code_levels(codes, ("a", "b", "c")).tolist() == ["c", "a", "", "", "", "", "a"]
    assert code_levels(np.array([0.0]), ()).tolist() == [""]


# Rows of 1 and 8 take the small-batch path, 9 and 40 the vectorized one.
@pytest.mark.parametrize("rows", [1, 8, 9, 40])
@pytest.mark.parametrize(
    "column, value",
    [
        (1, 2.5),  # a fraction: LightGBM would cut it to level 2
        (1, -0.5),  # LightGBM would read it as level 0
        (1, 3.0),  # one past the last level
        (1, 99.0),
        (3, -1.0),
        (1, np.inf),
        (3, np.nan),
        (0, np.inf),  # a numeric value that is not finite
        (2, -np.inf),
        (0, np.nan),
    ],
)
def test_an_invalid_value_is_missing_in_its_row_only(rows, column, value):
    matrix = np.tile(GOOD_ROW, (rows, 1))
    bad_row = rows - 1
    matrix[bad_row, column] = value
    given = _read_only(matrix)
    checked, missing = ENCODER.check_matrix(given)
    assert missing.tolist() == [False] * (rows - 1) + [True]
    assert np.isnan(checked[bad_row, column])
    expected = matrix.copy()
    expected[bad_row, column] = np.nan
    np.testing.assert_array_equal(checked, expected)
    np.testing.assert_array_equal(given, _read_only(matrix))  # the input is never written
    if np.isnan(value):
        assert checked is given  # nothing to blank: no copy


@pytest.mark.parametrize("rows", [1, 8, 9, 40])
def test_a_valid_matrix_is_returned_as_it_is(rows):
    matrix = np.tile(GOOD_ROW, (rows, 1))
    matrix[:, 1] = np.arange(rows) % 3
    matrix[0, 3] = -0.0  # level 0, written negative
    matrix[-1, 0] = 1e308  # with the next, a sum that overflows: still valid
    matrix[-1, 2] = 1e308
    given = _read_only(matrix)
    checked, missing = ENCODER.check_matrix(given)
    assert checked is given
    assert missing is None  # no row missing anything: no mask to build


@pytest.mark.parametrize("rows", [1, 12])
def test_the_matrix_rule_matches_encoding_the_columns(rows):
    """check_matrix on codes answers what encode answers on the levels' text,
    an invalid code standing for a value that is missing."""
    rng = np.random.default_rng(rows)
    codes = rng.choice([0.0, 1.0, 2.0, 2.5, -0.5, 99.0, np.nan], rows)
    columns = {
        "dispensed_sum_7d": rng.choice([1.0, np.inf, np.nan], rows),
        "medication_category": codes,
        "unit_price": np.full(rows, 2.0),
        "store_region": np.full(rows, 1.0),
    }
    valid = valid_codes(codes, 3)
    levels = np.array(LEVELS["medication_category"])[np.where(valid, codes, 0).astype(int)]
    text = dict(columns, medication_category=np.where(valid, levels, ""), store_region=np.full(rows, "south"))
    encoded = ENCODER.encode(text)
    checked, missing = ENCODER.check_matrix(np.column_stack([columns[name] for name in FEATURES]))
    np.testing.assert_array_equal(checked, encoded.matrix)
    np.testing.assert_array_equal(np.zeros(rows, bool) if missing is None else missing, encoded.missing)


def test_a_model_without_categoricals_checks_values_only():
    encoder = FeatureEncoder(ModelManifest(version=1, feature_names=("a", "b"), categorical_levels={}, horizon_days=7))
    for rows in (1, 20):
        matrix = np.full((rows, 2), 2.5)
        assert encoder.check_matrix(matrix)[1] is None
        matrix[0, 1] = np.inf
        checked, missing = encoder.check_matrix(matrix)
        assert missing.tolist() == [True] + [False] * (rows - 1) and np.isnan(checked[0, 1])


@pytest.mark.parametrize("rows", [1, 20])
def test_a_categorical_without_levels_has_no_valid_code(rows):
    manifest = ModelManifest(version=1, feature_names=("a", "c"), categorical_levels={"c": ()}, horizon_days=7)
    checked, missing = FeatureEncoder(manifest).check_matrix(np.zeros((rows, 2)))
    assert missing.all() and np.isnan(checked[:, 1]).all() and (checked[:, 0] == 0).all()
